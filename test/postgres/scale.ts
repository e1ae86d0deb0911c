/**
 * Shared by the scale-out suites: server processes on one PostgreSQL database, direct SQL to check what was stored,
 * and a cleanup stack so every test stops its processes and drops its database whatever happens.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { hit, req, startProcess, stopProcess, tmpDir, type Res, type ServerProcess } from "../helpers.js";
import { createDatabase, type TestDatabase } from "../pg.js";
import { startProxy } from "../tcp-proxy.js";

/** Things to undo at the end of a test, undone last-first; every step runs even when an earlier one fails. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  defer(step: () => unknown) {
    this.steps.push(step);
  }

  async run() {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  }
}

/** A fresh database of the test's own, dropped by cleanup. */
export async function testDatabase(cleanup: Cleanup): Promise<TestDatabase> {
  const db = await createDatabase();
  cleanup.defer(() => db.drop());
  return db;
}

/** A TCP proxy to the host and port of `url` (for cutting the connection), closed by cleanup. */
export async function proxyTo(cleanup: Cleanup, url: URL, defaultPort: number) {
  const proxy = await startProxy(url.hostname, Number(url.port || defaultPort));
  cleanup.defer(() => proxy.close());
  return proxy;
}

export interface Instance extends ServerProcess {
  dir: string;
}

/** A `clicktrail serve` process with a data dir of its own, stopped (SIGTERM, or already killed) and removed by cleanup. */
export async function startInstance(cleanup: Cleanup, env: Record<string, string>, dir = tmpDir("clicktrail-pg-")): Promise<Instance> {
  cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
  const srv = await startProcess(dir, env);
  cleanup.defer(() => stopProcess(srv.proc));
  return { ...srv, dir };
}

/**
 * Several instances on the same settings, started at once. Each one that starts is registered for cleanup even when
 * another fails (with Promise.all, a failure would run the cleanup while a sibling is still starting, and leak it).
 */
export async function startInstances(cleanup: Cleanup, env: Record<string, string>, n: number): Promise<Instance[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startInstance(cleanup, env)));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return started.map((r) => (r as PromiseFulfilledResult<Instance>).value);
}

/** Runs one statement on its own connection. */
export async function sql<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/**
 * After a journaled "poison" event (one PostgreSQL refuses) between "before-0" and "after-0": the two are stored, and the
 * poison alone is kept in the journal folder's rejected.ndjson, with the database's reason.
 */
export async function assertPoisonPutAside(url: string, journalDir: string): Promise<void> {
  const stored = await sql<{ visitor: string }>(url, `SELECT visitor FROM events ORDER BY visitor`);
  assert.deepEqual(
    stored.map((r) => r.visitor),
    ["after-0", "before-0"],
  );
  const rejected = readFileSync(path.join(journalDir, "rejected.ndjson"), "utf8").trim().split("\n");
  assert.equal(rejected.length, 1);
  const line = JSON.parse(rejected[0]!) as { reason: string; batch: { events: { visitor: string }[] } };
  assert.match(line.reason, /bigint|1e\+300/);
  assert.deepEqual(
    line.batch.events.map((e) => e.visitor),
    ["poison"],
  );
}

/** Click events of a link in the event log, counted in PostgreSQL itself. */
export async function storedClicks(url: string, linkId: number): Promise<number> {
  const [r] = await sql<{ n: string }>(url, `SELECT count(*) AS n FROM events WHERE link_id = $1 AND name = 'click'`, [linkId]);
  return Number(r!.n);
}

/** The same URL with its port (and host) replaced: a connection string through a TCP proxy. */
export function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

export async function mkDomain(base: string, hostname: string) {
  const r = await req(base, "POST", "/api/v1/domains", { body: { hostname } });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; hostname: string };
}

export async function mkLink(base: string, body: Record<string, unknown>) {
  const r = await req(base, "POST", "/api/v1/links", { body });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; slug: string; target: string };
}

export async function healthz(base: string): Promise<Res> {
  return req(base, "GET", "/healthz", { key: null });
}

/** A probe's result for a failure message: an HTTP answer as its status and body. */
function describe(v: unknown): string {
  const r = v as Partial<Res> | null;
  if (r && typeof r === "object" && typeof r.status === "number" && typeof r.body === "string") return `${r.status} ${r.body.slice(0, 400)}`;
  return JSON.stringify(v)?.slice(0, 400) ?? String(v);
}

/**
 * Waits until the instance's change channel is up and the cache drop its (re)connection causes has happened (the app
 * polls four times a second): what is cached afterwards stays cached while nothing changes.
 */
export async function settled(base: string): Promise<void> {
  await waitFor(
    "the change channel up",
    () => healthz(base),
    (x) => x.json?.status === "ok",
    5000,
  );
  await sleep(300);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `everyMs` until `done` accepts its result; returns the result and the milliseconds it took, or
 * fails with the last result after `withinMs`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  withinMs: number,
  everyMs = 50,
): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    const ms = Date.now() - start;
    if (done(value)) return { value, ms };
    if (ms > withinMs) assert.fail(`${what}: not within ${withinMs} ms (last: ${describe(value)})`);
    await sleep(everyMs);
  }
}

/** `n` GETs of a link, `concurrency` at a time; the statuses in order of completion. */
export async function hitMany(base: string, host: string, path: string, n: number, concurrency = 4): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      statuses.push((await hit(base, host, path)).status);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return statuses;
}

export const count = (xs: number[], v: number) => xs.filter((x) => x === v).length;
