/**
 * The WAL checkpointer thread (see ThreadedWriter): copies committed pages from the write-ahead log into the database
 * file on a connection of its own, so no commit of the event log waits for a checkpoint (SQLite otherwise runs one inside
 * the commit that crosses wal_autocheckpoint: tens of milliseconds every second or so under load, measured as the
 * redirects' p99).
 *
 * PASSIVE checkpoints never wait for the writer. Under constant load the log may never be fully copied at a moment when
 * a new write transaction starts (only then does SQLite start the log from its beginning), so once it passes
 * `restartBytes` a RESTART checkpoint waits for a gap between commits and starts it over.
 */
import Database from "better-sqlite3";
import { statSync } from "node:fs";
import { workerData } from "node:worker_threads";

export interface CheckpointerInit {
  file: string;
  intervalMs?: number;
  restartBytes?: number;
}

const { file, intervalMs = 100, restartBytes = 64 * 1024 * 1024 } = workerData as CheckpointerInit;
const db = new Database(file);
db.pragma("busy_timeout = 1000");
db.pragma("wal_autocheckpoint = 0");

function walSize(): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

setInterval(() => {
  try {
    db.pragma(walSize() > restartBytes ? "wal_checkpoint(RESTART)" : "wal_checkpoint(PASSIVE)");
  } catch {
    // busy or a full disk: the next round tries again (the writer's commits go on either way)
  }
}, intervalMs);
