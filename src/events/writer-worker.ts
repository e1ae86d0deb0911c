/**
 * The writer thread (see writer-thread.ts): the event log's EventWriter on a connection of its own, so inserting,
 * committing, aggregating and flushing rollups (and, on SQLite, WAL checkpoints; on PostgreSQL, the statements'
 * parameters, the protocol and the spool) do not take the HTTP thread's time.
 */
import "../util/tick-shape.js";
import { parentPort, workerData } from "node:worker_threads";
import { SqliteStore } from "../store/sqlite/index.js";
import { PgStore } from "../store/postgres/index.js";
import type { Metrics } from "../ops/metrics.js";
import { EventWriter, journalToSpool, type JournaledBatch } from "./writer.js";
import { MARK_SHIFT, readJournal, recordPayload, rejectBatch } from "./journal.js";
import { Spool, type SpooledBatch } from "./spool.js";
import type { EventRow } from "../store/port.js";
import { unpackEvents, type PackedEvents } from "./pack.js";
import { backgroundThisThread } from "../util/sched.js";
import { serializeError, type FromWorker, type ToWorker, type WorkerInit, type WorkerMetrics } from "./writer-thread.js";

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

/** What the EventWriter measures, gathered here and handed to the HTTP thread's metrics with the next answer. */
const gathered: WorkerMetrics = { batchSizes: [], latencies: [], events: 0, failures: 0, spooled: 0 };
const take = (): WorkerMetrics | undefined => {
  if (gathered.batchSizes.length === 0 && gathered.failures === 0 && gathered.spooled === 0) return undefined;
  const m = { ...gathered };
  gathered.batchSizes = [];
  gathered.latencies = [];
  gathered.events = 0;
  gathered.failures = 0;
  gathered.spooled = 0;
  return m;
};
const metrics = {
  batchSize: { observe: (v: number) => gathered.batchSizes.push(v) },
  batchLatency: { observe: (v: number) => gathered.latencies.push(v) },
  eventsWritten: { inc: (n = 1) => (gathered.events += n) },
  writerFailures: { inc: (n = 1) => (gathered.failures += n) },
  spooled: { inc: (n = 1) => (gathered.spooled += n) },
} as unknown as Metrics;

const log = {
  warn: (o: object, msg: string) => post({ t: "log", level: "warn", obj: o, msg }),
  info: (o: object, msg: string) => post({ t: "log", level: "info", obj: o, msg }),
};

let store: SqliteStore | PgStore;
let writer: EventWriter;
/** PostgreSQL: the instance's spool (its size goes with every answer) */
let spool: Spool | undefined;
let checkedWalAt = 0;

/**
 * After an answer, at most every 10 ms: the log started over once it is large (see checkpointBetweenCommits). The check
 * reads the log's length from memory the checkpointer thread shares; every 100 ms let it outgrow twice its limit here
 * (measured: 2.1–2.8 times in half the runs of the test that bounds it).
 */
function checkpointSometimes() {
  if (!(store instanceof SqliteStore)) return;
  const now = Date.now();
  if (now - checkedWalAt < 10) return;
  checkedWalAt = now;
  try {
    store.checkpointBetweenCommits();
  } catch {
    // busy (the checkpointer thread is at it) or a full disk: the next time
  }
}

/**
 * Whether SQLite refused the events themselves (a constraint, a value it cannot bind), as opposed to failing to store
 * anything (a full disk, an I/O error): the same events would be refused again.
 */
function refused(err: unknown): boolean {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  if (cause instanceof TypeError || cause instanceof RangeError) return true;
  const code = String((cause as { code?: unknown } | null)?.code ?? "");
  return /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(code);
}

/**
 * Commits events answered from the journal, as a writer thread starts (nothing else is committed meanwhile, so the
 * journal's mark moves in order). Should SQLite refuse them (it never should: the edges validate), they are committed
 * one by one, and each one refused is kept in the journal's rejected.ndjson (logged as an error), with the mark moved
 * past it: never dropped silently, and no later thread stops on it again (every thread would die on it, and every
 * event be refused meanwhile). Anything else (a full disk) fails as before. A running thread that meets such a batch
 * stops (see below), so that the next one comes here.
 */
async function commitJournaled(events: EventRow[]): Promise<number> {
  try {
    return await writer.append(events);
  } catch (err) {
    if (!refused(err)) throw err;
  }
  let last = 0;
  for (const e of events) {
    try {
      last = Math.max(last, await writer.append([e]));
    } catch (err) {
      if (!refused(err)) throw err;
      const reason = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
      const { journal, ...event } = e;
      const file = rejectBatch(init.journalDir, { mark: journal, events: [event] }, reason);
      (store as SqliteStore).setJournalMark(journal!);
      post({
        t: "log",
        level: "error",
        obj: { err: reason, file },
        msg: "SQLite refused an event answered from the journal: it is kept in a file for an operator, not in the event log",
      });
    }
  }
  return last;
}

/**
 * Recovers the rollups, then commits what the event journal holds past the committed mark (events answered before a
 * crash, or before an earlier writer thread died). Returns the last journal record seen and how many events it committed.
 */
async function startSqlite(init: Extract<WorkerInit, { kind: "sqlite" }>): Promise<{ journalSeq: number; replayed: number }> {
  const sqlite = (store = new SqliteStore({
    file: init.file,
    synchronous: init.synchronous,
    autocheckpoint: false,
    walRestartBytes: init.walRestartBytes,
    walGauge: init.walGauge,
  }));
  writer = new EventWriter(sqlite, metrics, { ...init.options, log, onFlushed: (to) => post({ t: "flushed", to }) });
  await writer.start();
  const mark = await sqlite.journalMark();
  let journalSeq = Math.max(0, Math.floor(mark / MARK_SHIFT));
  let replayed = 0;
  for (const rec of readJournal(init.journalDir)) {
    journalSeq = Math.max(journalSeq, rec.seq);
    const events = unpackEvents(rec.payload as PackedEvents, rec.seq).filter((e) => e.journal! > mark);
    if (events.length === 0) continue;
    replayed += events.length;
    // one record after the other: a refused one must not let a later one's mark get in before it
    await commitJournaled(events);
  }
  await writer.flush();
  // link clicks among them: in the links' counters before the first read (the HTTP thread counts only the clicks it handed over)
  if (replayed > 0) await writer.flushRollups();
  return { journalSeq, replayed };
}

/**
 * PostgreSQL: what the journal holds (batches answered before a crash, or before an earlier writer thread died) goes to
 * the instance's spool, whose replay, as the writer starts, commits the batches the database does not have yet.
 */
async function startPostgres(init: Extract<WorkerInit, { kind: "postgres" }>): Promise<{ journalSeq: number; replayed: number }> {
  const pg = (store = new PgStore({ url: init.url, poolSize: init.poolSize, watchChanges: false }));
  spool = new Spool(init.spoolDir);
  // (logged there: the batches go to the spool, whose replay below commits those the database lacks)
  const journalSeq = journalToSpool(init.journalDir, spool, log);
  writer = new EventWriter(pg, metrics, {
    // answered batches gathered for up to 25 ms into one commit (PostgreSQL's work per event falls with the commit's
    // size: measured unloaded, 25-event commits 30 µs of PostgreSQL and node per event, 100-event 17, 500-event 14)
    gatherMs: 25,
    ...init.options,
    spool,
    // one commit at a time: the event log keeps the order of the answers (two in flight may take ids in either order)
    maxInFlight: 1,
    rejectDir: init.journalDir,
    log,
    onFlushed: (to) => post({ t: "flushed", to }),
  });
  await writer.start();
  // clicks replayed from the spool: in the links' counters before the first read (the HTTP thread counts only those it handed over)
  await writer.flushRollups().catch(() => {});
  pg.startHeartbeat();
  // the HTTP thread's /healthz and metrics: the spool's size whenever it changes
  let told = -1;
  const tell = () => {
    if (spool!.size !== told) post({ t: "spooled", batches: (told = spool!.size) });
  };
  tell();
  setInterval(tell, 250).unref();
  return { journalSeq, replayed: 0 };
}

const start = () => (init.kind === "sqlite" ? startSqlite(init) : startPostgres(init));

if (init.scheduling === "background") {
  const why = backgroundThisThread();
  if (why) log.info({ reason: why }, "the event writer's threads could not all be made background threads (CLICKTRAIL_WRITER_SCHEDULING)");
}

start().then(
  ({ journalSeq, replayed }) => post({ t: "ready", journalSeq, replayed }),
  (err: unknown) => post({ t: "failed", error: serializeError(err) }),
);

port.on("message", (m: ToWorker) => {
  if (m.t === "append") {
    const journaled = "records" in m;
    // PostgreSQL: each record is a batch with its id, answered already (done once committed, spooled or put aside)
    const done: Promise<number> =
      journaled && init.kind === "postgres"
        ? writer.appendAnswered(
            m.records.map((rec): SpooledBatch => {
              const b = recordPayload(rec) as JournaledBatch;
              return { id: b.id, events: unpackEvents(b.packed) };
            }),
            m.urgent,
          )
        : writer.append(
            journaled ? m.records.flatMap((rec, i) => unpackEvents(recordPayload(rec) as PackedEvents, m.jseqs[i])) : unpackEvents(m.events),
          );
    done.then(
      (lastId) => {
        post({ t: "ack", seq: m.seq, lastId: lastId || undefined, metrics: take(), spooled: spool?.size });
        checkpointSometimes();
      },
      (err: unknown) => {
        post({ t: "ack", seq: m.seq, error: serializeError(err), metrics: take(), spooled: spool?.size });
        // a journaled batch was answered already: no later commit may move the journal's mark past it, so this thread
        // stops here, and the next one commits the journal from the mark on (putting aside what SQLite refuses)
        if (journaled) process.exit(1);
      },
    );
    return;
  }
  if (m.t === "hurry") return writer.hurry();
  // (the rollups cover every event acknowledged before the call: journaled ones, answered already, are committed first)
  const run =
    m.op === "flush"
      ? writer.flush()
      : m.op === "flushRollups"
        ? writer.flush().then(() => writer.flushRollups())
        : writer.close().then(() => store.close());
  run.then(
    () => post({ t: "done", id: m.id, metrics: take(), spooled: spool?.size }),
    (err: unknown) => post({ t: "done", id: m.id, error: serializeError(err), metrics: take(), spooled: spool?.size }),
  );
});
