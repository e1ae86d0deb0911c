/** Small helpers shared by the benchmarks: flags, child processes, loopback HTTP, percentiles, tables. */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

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
}

/** Starts `clicktrail serve` as a real child process and waits until /healthz answers 200. */
export async function startClicktrail(dataDir: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ClicktrailProcess> {
  const port = await freePort();
  let out = "";
  const proc = spawnChild(process.execPath, [...nodeArgs, MAIN, "serve"], {
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
  return { proc, base, port, output: () => out };
}

/**
 * A bare node:http server (the baseline of a ratio) from a script that prints "PORT <n>" when listening: its child
 * process and its URL.
 */
export async function startBare(source: string): Promise<{ proc: ChildProcess; url: string; stop: () => Promise<void> }> {
  const proc = spawnChild(process.execPath, ["-e", source], { stdio: ["ignore", "pipe", "inherit"] });
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

/** Runs a benchmark's main: cleans up children and temp dirs, exits 0, or 1 with the error. */
export function runMain(main: () => Promise<void>) {
  main().then(
    () => {
      killChildren();
      removeTempDirs();
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`\nbenchmark failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
