/**
 * The WAL checkpointer thread (see ThreadedWriter): copies committed pages from the write-ahead log into the database
 * file on a connection of its own, so no commit of the event log waits for a checkpoint (SQLite otherwise runs one inside
 * the commit that crosses wal_autocheckpoint: tens of milliseconds every second or so under load, measured as the
 * redirects' p99).
 *
 * PASSIVE checkpoints never wait for the writer. Under constant load the log may never be fully copied at a moment when
 * a new write transaction starts (only then does SQLite start the log from its beginning). So once it passes
 * `restartBytes`, this thread also flushes the copied pages to disk, and the writer thread, between two of its commits,
 * runs a PASSIVE checkpoint of its own (SqliteStore.checkpointBetweenCommits): with no commit under way it copies the
 * last frames, and the next commit starts the log over. A RESTART checkpoint from here, which blocks the writer while
 * it copies and syncs (measured: 20–75 ms under load, the redirects' worst latencies), is left for a log that still grew
 * to four times that (readers that never let go of an old snapshot).
 */
import "../../util/tick-shape.js";
import Database from "better-sqlite3";
import { fdatasyncSync, openSync } from "node:fs";
import { workerData } from "node:worker_threads";
import { backgroundThisThread, type WriterScheduling } from "../../util/sched.js";
import { frameBytes, WAL_RESTART_BYTES, walSizeLimit, type CheckpointResult, type WalGauge } from "./wal.js";

export interface CheckpointerInit {
  file: string;
  intervalMs?: number;
  restartBytes?: number;
  /** where each round's measure of the log goes, for the writer thread (see SqliteStore.checkpointBetweenCommits) */
  gauge?: WalGauge;
  /** (background: see backgroundThisThread; the writer thread says when it cannot be, for both) */
  scheduling?: WriterScheduling;
}

const { file, intervalMs = 100, restartBytes = WAL_RESTART_BYTES, gauge, scheduling } = workerData as CheckpointerInit;
if (scheduling === "background") backgroundThisThread();
const db = new Database(file);
db.pragma("busy_timeout = 1000");
db.pragma("wal_autocheckpoint = 0");
db.pragma(`journal_size_limit = ${walSizeLimit(restartBytes)}`);
const frame = frameBytes(db.pragma("page_size", { simple: true }) as number);

/**
 * The database file, to flush to disk what PASSIVE rounds copied (so the writer's own checkpoint has little to sync).
 * Never closed: closing any descriptor of a file drops the process's POSIX locks on it, SQLite's included (a thread that
 * stops leaves it open; threads are seldom replaced).
 */
let dbFd: number | null = null;

setInterval(() => {
  try {
    let [r] = db.pragma("wal_checkpoint(PASSIVE)") as CheckpointResult[];
    if (r!.log * frame > 4 * restartBytes) [r] = db.pragma("wal_checkpoint(RESTART)") as CheckpointResult[];
    const log = Math.max(0, r!.log);
    if (gauge) Atomics.store(gauge, 0, log);
    if (log * frame > restartBytes) fdatasyncSync((dbFd ??= openSync(file, "r")));
  } catch {
    // busy or a full disk: the next round tries again (the writer's commits go on either way)
  }
}, intervalMs);
