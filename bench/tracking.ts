/**
 * Tracking benchmark: tracking-link redirects (/t/c/{token}) and pixel opens (/t/o/{token}) on Clicktrail against a
 * bare node:http server answering the same 302 / pixel in the same run (goal: ratio >= 0.7), then the library's
 * encode / decode operations per second (compact signed, compact encrypted, pytracking Fernet, pytracking plain).
 *
 *   npm run bench:tracking
 *   node dist/bench/tracking.js --duration 10 --connections 64 --tokens 1000
 */
import autocannon, { type Result } from "autocannon";
import { randomBytes } from "node:crypto";
import {
  ADMIN_KEY,
  BROWSER_UA,
  fmtInt,
  fmtMs,
  http,
  installCleanup,
  intFlag,
  log,
  parseFlags,
  runMain,
  startBare,
  startClicktrail,
  table,
  tempDir,
  waitExit,
} from "./common.js";
import { getClickTrackingResult, getClickTrackingUrl, type TrackingConfig } from "../src/tracking/index.js";

const GOAL_RATIO = 0.7;

const flags = parseFlags(
  process.argv.slice(2),
  {
    duration: { default: "10", help: "seconds of measured load per server and kind" },
    connections: { default: "64", help: "concurrent keep-alive connections" },
    tokens: { default: "1000", help: "distinct tracking links hit at random" },
    ops: { default: "20000", help: "library operations per measurement" },
  },
  "Tracking benchmark: /t/c and /t/o vs bare node:http, and library encode/decode operations per second.",
);
const duration = intFlag(flags.duration, "duration");
const connections = intFlag(flags.connections, "connections");
const nTokens = intFlag(flags.tokens, "tokens");
const nOps = intFlag(flags.ops, "ops");
installCleanup();

const BARE = `
const http = require("node:http");
const pixel = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");
const s = http.createServer((req, res) => {
  if (req.url.startsWith("/t/o/")) { res.writeHead(200, { "Content-Type": "image/png", "Cache-Control": "no-store" }); res.end(pixel); }
  else { res.writeHead(302, { Location: "https://example.com/" }); res.end(); }
});
s.keepAliveTimeout = 65000;
s.listen(0, "127.0.0.1", () => process.stdout.write("PORT " + s.address().port + "\\n"));
process.on("SIGTERM", () => process.exit(0));
`;

function cannon(url: string, paths: string[]): Promise<Result> {
  const list = () =>
    Array.from({ length: 1024 }, () => ({ method: "GET", path: paths[(Math.random() * paths.length) | 0]!, headers: { "user-agent": BROWSER_UA } }));
  return new Promise((resolve, reject) => {
    const inst = autocannon({ url, connections, duration, timeout: 10, requests: list(), setupClient: (c) => c.setRequests(list()) }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
    process.once("exit", () => inst.stop());
  });
}

function opsPerSecond(fn: () => void): number {
  for (let i = 0; i < 1000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < nOps; i++) fn();
  return nOps / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main() {
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

  const bare = await startBare(BARE);
  const bareUrl = bare.url;
  const rows: string[][] = [];
  const ratios: number[] = [];
  for (const [kind, paths] of [
    ["click /t/c", clicks],
    ["open /t/o", opens],
  ] as const) {
    log(`[${kind}] bare node:http, then Clicktrail`);
    const a = await cannon(bareUrl, paths);
    const b = await cannon(srv.base, paths);
    const ratio = b.requests.average / a.requests.average;
    ratios.push(ratio);
    for (const [who, r] of [
      ["bare node:http", a],
      ["Clicktrail", b],
    ] as const)
      rows.push([kind, who, fmtInt(r.requests.average), fmtMs(r.latency.p50), fmtMs(r.latency.p99), fmtInt(r.non2xx - r["3xx"]), fmtInt(r.errors)]);
    rows.push([kind, "ratio", ratio.toFixed(2), "", "", "", ""]);
  }
  await bare.stop();
  srv.proc.kill("SIGTERM");
  await waitExit(srv.proc, 30_000);
  log("\n" + table(["kind", "server", "req/s", "p50 ms", "p99 ms", "errors (4xx/5xx)", "socket errors"], rows));

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
    const enc = opsPerSecond(() => getClickTrackingUrl("https://example.com/product/42?utm_source=mail", meta, c));
    const dec = opsPerSecond(() => getClickTrackingResult(url, c));
    lib.push([name, fmtInt(enc), fmtInt(dec), String(url.length)]);
  }
  log("\n" + table(["library", "encode ops/s", "decode ops/s", "URL length"], lib));
  const worst = Math.min(...ratios);
  log(`\ngoal: ratio >= ${GOAL_RATIO}: ${worst.toFixed(2)} ${worst >= GOAL_RATIO ? "PASS" : "MISS"}`);
}

runMain(main);
