import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import { buildApp, type ClicktrailApp } from "../src/app.js";
import { loadConfig, type Config } from "../src/config.js";
import { openStore } from "../src/store/open.js";
import { createDatabase, TEST_ENGINE, type TestDatabase } from "./pg.js";

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const MAIN = path.join(ROOT, "dist/src/main.js");

export function tmpDir(prefix = "clicktrail-test-"): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface TestApp {
  app: ClicktrailApp;
  config: Config;
  dir: string;
  /** http://127.0.0.1:port of the listening server */
  base: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Builds the app on a fresh store and listens on an ephemeral loopback port: a SQLite file in a temp dir, or, in the
 * PostgreSQL round of the test run (CLICKTRAIL_TEST_DB=postgres), a database of its own, dropped on close.
 */
export async function startApp(env: Record<string, string> = {}): Promise<TestApp> {
  const owned = !env.CLICKTRAIL_DATA_DIR;
  const dir = env.CLICKTRAIL_DATA_DIR ?? tmpDir();
  let db: TestDatabase | null = null;
  if (TEST_ENGINE === "postgres" && !env.CLICKTRAIL_DATABASE_URL) db = await createDatabase();
  const config = loadConfig({
    ...(db ? { CLICKTRAIL_DATABASE_URL: db.url } : {}),
    CLICKTRAIL_DATA_DIR: dir,
    CLICKTRAIL_PORT: "0",
    CLICKTRAIL_ADMIN_KEY: ADMIN_KEY,
    CLICKTRAIL_LOG_LEVEL: "silent",
    ...env,
  });
  const store = await openStore(config);
  const app = await buildApp(config, store);
  await app.services.auth.bootstrapAdminKey(config.adminKey);
  await app.fastify.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as { port: number }).port;
  return {
    app,
    config,
    dir,
    port,
    base: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      // a data dir passed in belongs to the caller, who may still need it
      if (owned) rmSync(dir, { recursive: true, force: true });
      await db?.drop();
    },
  };
}

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any;
}

/** A raw HTTP request on loopback, with full control of Host and other headers. */
export function req(
  base: string,
  method: string,
  pathname: string,
  opts: { headers?: Record<string, string>; body?: unknown; raw?: string | Buffer; key?: string | null } = {},
): Promise<Res> {
  const u = new URL(pathname, base);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.key !== null) headers.authorization ??= `Bearer ${opts.key ?? ADMIN_KEY}`;
  let payload: string | Buffer | undefined = opts.raw;
  if (opts.body !== undefined) {
    payload = JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let json: unknown = undefined;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
      });
    });
    r.on("error", reject);
    if (payload !== undefined) r.end(payload);
    else r.end();
  });
}

/** A GET on a link domain: Host header set, no API key. */
export function hit(base: string, host: string, pathname: string, headers: Record<string, string> = {}, method = "GET"): Promise<Res> {
  return req(base, method, pathname, {
    headers: { host, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", ...headers },
    key: null,
  });
}

export interface ServerProcess {
  proc: ChildProcess;
  base: string;
  port: number;
  output: () => string;
}

/** Starts `clicktrail serve` as a real process and waits until /healthz answers. */
export async function startProcess(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(dataDir, env, 20000 + Math.floor(Math.random() * 20000));
    } catch (e) {
      // the random port was taken (by another test's server, or an outgoing connection's ephemeral port): another one
      if (attempt < 5 && /EADDRINUSE/.test((e as Error).message)) continue;
      throw e;
    }
  }
}

async function startOnce(dataDir: string, env: Record<string, string>, port: number): Promise<ServerProcess> {
  let out = "";
  const proc = spawn(process.execPath, [MAIN, "serve"], {
    env: {
      ...process.env,
      CLICKTRAIL_DATA_DIR: dataDir,
      CLICKTRAIL_PORT: String(port),
      CLICKTRAIL_ADMIN_KEY: ADMIN_KEY,
      CLICKTRAIL_LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await new Promise((r) => setTimeout(r, 50)); // the last of its output
      throw new Error(`server exited with ${proc.exitCode}: ${out}`);
    }
    try {
      const r = await req(base, "GET", "/healthz", { key: null });
      if (r.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      // a server that did not come up must not outlive the test (its pipes would keep the test runner alive)
      proc.kill("SIGKILL");
      throw new Error(`server did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, base, port, output: () => out };
}

/** SIGTERM, then the exit status. */
export function stopProcess(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  proc.kill("SIGTERM");
  return waitExit(proc);
}

export function waitExit(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Runs the CLI to completion. */
export function cli(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, CLICKTRAIL_LOG_LEVEL: "warn", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? "");
  });
}
