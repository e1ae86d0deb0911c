import { randomUUID } from "node:crypto";
import { Worker } from "node:worker_threads";
import { AppError } from "../errors.js";
import type { Metrics } from "../ops/metrics.js";
import type { EventRow } from "../store/port.js";
import type { SqliteStore } from "../store/sqlite/index.js";
import type { PgStore } from "../store/postgres/index.js";
import type { CheckpointerInit } from "../store/sqlite/checkpointer.js";
import { newWalGauge, type WalGauge } from "../store/sqlite/wal.js";
import type { WriterScheduling } from "../util/sched.js";
import { ClickSums, countOf } from "./click-sums.js";
import { Journal } from "./journal.js";
import { packEvents, type PackedEvents } from "./pack.js";
import { countsAsLinkClick, linkClicksIn } from "./rollup.js";
import { WriterUnavailable, type EventLog, type JournaledBatch, type WriteOptions, type WriterOptions } from "./writer.js";

/**
 * The PostgreSQL writer thread's own connections: one commit at a time, a rollup flush beside it, and the adoption of a
 * stopped instance's writer now and then (the HTTP thread keeps the configured pool for everything else).
 */
const writerPool = (store: PgStore) => Math.min(4, Math.max(2, store.opts.poolSize ?? 10));

/** Adds the link id of each of the events' non-bot link clicks to `into` (made when the first is found). */
function tallyClicks(events: EventRow[], into: number[] | null): number[] | null {
  for (const e of events) {
    if (!countsAsLinkClick(e)) continue;
    (into ??= []).push(e.link_id!);
  }
  return into;
}

/** What the writer thread starts with: SQLite's file, or PostgreSQL's address and the instance's spool. */
export type WorkerInit = {
  /** the event journal's folder (see journal.ts): what it holds past the committed mark is committed first */
  journalDir: string;
  scheduling: WriterScheduling;
  options: Pick<WriterOptions, "maxBatch" | "rollupIntervalMs" | "rollupMaxKeys" | "chunkSize" | "gatherMs">;
} & (
  | {
      kind: "sqlite";
      file: string;
      synchronous: "FULL" | "NORMAL";
      walRestartBytes: number;
      /** the log's length, measured by the checkpointer thread (see SqliteStore.checkpointBetweenCommits) */
      walGauge: WalGauge;
    }
  /** (PostgreSQL: the journal's records are batches with ids; at start what it holds goes to the spool, see journalToSpool) */
  | { kind: "postgres"; url: string; poolSize: number; spoolDir: string }
);

/** PostgreSQL: the instance's journal (synced after each record or not) and spool (CLICKTRAIL_DATA_DIR/event-journal, /spool) */
export interface PgWriterFolders {
  journalDir: string;
  journalSync: boolean;
  spoolDir: string;
}

/** The store whose event log the writer thread writes, as the HTTP thread has it. */
export type WriterTarget = { kind: "sqlite"; store: SqliteStore } | ({ kind: "postgres"; store: PgStore } & PgWriterFolders);

/** The EventWriter's measurements on the writer thread since its last answer. */
export interface WorkerMetrics {
  batchSizes: number[];
  latencies: number[];
  events: number;
  failures: number;
  /** events spooled (PostgreSQL away) */
  spooled: number;
}

type SerializedError =
  { kind: "app"; status: number; type: string; message: string; extra: Record<string, unknown> } | { kind: "other"; message: string };

/**
 * An append: the events packed (`events`), or, for batches already in the journal, the journal records themselves,
 * each as the journal wrote it (see recordPayload), and their sequence numbers. The records' memory is transferred, not
 * copied: measured, 4–7 µs a message whatever its size, against 23 µs for 10 KB and 42–53 µs for 30 KB as one string
 * (the structured clone copies a string byte by byte; nested arrays cost far more: 330–480 µs for 50 records).
 */
export type ToWorker =
  | { t: "append"; seq: number; events: PackedEvents }
  /** (`urgent`: a read waits for them) */
  | { t: "append"; seq: number; records: ArrayBuffer[]; jseqs: number[]; urgent?: boolean }
  | { t: "call"; id: number; op: "flush" | "flushRollups" | "close" }
  /** PostgreSQL: a read waits for the records handed over so far: commit them without gathering more */
  | { t: "hurry" };

export type FromWorker =
  /** `journalSeq`: the last journal record it found (or had committed before), all of it committed now */
  | { t: "ready"; journalSeq: number; replayed: number }
  | { t: "failed"; error: SerializedError }
  /** (`spooled`, PostgreSQL: batches in the spool now, so a read made once this is settled sees them) */
  | { t: "ack"; seq: number; lastId?: number; error?: SerializedError; metrics?: WorkerMetrics; spooled?: number }
  | { t: "done"; id: number; error?: SerializedError; metrics?: WorkerMetrics; spooled?: number }
  | { t: "flushed"; to: number }
  /** PostgreSQL: batches in the spool now (the database away), told when it changes */
  | { t: "spooled"; batches: number }
  | { t: "log"; level: "warn" | "info" | "error"; obj: object; msg: string };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof AppError) return { kind: "app", status: err.status, type: err.type, message: err.message, extra: err.extra };
  return { kind: "other", message: err instanceof Error ? err.message : String(err) };
}

/** An answer's error as the HTTP thread raises it: the same AppError (507 storage-full, …), or a 503. */
function deserializeError(e: SerializedError): Error {
  if (e.kind === "app") return new AppError(e.status, e.type, e.message, e.extra);
  return new WriterUnavailable(e.message);
}

/** Events queued during this turn, and who waits for them (one waiter per write call). */
interface Queued {
  events: EventRow[];
  waiters: { resolve: () => void; reject: (err: Error) => void }[];
}

interface Batch {
  events: number;
  /** its journal record: answered already, committed again from the journal if this thread dies before it does */
  jseq?: number;
  /** the link id of each non-bot click in this batch */
  clicks: number[] | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface ThreadedWriterOptions {
  log?: WriterOptions["log"];
  /** how the writer and checkpointer threads are scheduled (default background: see backgroundThisThread) */
  scheduling?: WriterScheduling;
}

/**
 * Events answered from the journal but not yet committed, past which answers wait for commits again: the writer thread
 * is then behind (the load is more than it commits), and clients are slowed down to its pace instead of the journal and
 * its queue growing without bound. About 40 ms of its work at full speed.
 */
const MAX_UNCOMMITTED = 10_000;

/**
 * Journaled events go to the writer thread together, at most this long after the first of them was answered (or once
 * their records hold POST_BYTES): their answers do not wait for it, and larger commits cost it less. Reads that must see
 * them send them at once (`settled()`).
 *
 * Why 2 ms: the writer thread's work comes in bursts, one per message, and on a machine whose cores it shares with the
 * HTTP thread (and the clients) whatever wakes on the core it holds waits for the burst's end. Measured under redirects
 * (64 connections, wrk on the same 2 cores, alternating runs): every 5 ms, bursts of about 1 ms, wrk waited for a core
 * 20–22 % of the time and the HTTP thread 10–13 %, 55,000–56,500 redirects a second; every 2 ms, 11–13 % and 6–8 %,
 * 60,000–61,700 (1 ms: 57,700–58,500; each turn at once: 59,600–60,000, the writer thread 4.4 µs per click instead of
 * 3.9–4.1). Batched ingest fills POST_BYTES first either way (429,000 and 452,000 events a second).
 *
 * Why bytes, and so few: a message's records become strings in the writer thread's heap, and one past V8's large-object
 * size (128 KiB) is placed in fresh memory each time, paid for in page faults (measured under batched ingest: 12 % of
 * the writer thread, with messages of 2,000 events, about 220 KB; with messages of about 55 KB, 172,000 → 215,000 events
 * per second, the writer thread equally busy).
 */
const POST_MS = 2;
const POST_BYTES = 64 * 1024;
/** a turn's events are journaled (and handed over) in records of at most this many: tens of kilobytes, far below 128 KiB */
const RECORD_EVENTS = 256;

/**
 * The event log's writer on a thread of its own (SQLite on a file, PostgreSQL with its journal): the HTTP thread hands
 * each turn's events over in one message. The writer thread runs the same EventWriter (group commit, rollups, recovery)
 * on its own connection to the database file (or its own PostgreSQL connections), so inserting, committing, aggregating,
 * flushing rollups and WAL checkpoints (PostgreSQL: the statements' parameters, the protocol, the spool) do not take the
 * HTTP thread's time.
 *
 * When a request is answered:
 * - **Clicks that count against a max_clicks** (`write(e, { committed: true })`, by default every link click): once
 *   the writer thread says they are committed, so the next click on the link is judged on an exact count.
 * - **Every other event** (clicks on links without a limit, front ends' events, tracking links and pixels, orphan
 *   visits, sessions): once written to the event journal (journal.ts), which survives a killed process as SQLite's
 *   WAL does, so the answer does not wait for the round trip to the writer thread (measured: it was most of an ingest
 *   request's latency). The writer thread commits them within a moment; reads that must see them wait for that first
 *   (`settled()`, which the API calls before every request).
 *
 * Link clicks: the HTTP thread keeps each committed batch's clicks per link (journaled ones too) until the writer
 * thread reports a rollup flush past it; the store reads links in one snapshot with the rollup watermark and adds the
 * clicks past it (SqliteStore.clicksPending), so a link's count is exact for every read made after `settled()`
 * (`pendingClicks()` therefore adds only the clicks not committed yet). A writer thread that commits clicks from the journal as it starts flushes
 * the rollups before it takes events, so those are in the links' counters.
 *
 * If the writer thread dies, the clicks it held that wait for their commit are refused (503, nothing acknowledged is
 * lost), and a new one starts, which recovers the rollups from the event log and commits what the journal holds, as a
 * restart would.
 *
 * PostgreSQL differs where its writer does (see EventWriter): each journal record is a batch with an id; the thread
 * commits records as batches (appendAnswered), gathering them for up to 25 ms into one commit (a read that waits for
 * them ends the wait: `settled()`); the database away, it spools them (the spool is the thread's: `spooled` is what it
 * last told). A thread that starts moves what the journal holds to the spool, whose replay skips the batches the
 * database has. Its writer (the `writers` row) is its own: one that died is adopted by the next live writer once its
 * heartbeat is a minute old, as a dead instance's is. `pendingClicks()` counts a link's committed clicks until the
 * thread reports the rollup flush that has them (the links are read without the watermark, so a read made while that
 * report is on its way may count them twice for that moment, as with the in-process writer).
 */
export class ThreadedWriter implements EventLog {
  private worker: Worker | null = null;
  private checkpointer: Worker | null = null;
  private ready: Promise<void> | null = null;
  /** this turn's events answered once committed (link clicks), and those answered once in the journal */
  private committed: Queued = { events: [], waiters: [] };
  private journaled: Queued = { events: [], waiters: [] };
  private scheduled = false;
  private seq = 0;
  private batches = new Map<number, Batch>();
  private calls = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private inFlight = 0;
  private closed = false;
  /** since when no writer thread takes events (it died and its successor is not up yet), 0: one does */
  private downSince = 0;
  /** why the last writer thread died or could not start, when the client should hear it (507 storage-full) */
  private downCause: AppError | null = null;
  /** the thread has recovered the rollups and takes events (not before: a batch must not race its recovery) */
  private up = false;
  /**
   * Committed batches' clicks not yet in the links' counters, in commit order: [commit's last event id, the link id of
   * each click]; and their sum per link. An answer adds its batch's clicks to the sums, a rollup flush takes those it
   * covers away again: nothing allocated per link (a list per link of [commit, clicks] pairs, each kept until the flush,
   * took 2.6 % of the HTTP thread under redirects, and its garbage lived long enough to reach the old heap), and no map
   * by link id to update per click (see ClickSums: batches tallied in maps by link id, and the sums in one, were 2–3 %).
   */
  private unflushed: [number, number[]][] = [];
  private unflushedSums = new ClickSums();
  private journal: Journal;
  /** the last journal record written, and the last one the writer thread has committed */
  private journalSeq = 0;
  private journalCommitted = 0;
  /** events answered from the journal that the writer thread has not committed yet */
  private journaledInFlight = 0;
  /** journal records not yet handed to the writer thread (see POST_MS), and their events */
  private unposted: { rec: Buffer; jseq: number }[] = [];
  private unpostedEvents = 0;
  private unpostedBytes = 0;
  private unpostedClicks: number[] | null = null;
  private postTimer: NodeJS.Timeout | null = null;
  /** reads waiting for the journal to be committed up to their record */
  private settling: { upTo: number; resolve: () => void }[] = [];
  /** the last journal record a waiting read has asked the writer thread to commit without gathering (see settled) */
  private hurriedUpTo = 0;

  /** SQLite: the log's length, which the checkpointer thread measures and the writer thread reads (shared memory) */
  private readonly walGauge = newWalGauge();
  private readonly scheduling: WriterScheduling;
  /** SQLite: the HTTP thread's store (it counts committed clicks itself, and hears of a full disk) */
  private readonly sqlite: SqliteStore | null;
  /** PostgreSQL: batches in the writer thread's spool (the database away), as it last told */
  private spooledBatches = 0;

  constructor(
    private readonly target: WriterTarget,
    private readonly metrics: Metrics,
    private readonly options: WorkerInit["options"] = {},
    private readonly opts: ThreadedWriterOptions = {},
  ) {
    this.sqlite = target.kind === "sqlite" ? target.store : null;
    this.scheduling = opts.scheduling ?? "background";
    this.journal =
      target.kind === "sqlite"
        ? new Journal(`${target.store.file}.event-journal`, target.store.synchronous === "FULL")
        : new Journal(target.journalDir, target.journalSync);
  }

  get depth(): number {
    return this.committed.events.length + this.journaled.events.length + this.inFlight;
  }

  get spooled(): number {
    return this.spooledBatches;
  }

  /**
   * The link's clicks not committed yet (see uncommittedClicks), and, on PostgreSQL, its committed clicks not yet reported
   * in a rollup flush (a read made while a flush's report is on its way may count them twice for that moment, as the
   * in-process writer's would). SQLite's store counts committed clicks itself, in one snapshot with the rollup watermark
   * (see the class comment).
   */
  pendingClicks(linkId: number): number {
    return this.uncommittedClicks(linkId) + (this.sqlite ? 0 : this.unflushedClicks(linkId, -Infinity));
  }

  /**
   * A link's clicks handed to the writer that it has not committed yet: this turn's, the journal records not yet handed
   * over, the batches not yet answered. A cache fill (a link read again after a change anywhere) counts them, as the
   * entry it replaces did: without them, clicks under way when the cache was dropped would be forgotten, and a link
   * with max_clicks could be clicked past its limit. (A batch leaves these the moment its answer moves its clicks to
   * `unflushed`: counted in one place or the other, never both.)
   */
  private uncommittedClicks(linkId: number): number {
    let n = linkClicksIn(this.committed.events, linkId) + linkClicksIn(this.journaled.events, linkId);
    n += countOf(this.unpostedClicks, linkId);
    for (const b of this.batches.values()) n += countOf(b.clicks, linkId);
    return n;
  }

  /**
   * A link's committed clicks not yet reported in a rollup flush, of the commits past event id `after` (SQLite: the
   * rollup watermark of the read that asks; the commits up to it, in the links' counters already, are the first few of
   * `unflushed` until the flush's report arrives).
   */
  private unflushedClicks(linkId: number, after: number): number {
    let n = this.unflushedSums.get(linkId);
    for (let k = 0; k < this.unflushed.length && this.unflushed[k]![0] <= after; k++) n -= countOf(this.unflushed[k]![1], linkId);
    return n;
  }

  async start(): Promise<void> {
    if (this.sqlite) this.sqlite.clicksPending = (linkId, watermark) => this.unflushedClicks(linkId, watermark);
    await this.spawn();
    if (!this.sqlite) return;
    // no connection checkpoints inside its commits any more: a thread of its own does, between them
    this.sqlite.stopAutocheckpoint();
    this.startCheckpointer(this.sqlite);
  }

  /** The WAL checkpointer thread; replaced a second after it stops (without it the WAL would only grow). */
  private startCheckpointer(store: SqliteStore) {
    if (this.closed) return;
    const c = new Worker(new URL("../store/sqlite/checkpointer.js", import.meta.url), {
      workerData: {
        file: store.file,
        restartBytes: store.walRestartBytes,
        gauge: this.walGauge,
        scheduling: this.scheduling,
      } satisfies CheckpointerInit,
    });
    this.checkpointer = c;
    c.on("error", (err) => this.opts.log?.error?.({ err: err.message }, "the WAL checkpointer thread failed"));
    c.on("exit", () => {
      if (this.checkpointer !== c || this.closed) return;
      this.opts.log?.error?.({}, "the WAL checkpointer thread stopped; starting a new one in 1 s");
      setTimeout(() => this.startCheckpointer(store), 1000).unref();
    });
    c.unref();
  }

  private spawn(): Promise<void> {
    // only the settings (functions cannot cross to a thread; unset ones keep the writer's defaults)
    const options: WorkerInit["options"] = {};
    for (const k of ["maxBatch", "rollupIntervalMs", "rollupMaxKeys", "chunkSize", "gatherMs"] as const)
      if (this.options[k] !== undefined) options[k] = this.options[k];
    const t = this.target;
    const init: WorkerInit =
      t.kind === "sqlite"
        ? {
            kind: "sqlite",
            file: t.store.file,
            journalDir: this.journal.dir,
            scheduling: this.scheduling,
            synchronous: t.store.synchronous,
            walRestartBytes: t.store.walRestartBytes,
            walGauge: this.walGauge,
            options,
          }
        : {
            kind: "postgres",
            url: t.store.opts.url,
            poolSize: writerPool(t.store),
            journalDir: this.journal.dir,
            scheduling: this.scheduling,
            spoolDir: t.spoolDir,
            options,
          };
    const worker = new Worker(new URL("./writer-worker.js", import.meta.url), { workerData: init });
    this.worker = worker;
    return (this.ready = new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on("message", (m: FromWorker) => {
        if (m.t === "ready") {
          started = true;
          this.recovered(m.journalSeq, m.replayed);
          resolve();
        } else if (m.t === "failed") {
          const err = deserializeError(m.error);
          if (err instanceof AppError && err.status === 507) this.downCause = err;
          reject(err);
        } else this.receive(m);
      });
      worker.on("error", (err) => {
        this.opts.log?.error?.({ err: err.message }, "the event writer thread failed");
        if (!started) reject(err);
      });
      worker.on("exit", (code) => {
        if (this.worker !== worker) return;
        this.worker = null;
        this.up = false;
        // the clicks waiting for their commit are refused; journaled batches were answered already: the next thread
        // commits them
        this.failAll(this.downCause ?? new WriterUnavailable(`the event writer thread stopped (exit code ${code}); try again in a moment`));
        if (!started) reject(new Error(`the event writer thread stopped while starting (exit code ${code})`));
        else if (!this.closed) {
          this.opts.log?.error?.({ code }, "the event writer thread stopped unexpectedly; starting a new one");
          this.downSince = Date.now();
          this.restart();
        }
      });
    }));
  }

  /**
   * A writer thread is up: it has committed everything the journal held (records up to `journalSeq`), so the journal
   * starts over, and the batches an earlier thread held are done.
   */
  private recovered(journalSeq: number, replayed: number) {
    if (replayed) this.opts.log?.info?.({ events: replayed }, "committed events from the event journal");
    this.journalSeq = Math.max(this.journalSeq, journalSeq);
    this.journal.reset();
    for (const [seq, b] of this.batches) {
      if (b.jseq === undefined) continue;
      this.batches.delete(seq);
      this.inFlight -= b.events;
    }
    // (records not handed over yet were in the journal too: committed now)
    this.inFlight -= this.unpostedEvents;
    this.unposted = [];
    this.unpostedEvents = 0;
    this.unpostedBytes = 0;
    this.unpostedClicks = null;
    if (this.postTimer) clearTimeout(this.postTimer);
    this.postTimer = null;
    this.journaledInFlight = 0;
    this.journalCommitted = this.journalSeq;
    this.settle();
    this.up = true;
    this.downSince = 0;
    this.downCause = null;
  }

  /** A new thread recovers the rollups from the event log, as a restart would; tried again every second until one starts. */
  private restart() {
    if (this.closed) return;
    this.spawn().catch((err: Error) => {
      this.opts.log?.error?.({ err: err.message }, "the event writer thread could not be restarted; trying again in 1 s");
      setTimeout(() => this.restart(), 1000).unref();
    });
  }

  status(): Record<string, string> {
    if (!this.downSince) return {};
    return { writer: `down: no event writer thread since ${new Date(this.downSince).toISOString()} (restarting); events are refused with 503` };
  }

  private receive(m: FromWorker) {
    if ((m.t === "ack" || m.t === "done") && m.spooled !== undefined) this.spooledBatches = m.spooled;
    switch (m.t) {
      case "ack": {
        this.apply(m.metrics);
        const b = this.batches.get(m.seq);
        if (!b) return;
        if (m.error) {
          const err = deserializeError(m.error);
          if (err instanceof AppError && err.type === "storage-full") {
            this.sqlite?.noteDiskFull();
            this.downCause = err;
          }
          // a journaled batch was answered already: the thread stops and the next one commits it from the journal
          if (b.jseq !== undefined) return;
          this.batches.delete(m.seq);
          this.inFlight -= b.events;
          return b.reject(err);
        }
        this.batches.delete(m.seq);
        this.inFlight -= b.events;
        this.sqlite?.noteWriteSucceeded();
        if (b.jseq !== undefined) {
          this.journaledInFlight -= b.events;
          this.journalCommitted = b.jseq;
          this.journal.release(b.jseq);
          this.settle();
        }
        if (b.clicks && m.lastId) {
          this.unflushed.push([m.lastId, b.clicks]);
          this.unflushedSums.addAll(b.clicks, 1);
        }
        return b.resolve();
      }
      case "done": {
        this.apply(m.metrics);
        const c = this.calls.get(m.id);
        this.calls.delete(m.id);
        if (m.error) c?.reject(deserializeError(m.error));
        else c?.resolve();
        return;
      }
      case "flushed": {
        // these clicks are in the links' counters now (the commits are in order: the first ones here)
        let k = 0;
        for (; k < this.unflushed.length && this.unflushed[k]![0] <= m.to; k++) this.unflushedSums.addAll(this.unflushed[k]![1], -1);
        if (k > 0) this.unflushed.splice(0, k);
        return;
      }
      case "spooled":
        this.spooledBatches = m.batches;
        return;
      case "log":
        if (m.level === "error") (this.opts.log?.error ?? this.opts.log?.warn)?.(m.obj, m.msg);
        else this.opts.log?.[m.level](m.obj, m.msg);
        return;
    }
  }

  private apply(m: WorkerMetrics | undefined) {
    if (!m) return;
    for (const v of m.batchSizes) this.metrics.batchSize.observe(v);
    for (const v of m.latencies) this.metrics.batchLatency.observe(v);
    if (m.events) this.metrics.eventsWritten.inc(m.events);
    if (m.failures) this.metrics.writerFailures.inc(m.failures);
    if (m.spooled) this.metrics.spooled.inc(m.spooled);
  }

  /** Refuses what waits for a commit (journaled batches stay: they are answered, and the next thread commits them). */
  private failAll(err: Error) {
    for (const [seq, b] of this.batches) {
      if (b.jseq !== undefined) continue;
      this.batches.delete(seq);
      this.inFlight -= b.events;
      b.reject(err);
    }
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  /**
   * Resolves once every event answered before the call is committed to the event log (at once when none waits), so a
   * read sees what its client was told is stored. While no writer thread is up, at once: reads go on with what is
   * committed.
   */
  settled(): Promise<void> {
    this.send();
    if (this.journalCommitted >= this.journalSeq || !this.up) return Promise.resolve();
    // (PostgreSQL: the writer thread gathers records into larger commits; this read waits, so no longer. Once per
    // record: the thread commits everything it holds at once after an urgent record or a hurry, so the reads that come
    // while those records are on their way wait for the same commit and need not ask again)
    if (this.unposted.length) this.post(true);
    else if (this.worker && !this.sqlite && this.hurriedUpTo < this.journalSeq) this.worker.postMessage({ t: "hurry" } satisfies ToWorker);
    this.hurriedUpTo = this.journalSeq;
    return new Promise((resolve) => this.settling.push({ upTo: this.journalSeq, resolve }));
  }

  private settle() {
    if (this.settling.length === 0) return;
    const waiting = this.settling;
    this.settling = [];
    for (const w of waiting) {
      if (w.upTo <= this.journalCommitted) w.resolve();
      else this.settling.push(w);
    }
  }

  write(event: EventRow, options?: WriteOptions): Promise<void> {
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    return new Promise<void>((resolve, reject) => {
      const q = (options?.committed ?? countsAsLinkClick(event)) ? this.committed : this.journaled;
      q.events.push(event);
      q.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  writeMany(events: EventRow[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    return new Promise<void>((resolve, reject) => {
      const q = events.some(countsAsLinkClick) ? this.committed : this.journaled;
      for (const e of events) q.events.push(e);
      q.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  /** Hands what this turn queued to the writer thread: the link clicks as one batch, the rest through the journal. */
  private send() {
    if (this.committed.events.length) {
      const q = this.committed;
      this.committed = { events: [], waiters: [] };
      this.sendCommitted(q);
    }
    if (this.journaled.events.length) {
      const q = this.journaled;
      this.journaled = { events: [], waiters: [] };
      // the writer thread is behind: answers wait for its commits again (back-pressure), until it has caught up
      if (this.journaledInFlight >= MAX_UNCOMMITTED) this.sendCommitted(q);
      else this.sendJournaled(q);
    }
  }

  private refusal(): Error | null {
    if (this.worker && this.up) return null;
    return this.downCause ?? new WriterUnavailable("the event writer thread is restarting; try again in a moment");
  }

  /** Link clicks: answered when the writer thread has committed them. */
  private sendCommitted({ events, waiters }: Queued) {
    // journaled events answered earlier are committed first: the event log keeps the order of the answers
    this.post();
    const clicks = tallyClicks(events, null);
    const settle = (err: Error | null) => {
      for (const w of waiters) {
        if (err) w.reject(err);
        else w.resolve();
      }
    };
    const refused = this.refusal();
    if (refused) return settle(refused);
    const seq = ++this.seq;
    this.batches.set(seq, { events: events.length, clicks, resolve: () => settle(null), reject: settle });
    this.inFlight += events.length;
    this.worker!.postMessage({ t: "append", seq, events: packEvents(events) } satisfies ToWorker);
  }

  /** Everything else: answered once in the journal; the writer thread commits it in a moment. */
  private sendJournaled({ events, waiters }: Queued) {
    const refused = this.refusal();
    if (refused) {
      for (const w of waiters) w.reject(refused);
      return;
    }
    for (let from = 0; from < events.length; from += RECORD_EVENTS) {
      const part = events.length > RECORD_EVENTS ? events.slice(from, from + RECORD_EVENTS) : events;
      // (PostgreSQL: a batch with an id, so a replay of the journal through the spool skips what the database has)
      const json = this.sqlite
        ? JSON.stringify(packEvents(part))
        : JSON.stringify({ id: randomUUID(), packed: packEvents(part) } satisfies JournaledBatch);
      const jseq = this.journalSeq + 1;
      let rec: Buffer;
      try {
        rec = this.journal.append(jseq, json);
      } catch (err) {
        // nothing of this turn's batch is answered (a part already journaled is committed all the same: never lost)
        for (const w of waiters) w.reject(err as Error);
        return;
      }
      this.journalSeq = jseq;
      this.unposted.push({ rec, jseq });
      this.unpostedEvents += part.length;
      this.unpostedBytes += rec.length;
      this.unpostedClicks = tallyClicks(part, this.unpostedClicks);
      this.inFlight += part.length;
      this.journaledInFlight += part.length;
      if (this.unpostedBytes >= POST_BYTES) this.post();
    }
    for (const w of waiters) w.resolve();
    if (this.unposted.length > 0) this.postTimer ??= setTimeout(() => this.post(), POST_MS);
  }

  /** Hands the journal records not yet handed over to the writer thread, in one message. */
  private post(urgent = false) {
    if (this.postTimer) clearTimeout(this.postTimer);
    this.postTimer = null;
    // (no thread up: the next one commits them from the journal as it starts, and recovered() drops them here)
    if (this.unposted.length === 0 || !this.worker || !this.up) return;
    const records = this.unposted;
    const seq = ++this.seq;
    this.batches.set(seq, {
      events: this.unpostedEvents,
      clicks: this.unpostedClicks,
      jseq: records.at(-1)!.jseq,
      resolve: () => {},
      reject: () => {},
    });
    this.unposted = [];
    this.unpostedEvents = 0;
    this.unpostedBytes = 0;
    this.unpostedClicks = null;
    // (each record's memory is its own, see Journal.append: transferred, it leaves this thread)
    const buffers = records.map((r) => r.rec.buffer as ArrayBuffer);
    this.worker.postMessage({ t: "append", seq, records: buffers, jseqs: records.map((r) => r.jseq), urgent } satisfies ToWorker, buffers);
  }

  private async call(op: "flush" | "flushRollups" | "close"): Promise<void> {
    this.send();
    this.post();
    await this.ready;
    const worker = this.worker;
    if (!worker) throw new WriterUnavailable("the event writer thread is restarting; try again in a moment");
    const id = ++this.seq;
    await new Promise<void>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      worker.postMessage({ t: "call", id, op } satisfies ToWorker);
    });
  }

  flush(): Promise<void> {
    return this.call("flush");
  }

  flushRollups(): Promise<void> {
    return this.call("flushRollups");
  }

  /** Stops taking events, commits what is queued, writes the rollups and stops the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // (a thread being replaced: its successor is the one to close)
    await this.ready?.catch(() => {});
    const w = this.worker;
    try {
      if (w) await this.call("close");
      // everything is committed: the journal holds nothing the event log lacks
      if (w && this.inFlight === 0) this.journal.reset();
    } finally {
      this.journal.close();
      for (const s of this.settling.splice(0)) s.resolve();
      this.worker = null;
      await w?.terminate();
      const c = this.checkpointer;
      this.checkpointer = null;
      await c?.terminate();
    }
  }
}
