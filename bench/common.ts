/** Small helpers shared by the benchmarks: flags, child processes, loopback HTTP, percentiles, tables. */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository root (bench/ is compiled to dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const MAIN = path.join(ROOT, "dist/src/main.js");
export const ADMIN_KEY = "bench-admin-key-0123456789abcdef";
export const BROWSER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

// ---------------------------------------------------------------- flags

export type FlagSpec = Record<string, { default: string; help: string }>;

/** Parses `--name value` / `--name=value` flags against a spec; `--help` prints the spec and exits. */
export function parseFlags<S extends FlagSpec>(argv: string[], spec: S, usage: string): { [K in keyof S]: string } {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") {
      process.stdout.write(`${usage}\n\n`);
      for (const [k, v] of Object.entries(spec)) process.stdout.write(`  --${k.padEnd(14)} ${v.help} (default: ${v.default || "none"})\n`);
      process.exit(0);
    }
    if (!a.startsWith("--")) fatal(`unexpected argument ${JSON.stringify(a)} (see --help)`);
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (!(name in spec)) fatal(`unknown flag --${name} (see --help)`);
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined) fatal(`--${name} needs a value`);
    }
    out[name] = value!;
  }
  return out as { [K in keyof S]: string };
}

export function intFlag(v: string, name: string, min = 1): number {
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isInteger(n) || n < min) fatal(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function fatal(msg: string): never {
  process.stderr.write(`error: ${msg}\n`);
  killChildren();
  process.exit(2);
}

// ---------------------------------------------------------------- child processes

const children = new Set<ChildProcess>();

/** Spawns a child that is killed when this process exits, however it exits. */
export function spawnChild(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const p = spawn(cmd, args, opts);
  children.add(p);
  p.once("exit", () => children.delete(p));
  return p;
}

export function killChildren() {
  for (const p of children) {
    try {
      p.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
  children.clear();
}

const tempDirs = new Set<string>();

export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export function keepTempDir(d: string) {
  tempDirs.delete(d);
}

export function removeTempDirs() {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

let cleanupInstalled = false;

/** Kills children and removes temp dirs on exit, Ctrl-C and crashes. */
export function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", () => {
    killChildren();
    removeTempDirs();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping, killing child processes\n`);
      process.exit(130);
    });
  }
  process.on("uncaughtException", (err) => {
    process.stderr.write(`\ncrashed: ${err.stack ?? err}\n`);
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    process.stderr.write(`\ncrashed: ${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  });
}

export function waitExit(p: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null; timedOut: boolean }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode, timedOut: false });
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      resolve({ code: null, signal: "SIGKILL", timedOut: true });
    }, timeoutMs);
    p.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, timedOut: false });
    });
  });
}

/** A free TCP port on loopback (there is a small window before the child binds it; fine for a benchmark). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc; null where /proc is missing. */
export function procCpuSeconds(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[11] = utime, fields[12] = stime (fields 14 and 15 of stat(5), counted from 1 before the comm)
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

export interface ClicktrailProcess {
  proc: ChildProcess;
  base: string;
  port: number;
  output: () => string;
  /** SIGTERM, then up to 60 s for it to exit (killed after that) */
  stop: () => Promise<Stopped>;
}

export interface Stopped {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** how it ended in words: "exit code 0", "killed by SIGKILL", … */
  exit: string;
}

/** Starts `clicktrail serve` as a real child process and waits until /healthz answers 200. */
export async function startClicktrail(dataDir: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ClicktrailProcess> {
  const port = await freePort();
  let out = "";
  // BENCH_SERVER_NODE_ARGS: extra node options for the server of any benchmark (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p")
  const extra = process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const proc = spawnChild(process.execPath, [...extra, ...nodeArgs, MAIN, "serve"], {
    env: {
      ...process.env,
      CLICKTRAIL_DATA_DIR: dataDir,
      CLICKTRAIL_PORT: String(port),
      CLICKTRAIL_HOST: "127.0.0.1",
      CLICKTRAIL_ADMIN_KEY: ADMIN_KEY,
      CLICKTRAIL_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d) => (out = (out + d).slice(-20_000)));
  proc.stderr!.on("data", (d) => (out = (out + d).slice(-20_000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`clicktrail exited (${proc.exitCode ?? proc.signalCode}) while starting:\n${out}`);
    try {
      const r = await http(base, "GET", "/healthz", { timeoutMs: 2000 });
      if (r.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`clicktrail did not answer /healthz within 30 s:\n${out}`);
    await sleep(100);
  }
  const stop = async (): Promise<Stopped> => {
    proc.kill("SIGTERM");
    const ex = await waitExit(proc, 60_000);
    const exit = ex.timedOut ? "did not exit within 60 s (killed)" : ex.signal ? `killed by ${ex.signal}` : `exit code ${ex.code}`;
    return { ...ex, exit };
  };
  return { proc, base, port, output: () => out, stop };
}

/** Creates an app (POST /api/v1/apps): its id and ingest key. */
export async function createApp(base: string, name: string): Promise<{ id: number; key: string }> {
  const r = await http(base, "POST", "/api/v1/apps", { key: ADMIN_KEY, body: { name } });
  if (r.status !== 201) throw new Error(`POST /api/v1/apps answered ${r.status}: ${r.body.slice(0, 300)}`);
  return { id: r.json.id as number, key: r.json.key as string };
}

/** Creates a link domain (POST /api/v1/domains): its id. */
export async function createDomain(base: string, hostname: string): Promise<number> {
  const r = await http(base, "POST", "/api/v1/domains", { key: ADMIN_KEY, body: { hostname } });
  if (r.status !== 201) throw new Error(`POST /api/v1/domains answered ${r.status}: ${r.body.slice(0, 300)}`);
  return r.json.id as number;
}

/** Creates links through POST /api/v1/links/bulk, 1,000 a request; every one must be created. The bulk results, in order. */
export async function createLinks(base: string, links: object[], agent?: Agent): Promise<{ link?: { id: number } }[]> {
  const results: { link?: { id: number } }[] = [];
  for (let i = 0; i < links.length; i += 1000) {
    const r = await http(base, "POST", "/api/v1/links/bulk", { key: ADMIN_KEY, body: { links: links.slice(i, i + 1000) }, agent });
    if (r.status !== 200 || r.json?.failed !== 0) throw new Error(`POST /api/v1/links/bulk answered ${r.status}: ${r.body.slice(0, 500)}`);
    results.push(...(r.json.results as { link?: { id: number } }[]));
  }
  return results;
}

/**
 * A bare node:http server (the baseline of a ratio) in a child process: `handler` is the source of its request handler,
 * `(req, res) => …`, after `setup` (source run once, e.g. constants the handler uses). Its child process and its URL.
 */
export async function startBare(
  handler: string,
  setup = "",
  /** node:http with Clicktrail's fast lane (dist/src/http/fast-lane.js) in front, taking every request to `handler` */
  fastLane = false,
): Promise<{ proc: ChildProcess; url: string; stop: () => Promise<void> }> {
  const lane = pathToFileURL(path.join(ROOT, "dist/src/http/fast-lane.js")).href;
  const source = `${setup}
const handler = ${handler};
const s = (await import("node:http")).createServer(handler);
s.keepAliveTimeout = 65000;
${fastLane ? `(await import(${JSON.stringify(lane)})).installFastLane(s, (req, res) => (handler(req, res), true), { keepAliveMs: 65000 });` : ""}
s.listen(0, "127.0.0.1", () => process.stdout.write("PORT " + s.address().port + "\\n"));
process.on("SIGTERM", () => process.exit(0));
`;
  const proc = spawnChild(process.execPath, ["--input-type=module", "-e", source], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (d) => {
      buf += d;
      const m = /PORT (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    proc.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      proc.kill("SIGTERM");
      await waitExit(proc, 5000);
    },
  };
}

// ---------------------------------------------------------------- HTTP

export const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any;
}

/** One request on loopback; JSON in and out; `key` adds the bearer header. */
export function http(
  base: string,
  method: string,
  pathname: string,
  opts: { body?: unknown; key?: string; headers?: Record<string, string>; agent?: Agent; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const u = new URL(pathname, base);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let payload: string | undefined;
  if (opts.body !== undefined) {
    payload = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent: opts.agent, timeout: opts.timeoutMs ?? 120_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = body ? JSON.parse(body) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, body, json });
        });
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(new Error(`${method} ${pathname}: timed out`)));
    r.on("error", reject);
    r.end(payload);
  });
}

/** Reads one Prometheus sample value (sum over series matching the label filter). */
export function promValue(text: string, name: string, labels: Record<string, string> = {}): number | null {
  let found = false;
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const m = /^(?:\{([^}]*)\})?\s+(\S+)/.exec(rest);
    if (!m) continue;
    const lbl = m[1] ?? "";
    if (!Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) continue;
    found = true;
    sum += Number(m[2]);
  }
  return found ? sum : null;
}

// ---------------------------------------------------------------- numbers and output

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
export const fmtMs = (n: number) => (Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) : "-");

/** A plain text table, first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export function log(msg = "") {
  process.stdout.write(msg + "\n");
}

/** Summarises a V8 .cpuprofile: the functions with the most self time. */
export function summariseCpuProfile(file: string, top = 25, window?: { skipEndMs: number; lengthMs: number }): string {
  const prof = JSON.parse(readFileSync(file, "utf8")) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
    samples: number[];
    timeDeltas: number[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // sample times (µs since the profile started); optionally keep only a window ending skipEndMs before the end
  const times: number[] = [];
  let clock = 0;
  for (const d of prof.timeDeltas) times.push((clock += d));
  const endUs = prof.endTime - prof.startTime;
  const to = window ? endUs - window.skipEndMs * 1000 : Infinity;
  const from = window ? to - window.lengthMs * 1000 : -Infinity;
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    if (times[i]! < from || times[i]! > to) continue;
    self.set(prof.samples[i]!, (self.get(prof.samples[i]!) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const agg = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\//, "").replace(ROOT + "/", "")}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"}  ${where}`.trim();
    agg.set(key, (agg.get(key) ?? 0) + us);
    total += us;
  }
  const idle = [...agg.entries()].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;
  const rows = [...agg.entries()]
    .filter(([k]) => !k.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => [k.length > 110 ? k.slice(0, 107) + "..." : k, (us / 1000).toFixed(0), ((100 * us) / busy).toFixed(1) + "%"]);
  // by package / area, for a coarser picture
  const areas = new Map<string, number>();
  for (const [k, us] of agg) {
    if (k.startsWith("(idle)")) continue;
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(k);
    const area = m
      ? m[1]!
      : k.includes("dist/src/")
        ? "clicktrail (dist/src)"
        : k.includes("node:")
          ? "node core (js)"
          : k.startsWith("(")
            ? k.split("  ")[0]!
            : "native / V8 / other";
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const areaRows = [...areas.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([k, us]) => [k, (us / 1000).toFixed(0), ((100 * us) / busy).toFixed(1) + "%"]);
  return (
    `profile ${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / Math.max(total, 1)).toFixed(0)}%)\n\n` +
    table(["top self time (busy)", "ms", "share"], rows) +
    "\n\n" +
    table(["by area", "ms", "share"], areaRows)
  );
}

/** Runs a benchmark's main: cleans up children and temp dirs, exits with the code it resolves to (default 0), or 1 with the error. */
export function runMain(main: () => Promise<number | void>) {
  main().then(
    (code) => {
      killChildren();
      removeTempDirs();
      process.exit(code ?? 0);
    },
    (err) => {
      process.stderr.write(`\nbenchmark failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------- structured results (bench/report.ts)

/**
 * One figure of a benchmark, as `npm run bench` (bench/report.ts) puts it in its table and in docs/performance.md.
 *
 * - `value` in `unit` (e.g. "req/s", "ms", "events/s", "MB");
 * - `baseline`: the bare `node:http` figure measured in the same run, in the same unit, when the figure has one
 *   (or another same-run reference, e.g. GET /healthz for latencies; say which in `baselineName`);
 * - `ratio`: value / baseline (for latencies: how many times slower than the baseline);
 * - `goal`: the issue's goal in words, e.g. "ratio ≥ 0.75" or "p99 ≤ 100 ms", and `met` whether this run met it.
 */
export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  baselineName?: string;
  ratio?: number;
  /** the ratio's 95 % confidence interval from its pairs of slices (see sliceRatios) */
  ratioInterval?: [number, number];
  goal?: string;
  met?: boolean;
  /** where the goal comes from, e.g. "issue 2" */
  issue?: number;
  note?: string;
}

/** What a benchmark's exported `run(opts)` resolves to. */
export interface BenchResult {
  /** the benchmark, e.g. "redirect", "ingest", "funnel" */
  bench: string;
  /** the load generator used, when the benchmark drives HTTP load */
  tool?: LoadTool;
  figures: BenchFigure[];
  /** short remarks for the report (scaled-down sizes, skipped parts, client CPU saturation, …) */
  notes?: string[];
}

/**
 * The options every benchmark's `run(opts)` accepts besides its own flags (which it takes by the flag names of its
 * `--help`, as strings or numbers). `short: true` is what `npm run bench` passes: finish within a minute or two
 * (shorter load phases, smaller data sets; name the size used in the figure or a note).
 *
 * Contract for a benchmark module (bench/<name>.ts): export `run(opts: BenchRunOptions): Promise<BenchResult>`, print
 * what it prints standalone while it runs, and only parse argv / call runMain when executed directly (`isMain`), so
 * importing it from bench/report.ts runs nothing.
 */
export interface BenchRunOptions {
  short?: boolean;
  tool?: LoadTool;
  [flag: string]: string | number | boolean | undefined;
}

/** True when the module at `importMetaUrl` is the script node was started with (not imported). */
export function isMain(importMetaUrl: string): boolean {
  return !!process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(importMetaUrl);
}

/** Merges run() options over a flag spec's defaults (every value as a string, as parseFlags gives them). */
export function withDefaults<S extends FlagSpec>(spec: S, opts: BenchRunOptions): { [K in keyof S]: string } {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = opts[k] === undefined ? v.default : String(opts[k]);
  return out as { [K in keyof S]: string };
}

// ---------------------------------------------------------------- load generation: wrk or autocannon

export type LoadTool = "wrk" | "autocannon";

/** wrk when it is on PATH (a C load generator: a fraction of autocannon's CPU), else autocannon. */
export function defaultLoadTool(): LoadTool {
  const env = process.env.CLICKTRAIL_BENCH_TOOL;
  if (env === "wrk" || env === "autocannon") return env;
  return hasWrk() ? "wrk" : "autocannon";
}

let wrkPath: string | null | undefined;

export function hasWrk(): boolean {
  if (wrkPath === undefined) {
    wrkPath = null;
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
      const p = path.join(dir || ".", "wrk");
      try {
        accessSync(p, constants.X_OK);
        wrkPath = p;
        break;
      } catch {
        /* not here */
      }
    }
  }
  return wrkPath !== null;
}

export function toolFlag(v: string): LoadTool {
  if (v === "" || v === "auto") return defaultLoadTool();
  if (v !== "wrk" && v !== "autocannon") fatal(`--tool must be wrk, autocannon or auto, got ${JSON.stringify(v)}`);
  if (v === "wrk" && !hasWrk()) fatal("--tool wrk: wrk is not on PATH (apt-get install wrk)");
  return v;
}

export interface LoadRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  url: string;
  connections: number;
  /** seconds */
  duration: number;
  /** the requests, taken in turn (pre-built random lists: randomness without per-request client work) */
  requests: LoadRequest[];
  /** autocannon: each connection's own list (defaults to `requests`) */
  perClient?: () => LoadRequest[];
  tool: LoadTool;
  timeoutSec?: number;
  /** wrk threads (default 1: on a 2-core machine one wrk thread drives > 100,000 req/s and leaves a core to the server) */
  threads?: number;
  /** the server's pid, to report its CPU use during the load */
  serverPid?: number;
}

export interface LoadResult {
  tool: LoadTool;
  seconds: number;
  /** completed responses per second */
  rps: number;
  /** completed responses */
  requests: number;
  /** responses with a 2xx or 3xx status */
  ok: number;
  /** split of `ok` where the tool tells (autocannon); wrk only counts non-2xx/3xx */
  s2xx: number | null;
  s3xx: number | null;
  /** responses with another status (1xx, 4xx, 5xx) */
  bad: number;
  /** socket errors and timeouts */
  errors: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU of the load generator and of the server, in cores (1 = one core busy) */
  clientCpu: number | null;
  serverCpu: number | null;
  /** wrk: the latency distribution as QUANTILES evenly spaced quantiles, ms (merges slices: mergeLoads) */
  quantiles?: number[];
  /** alternateLoad: the slices merged into this result, in the order they ran (see sliceRatios) */
  slices?: LoadResult[];
}

/** how finely wrk reports a run's latency distribution, so slices can be merged into one distribution */
const QUANTILES = 1000;

/**
 * Requests for runLoad: each connection its own pre-built list of 1,024 (`make(i)` the i-th, e.g. a random path),
 * taken in turn: as random as a per-request setupRequest, at a third of the client's CPU (on a 2-core machine the load
 * generator shares the box with the server, so its cost matters).
 */
export function requestLists(make: (i: number) => LoadRequest): { requests: LoadRequest[]; perClient: () => LoadRequest[] } {
  const list = () => Array.from({ length: 1024 }, (_, i) => make(i));
  return { requests: list(), perClient: list };
}

/** Runs one bounded load phase against `url` with the chosen tool. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const s0 = procCpuSeconds(o.serverPid);
  const t0 = process.hrtime.bigint();
  const r = o.tool === "wrk" ? await runWrk(o) : await runAutocannon(o);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = procCpuSeconds(o.serverPid);
  r.serverCpu = s0 !== null && s1 !== null ? (s1 - s0) / wall : null;
  return r;
}

async function runAutocannon(o: LoadOptions): Promise<LoadResult> {
  const { default: autocannon } = await import("autocannon");
  const spec = (r: LoadRequest) => ({ method: r.method ?? "GET", path: r.path, headers: r.headers, body: r.body });
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let stop = () => {};
  const res = await new Promise<import("autocannon").Result>((resolve, reject) => {
    const inst = autocannon(
      {
        url: o.url,
        connections: o.connections,
        duration: o.duration,
        timeout: o.timeoutSec ?? 10,
        requests: o.requests.map(spec),
        setupClient: o.perClient ? (c) => c.setRequests(o.perClient!().map(spec)) : undefined,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    // autocannon keeps running if we crash: stop it with us
    stop = () => inst.stop();
    process.once("exit", stop);
  });
  process.removeListener("exit", stop);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return {
    tool: "autocannon",
    seconds: res.duration,
    rps: res.requests.average,
    requests: res.requests.total,
    ok: res["2xx"] + res["3xx"],
    s2xx: res["2xx"],
    s3xx: res["3xx"],
    bad: res["1xx"] + res["4xx"] + res["5xx"],
    errors: res.errors + res.timeouts,
    p50: res.latency.p50,
    p99: res.latency.p99,
    max: res.latency.max,
    clientCpu: (c.user + c.system) / 1e6 / wall,
    serverCpu: null,
  };
}

/** A Lua string literal for any bytes (decimal escapes for everything outside printable ASCII). */
function luaString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, "utf8")) {
    if (b === 0x22 || b === 0x5c) out += "\\" + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\" + String(b).padStart(3, "0");
  }
  return out + '"';
}

/** The raw HTTP/1.1 request wrk sends (Host from the URL unless the request sets one). */
function rawRequest(r: LoadRequest, defaultHost: string): string {
  const headers: [string, string][] = [];
  let host = defaultHost;
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    if (k.toLowerCase() === "host") host = v;
    else if (k.toLowerCase() !== "content-length") headers.push([k, v]);
  }
  const body = r.body ?? "";
  let s = `${r.method ?? "GET"} ${r.path} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  if (body || (r.method && r.method !== "GET" && r.method !== "HEAD")) s += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  return s + "\r\n" + body;
}

const WRK_DONE = `
function done(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 0, ${QUANTILES - 1} do q[#q + 1] = string.format('%d', latency:percentile((i + 0.5) * 100 / ${QUANTILES})) end
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d,"q":[%s]}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, table.concat(q, ',')))
end
`;

async function runWrk(o: LoadOptions): Promise<LoadResult> {
  const u = new URL(o.url);
  const defaultHost = u.host;
  const dir = tempDir("clicktrail-wrk-");
  const script = path.join(dir, "load.lua");
  // one list per run; each wrk thread starts at its own random offset and takes the requests in turn
  const reqs = (o.perClient ? [...o.requests, ...o.perClient(), ...o.perClient(), ...o.perClient()] : o.requests).map((r) =>
    luaString(rawRequest(r, defaultHost)),
  );
  const lua =
    reqs.length === 1
      ? `local req = ${reqs[0]}\nfunction request() return req end\n${WRK_DONE}`
      : `local reqs = {\n${reqs.join(",\n")}\n}\nlocal n = #reqs\nlocal i = 0\n` +
        `function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)); i = math.random(n) - 1 end\n` +
        `function request() i = i % n + 1; return reqs[i] end\n${WRK_DONE}`;
  writeFileSync(script, lua);
  const threads = Math.min(o.threads ?? 1, o.connections);
  const args = [
    "-t",
    String(threads),
    "-c",
    String(o.connections),
    "-d",
    `${o.duration}s`,
    "--timeout",
    `${o.timeoutSec ?? 10}s`,
    "-s",
    script,
    o.url,
  ];
  // bash's `times` after wrk: the CPU wrk used (user and system), exactly
  const cmd = `${shellQuote(wrkPath!)} ${args.map(shellQuote).join(" ")}; rc=$?; times >&2; exit $rc`;
  const p = spawnChild("bash", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  p.stdout!.on("data", (d) => (out += d));
  p.stderr!.on("data", (d) => (err += d));
  const ex = await waitExit(p, (o.duration + 60) * 1000);
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
  const m = /WRKJSON (\{.*\})/.exec(out);
  if (ex.code !== 0 || !m) throw new Error(`wrk failed (${ex.code ?? ex.signal}):\n${out}\n${err}`);
  const w = JSON.parse(m[1]!) as Record<string, number> & { q: number[] };
  const t = [...err.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].pop();
  const seconds = w.duration_us! / 1e6;
  const cpu = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : null;
  const bad = w.status!;
  return {
    tool: "wrk",
    seconds,
    rps: w.requests! / seconds,
    requests: w.requests!,
    ok: w.requests! - bad,
    s2xx: null,
    s3xx: null,
    bad,
    errors: w.connect! + w.read! + w.write! + w.timeout!,
    p50: w.p50! / 1000,
    p99: w.p99! / 1000,
    max: w.max! / 1000,
    clientCpu: cpu === null ? null : cpu / seconds,
    serverCpu: null,
    quantiles: w.q.map((us) => us / 1000),
  };
}

/**
 * One result from several load slices on one server: counts add up, rates are over their total time, CPU is averaged
 * by time, and latency percentiles come from the slices' distributions merged (each slice's quantiles weighted by its
 * requests); a slice without a distribution (autocannon) leaves p50 as the request-weighted mean and p99 as the highest.
 */
export function mergeLoads(rs: LoadResult[]): LoadResult {
  if (rs.length === 1) return rs[0]!;
  const sum = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0);
  const seconds = sum((r) => r.seconds);
  const requests = sum((r) => r.requests);
  const timeAvg = (f: (r: LoadResult) => number | null) => (rs.every((r) => f(r) !== null) ? sum((r) => f(r)! * r.seconds) / seconds : null);
  const nullableSum = (f: (r: LoadResult) => number | null) => (rs.every((r) => f(r) !== null) ? sum((r) => f(r)!) : null);
  let p50: number;
  let p99: number;
  if (rs.every((r) => r.quantiles?.length)) {
    const points = rs.flatMap((r) => r.quantiles!.map((v) => ({ v, w: r.requests / r.quantiles!.length }))).sort((x, y) => x.v - y.v);
    const total = points.reduce((a, p) => a + p.w, 0);
    const at = (q: number) => {
      let acc = 0;
      for (const p of points) if ((acc += p.w) >= q * total) return p.v;
      return points.at(-1)!.v;
    };
    p50 = at(0.5);
    p99 = at(0.99);
  } else {
    p50 = requests ? sum((r) => r.p50 * r.requests) / requests : 0;
    p99 = Math.max(...rs.map((r) => r.p99));
  }
  return {
    tool: rs[0]!.tool,
    seconds,
    rps: requests / seconds,
    requests,
    ok: sum((r) => r.ok),
    s2xx: nullableSum((r) => r.s2xx),
    s3xx: nullableSum((r) => r.s3xx),
    bad: sum((r) => r.bad),
    errors: sum((r) => r.errors),
    p50,
    p99,
    max: Math.max(...rs.map((r) => r.max)),
    clientCpu: timeAvg((r) => r.clientCpu),
    serverCpu: timeAvg((r) => r.serverCpu),
  };
}

/** how long each slice of alternateLoad is, and how long the machine is left alone after each slice */
export const SLICE_SECONDS = 2;
export const SETTLE_MS = 400;

/**
 * The same bounded load on a baseline server (`a`) and on Clicktrail (`b`) in alternating slices (a b, b a, a b, …,
 * SLICE_SECONDS each, `duration` seconds per server in all), merged per server. This machine's speed drifts from one
 * second to the next (a bare node:http server was seen at 25,000 and at 56,000 req/s within one minute), and two phases
 * one after the other measure two different machines; slices side by side measure the same one, so the ratio of the
 * two holds still where each figure alone does not. After each slice the machine is left alone for SETTLE_MS, so that
 * Clicktrail's background work (commits, rollup flushes) is not measured in `a`'s time, and every slice of either
 * server starts from the same rest. (Until 2026-12-07 it rested after `b`'s slices only, so half of `b`'s slices
 * started after a rest and none of `a`'s: two identical bare servers measured 0.99 on average, 0.95–1.04 in 10 runs;
 * resting after every slice, 1.00, 0.98–1.02 in 11 runs. npm run bench:calibrate measures it.)
 */
export async function alternateLoad(
  a: Omit<LoadOptions, "duration">,
  b: Omit<LoadOptions, "duration">,
  duration: number,
): Promise<[LoadResult, LoadResult]> {
  const slices = Math.max(1, Math.round(duration / SLICE_SECONDS));
  const ra: LoadResult[] = [];
  const rb: LoadResult[] = [];
  for (let i = 0; i < slices; i++) {
    const d = i < slices - 1 ? SLICE_SECONDS : Math.max(1, duration - SLICE_SECONDS * (slices - 1));
    for (const which of i % 2 === 0 ? ["a", "b"] : ["b", "a"]) {
      const r = await runLoad({ ...(which === "a" ? a : b), duration: d });
      (which === "a" ? ra : rb).push(r);
      // BENCH_SLICES=1: each slice as it is measured (to see the machine drift, or one server's stalls)
      if (process.env.BENCH_SLICES)
        log(`  slice ${i + 1} ${which}: ${fmtInt(r.rps)} req/s, p99 ${fmtMs(r.p99)} ms, max ${fmtMs(r.max)} ms, server CPU ${fmtCpu(r.serverCpu)}`);
      await sleep(SETTLE_MS);
    }
  }
  return [
    { ...mergeLoads(ra), slices: ra },
    { ...mergeLoads(rb), slices: rb },
  ];
}

/** two-sided 95 % quantiles of Student's t for 1 to 30 degrees of freedom (past 30: 2.0 down to 1.96) */
const T95 = [
  12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08,
  2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/**
 * How sure a ratio b/a measured by alternateLoad is: each pair of slices that ran one after the other gives a ratio (b's
 * i-th slice over a's); their geometric mean, and its 95 % confidence interval (Student's t on the logarithms). On a
 * machine whose speed moves from one slice to the next the pairs scatter, and the interval says how far the merged
 * ratio may be from what longer runs would measure. Null with fewer than two pairs or a slice that answered nothing.
 */
export function sliceRatios(a: LoadResult, b: LoadResult): { mean: number; low: number; high: number; pairs: number } | null {
  const n = Math.min(a.slices?.length ?? 0, b.slices?.length ?? 0);
  if (n < 2) return null;
  const logs: number[] = [];
  for (let i = 0; i < n; i++) {
    const ra = a.slices![i]!.rps;
    const rb = b.slices![i]!.rps;
    if (!(ra > 0 && rb > 0)) return null;
    logs.push(Math.log(rb / ra));
  }
  const m = logs.reduce((x, y) => x + y, 0) / n;
  const sd = Math.sqrt(logs.reduce((x, y) => x + (y - m) ** 2, 0) / (n - 1));
  const half = (T95[n - 2] ?? (n < 60 ? 2.0 : 1.96)) * (sd / Math.sqrt(n));
  return { mean: Math.exp(m), low: Math.exp(m - half), high: Math.exp(m + half), pairs: n };
}

/** sliceRatios' interval, for a BenchFigure */
export function ratioInterval(a: LoadResult, b: LoadResult): [number, number] | undefined {
  const r = sliceRatios(a, b);
  return r ? [r.low, r.high] : undefined;
}

/** sliceRatios in words, for a benchmark's output ("" when there is nothing to say) */
export function fmtSliceRatios(a: LoadResult, b: LoadResult): string {
  const r = sliceRatios(a, b);
  if (!r) return "";
  return `ratio per pair of slices: ${r.mean.toFixed(3)} (geometric mean), 95 % interval ${r.low.toFixed(3)}–${r.high.toFixed(3)} (${r.pairs} pairs)`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const fmtCpu = (c: number | null) => (c === null ? "-" : `${Math.round(c * 100)}%`);

// ---------------------------------------------------------------- PostgreSQL and the event log

/** A database of its own on the PostgreSQL server at `pgUrl`, dropped by `drop()`. */
export async function benchDatabase(pgUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: pg } = await import("pg");
  const name = `ct_bench_${Math.random().toString(16).slice(2, 12)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  try {
    await admin(`CREATE DATABASE ${name}`);
  } catch (e) {
    throw new Error(`cannot create a benchmark database on ${pgUrl}: ${(e as Error).message} (start PostgreSQL or pass --pg-url)`, { cause: e });
  }
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Runs `fn` on the store a `--db` flag names: SQLite (`fn(null)`), or PostgreSQL in a database of its own on the server
 * at `pgUrl` (`fn(its URL)`), dropped afterwards.
 */
export async function withDatabase<T>(db: string, pgUrl: string, fn: (databaseUrl: string | null) => Promise<T>): Promise<T> {
  if (db !== "sqlite" && db !== "postgres") fatal(`--db must be sqlite or postgres, got ${JSON.stringify(db)}`);
  const database = db === "postgres" ? await benchDatabase(pgUrl).catch((e: Error) => fatal(e.message)) : null;
  try {
    return await fn(database?.url ?? null);
  } finally {
    await database?.drop();
  }
}

/** Whether PostgreSQL answers at `pgUrl` (for optional PostgreSQL rows of the report). */
export async function postgresReachable(pgUrl: string): Promise<boolean> {
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** Counts rows of the event log with a SQL query answering one row `{n}`: SQLite file in `dataDir`, or PostgreSQL. */
export async function countEvents(dataDir: string, databaseUrl: string | null, sql: string): Promise<number> {
  if (databaseUrl) {
    const { default: pg } = await import("pg");
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      return Number((await c.query(sql)).rows[0].n);
    } finally {
      await c.end();
    }
  }
  const { default: Database } = await import("better-sqlite3");
  const sdb = new Database(path.join(dataDir, "clicktrail.db"), { readonly: true });
  try {
    return Number((sdb.prepare(sql).get() as { n: number }).n);
  } finally {
    sdb.close();
  }
}

// ---------------------------------------------------------------- processes and the machine

/** A memory field of /proc/<pid>/status in bytes; null where /proc is missing. */
function procStatusBytes(pid: number | undefined, field: "VmRSS" | "VmHWM"): number | null {
  if (!pid) return null;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resident memory of a process in bytes (VmRSS); null where /proc is missing. */
export const procRssBytes = (pid: number | undefined) => procStatusBytes(pid, "VmRSS");

/** The peak of a process's resident memory in bytes (VmHWM, the kernel's high-water mark); null where /proc is missing. */
export const procPeakRssBytes = (pid: number | undefined) => procStatusBytes(pid, "VmHWM");

export interface Machine {
  cpu: string;
  cores: number;
  ramGB: number;
  node: string;
  os: string;
}

export function machine(): Machine {
  const cpus = os.cpus();
  let distro = "";
  try {
    distro = /PRETTY_NAME="?([^"\n]+)"?/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {
    /* not Linux */
  }
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    ramGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}${distro ? ` (${distro})` : ""}`,
  };
}

/**
 * A benchmark's standalone entry: when `importMetaUrl` is the script node started, parse argv against `spec` and run
 * `run` under runMain (cleanup; the exit code is what `run` resolves to when that is a number, else 0). Imported (by
 * bench/report.ts), it does nothing.
 */
export function cliMain(importMetaUrl: string, spec: FlagSpec, usage: string, run: (opts: BenchRunOptions) => Promise<unknown>) {
  if (!isMain(importMetaUrl)) return;
  const flags: BenchRunOptions = { ...parseFlags(process.argv.slice(2), spec, usage) };
  runMain(async () => {
    const r = await run(flags);
    return typeof r === "number" ? r : 0;
  });
}
