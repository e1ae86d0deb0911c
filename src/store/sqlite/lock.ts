import type Database from "better-sqlite3";

/** how long a write on the HTTP thread's connection tries for the write lock (the connection's busy_timeout) */
export const BUSY_TIMEOUT_MS = 5000;

const busy = (e: unknown) => String((e as { code?: unknown } | null)?.code ?? "").startsWith("SQLITE_BUSY");

/** BEGIN IMMEDIATE without SQLite's busy handler: true when this connection now holds the write lock. */
function tryBegin(db: Database.Database): boolean {
  db.pragma("busy_timeout = 0");
  try {
    db.exec("BEGIN IMMEDIATE");
    return true;
  } catch (e) {
    if (busy(e)) return false;
    throw e;
  } finally {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
}

/**
 * Runs `fn` in an IMMEDIATE transaction on the HTTP thread's connection, waiting for SQLite's write lock without
 * blocking the event loop. The event writer thread holds that lock for most of each second under load; SQLite's own
 * busy handler sleeps (1, 2, 5, 10, 15, 20, 25 … ms, the thread blocked meanwhile) and keeps missing the short gaps
 * between the writer's commits (measured: 50–75 ms stalls of every request in flight). Here each try is immediate, and
 * between tries the event loop runs (1 ms, doubling up to 16 ms); after `timeoutMs` an SQLITE_BUSY error is thrown, as
 * the busy handler's would be. For the writes made in the background or often (sessions' activity and starts, webhook
 * deliveries and their cursor); a configuration change through the API still takes the busy handler's way.
 */
export async function writeTx<T>(db: Database.Database, fn: () => T, timeoutMs = BUSY_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 1; !tryBegin(db); pause = Math.min(pause * 2, 16)) {
    if (Date.now() >= deadline)
      throw Object.assign(new Error(`database is locked: the write lock stayed taken for ${timeoutMs} ms`), { code: "SQLITE_BUSY" });
    await new Promise((r) => setTimeout(r, pause));
  }
  try {
    const r = fn();
    db.exec("COMMIT");
    return r;
  } catch (e) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw e;
  }
}
