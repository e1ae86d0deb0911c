/**
 * Tracking benchmark: tracking-link redirects (/t/c/{token}) and pixel opens (/t/o/{token}) on Clicktrail against a
 * bare node:http server answering the same 302 / pixel in the same run (goal: ratio >= 0.7), then the library's
 * encode / decode operations per second (compact signed, compact encrypted, pytracking Fernet, pytracking plain).
 *
 *   npm run bench:tracking
 *   node dist/bench/tracking.js --duration 10 --connections 64 --tokens 1000 [--tool wrk|autocannon]
 */
import { randomBytes } from "node:crypto";
import {
  ADMIN_KEY,
  BROWSER_UA,
  cliMain,
  fmtCpu,
  fmtInt,
  fmtMs,
  fmtSliceRatios,
  ratioInterval,
  http,
  installCleanup,
  intFlag,
  log,
  requestLists,
  alternateLoad,
  SLICE_SECONDS,
  runLoad,
  startBare,
  startClicktrail,
  table,
  tempDir,
  toolFlag,
  withDefaults,
  type BenchFigure,
  type BenchResult,
  type BenchRunOptions,
  type LoadResult,
  type LoadTool,
} from "./common.js";
import { getClickTrackingResult, getClickTrackingUrl, type TrackingConfig } from "../src/tracking/index.js";

const GOAL_RATIO = 0.7;

const FLAGS = {
  duration: { default: "10", help: "seconds of measured load per server and kind" },
  connections: { default: "64", help: "concurrent keep-alive connections" },
  tokens: { default: "1000", help: "distinct tracking links hit at random" },
  ops: { default: "20000", help: "library operations per measurement" },
  tool: { default: "auto", help: "load generator: wrk, autocannon, or auto (wrk when it is on PATH)" },
};
const USAGE = "Tracking benchmark: /t/c and /t/o vs bare node:http, and library encode/decode operations per second.";

/** the bare server: the same pixel on /t/o/, else the same 302 */
export const BARE_SETUP = `const pixel = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");`;
export const BARE = `(req, res) => {
  if (req.url.startsWith("/t/o/")) { res.writeHead(200, { "Content-Type": "image/png", "Cache-Control": "no-store" }); res.end(pixel); }
  else { res.writeHead(302, { Location: "https://example.com/" }); res.end(); }
}`;

/** The bare server and Clicktrail side by side (alternateLoad), after a warm-up of each, on random links of `paths`. */
async function cannon(
  a: { url: string; pid?: number },
  b: { url: string; pid?: number },
  paths: string[],
  o: { connections: number; duration: number; tool: LoadTool },
): Promise<[LoadResult, LoadResult]> {
  const load = requestLists(() => ({ method: "GET", path: paths[(Math.random() * paths.length) | 0]!, headers: { "user-agent": BROWSER_UA } }));
  const opts = { connections: o.connections, tool: o.tool, timeoutSec: 10, ...load };
  const oa = { ...opts, url: a.url, serverPid: a.pid };
  const ob = { ...opts, url: b.url, serverPid: b.pid };
  await runLoad({ ...oa, duration: 1 });
  await runLoad({ ...ob, duration: 1 });
  return alternateLoad(oa, ob, o.duration);
}

function opsPerSecond(fn: () => void, nOps: number): number {
  for (let i = 0; i < 1000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < nOps; i++) fn();
  return nOps / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Runs the benchmark with `opts` (flag names of --help) over the defaults; prints as it goes; the figures. */
export async function run(opts: BenchRunOptions = {}): Promise<BenchResult> {
  const flags = withDefaults(FLAGS, opts.short ? { duration: 5, ops: 5000, ...opts } : opts);
  const duration = intFlag(flags.duration, "duration");
  const connections = intFlag(flags.connections, "connections");
  const nTokens = intFlag(flags.tokens, "tokens");
  const nOps = intFlag(flags.ops, "ops");
  const tool = toolFlag(flags.tool);
  installCleanup();
  log(`Tracking benchmark: ${duration} s per phase, ${connections} connections, ${fmtInt(nTokens)} tracking links, 127.0.0.1`);
  const srv = await startClicktrail(tempDir("clicktrail-bench-tracking-"));
  const clicks: string[] = [];
  const opens: string[] = [];
  for (let i = 0; i < nTokens; i += 500) {
    const items = Array.from({ length: Math.min(500, nTokens - i) }, (_, j) => ({
      url: `https://example.com/p/${i + j}`,
      open: true,
      metadata: { campaign_id: "bench", n: i + j },
    }));
    const r = await http(srv.base, "POST", "/api/v1/tracking/links", { key: ADMIN_KEY, body: { items } });
    if (r.status !== 200) throw new Error(`POST /api/v1/tracking/links: ${r.status} ${r.body.slice(0, 300)}`);
    for (const it of r.json.items as { click_url: string; open_url: string }[]) {
      clicks.push(new URL(it.click_url).pathname);
      opens.push(new URL(it.open_url).pathname);
    }
  }
  const probe = await http(srv.base, "GET", clicks[0]!, { headers: { "user-agent": BROWSER_UA } });
  if (probe.status !== 302) throw new Error(`GET ${clicks[0]}: ${probe.status}`);

  const bare = await startBare(BARE, BARE_SETUP);
  const rows: string[][] = [];
  const ratios: number[] = [];
  const figures: BenchFigure[] = [];
  const spreads: string[] = [];
  for (const [kind, paths] of [
    ["click /t/c", clicks],
    ["open /t/o", opens],
  ] as const) {
    log(`[${kind}] bare node:http and Clicktrail, 1 s warm-up each, then in alternating slices of ${SLICE_SECONDS} s (${tool})`);
    const [a, b] = await cannon({ url: bare.url, pid: bare.proc.pid }, { url: srv.base, pid: srv.proc.pid }, paths, { connections, duration, tool });
    const ratio = b.rps / a.rps;
    ratios.push(ratio);
    figures.push({
      name: `tracking ${kind} (${connections} conn.)`,
      value: b.rps,
      unit: "req/s",
      baseline: a.rps,
      ratio,
      ratioInterval: ratioInterval(a, b),
      goal: `ratio ≥ ${GOAL_RATIO}`,
      met: ratio >= GOAL_RATIO,
      issue: 6,
    });
    for (const [who, r] of [
      ["bare node:http", a],
      ["Clicktrail", b],
    ] as const)
      rows.push([kind, who, fmtInt(r.rps), fmtMs(r.p50), fmtMs(r.p99), fmtInt(r.bad), fmtInt(r.errors), fmtCpu(r.serverCpu), fmtCpu(r.clientCpu)]);
    rows.push([kind, "ratio", ratio.toFixed(2), "", "", "", "", "", ""]);
    const spread = fmtSliceRatios(a, b);
    if (spread) spreads.push(`${kind}: ${spread}`);
  }
  await bare.stop();
  await srv.stop();
  log("\n" + table(["kind", "server", "req/s", "p50 ms", "p99 ms", "errors (4xx/5xx)", "socket errors", "server CPU", "client CPU"], rows));
  if (spreads.length) log(spreads.join("\n"));

  // the library on its own
  const key = randomBytes(32).toString("base64url");
  const fernetKey = randomBytes(32).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
  const configs: [string, TrackingConfig][] = [
    ["clicktrail signed", { format: "clicktrail", signingKeys: [key], baseClickTrackingUrl: "https://t.example.com/t/c/" }],
    ["clicktrail encrypted", { format: "clicktrail", signingKeys: [key], encrypt: true, baseClickTrackingUrl: "https://t.example.com/t/c/" }],
    ["pytracking Fernet", { format: "pytracking", encryptionKey: fernetKey, baseClickTrackingUrl: "https://t.example.com/t/c/" }],
    ["pytracking plain", { format: "pytracking", allowUnsigned: true, baseClickTrackingUrl: "https://t.example.com/t/c/" }],
  ];
  const lib: string[][] = [];
  const meta = { campaign_id: "spring-2026", customer_id: 123456 };
  for (const [name, c] of configs) {
    const url = getClickTrackingUrl("https://example.com/product/42?utm_source=mail", meta, c);
    const enc = opsPerSecond(() => getClickTrackingUrl("https://example.com/product/42?utm_source=mail", meta, c), nOps);
    const dec = opsPerSecond(() => getClickTrackingResult(url, c), nOps);
    if (name === "clicktrail signed" || name === "pytracking Fernet") {
      figures.push({ name: `tracking library: ${name} encode`, value: enc, unit: "ops/s", issue: 6 });
      figures.push({ name: `tracking library: ${name} decode`, value: dec, unit: "ops/s", issue: 6 });
    }
    lib.push([name, fmtInt(enc), fmtInt(dec), String(url.length)]);
  }
  log("\n" + table(["library", "encode ops/s", "decode ops/s", "URL length"], lib));
  const worst = Math.min(...ratios);
  log(`\ngoal: ratio >= ${GOAL_RATIO}: ${worst.toFixed(2)} ${worst >= GOAL_RATIO ? "PASS" : "MISS"}`);
  return { bench: "tracking", tool, figures };
}

cliMain(import.meta.url, FLAGS, USAGE, run);
