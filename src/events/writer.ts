import { randomUUID } from "node:crypto";
import { AppError } from "../errors.js";
import { StoreUnavailable, WriterRetired, type EventRow, type RollupOp, type Store } from "../store/port.js";
import type { Metrics } from "../ops/metrics.js";
import { Journal, readJournal, rejectBatch } from "./journal.js";
import { packEvents, unpackEvents, type PackedEvents } from "./pack.js";
import { countsAsLinkClick, linkClicksIn, RollupBuffer, rollupOps } from "./rollup.js";
import type { Spool, SpooledBatch } from "./spool.js";

/** Told once its event is committed (with the id of the last event of that commit) or refused. */
type Waiter = (err: Error | null, lastId?: number) => void;

/**
 * A batch waiting for its group commit: one turn's events answered once committed (with a waiter each), or one turn's
 * events answered once in the journal (`jseq`: their record; nobody waits for them), or a batch answered from a journal
 * another thread keeps (`answered`: see appendAnswered).
 */
interface Pending extends SpooledBatch {
  waiters: Waiter[];
  jseq: number;
  /** told once the batch is done, with the id of its commit's last event (0: spooled, or put aside) */
  answered?: (lastId: number) => void;
  lastId?: number;
  /** an answered batch a read waits for: committed without gathering (see gatherMs) */
  urgent?: boolean;
}

/** A record of the PostgreSQL writer's journal: a batch, its events packed (see pack.ts). */
export interface JournaledBatch {
  id: string;
  packed: PackedEvents;
}

/**
 * Events answered from the journal but not yet committed (or spooled), past which answers wait for commits again: the
 * database is behind the load, and clients are slowed down to its pace instead of the queue growing without bound.
 */
const MAX_UNCOMMITTED = 20_000;

/**
 * What the rest of Clicktrail needs of the event log's writer: the in-process EventWriter, or (SQLite on a file) the
 * ThreadedWriter that runs the same EventWriter on a worker thread.
 */
export interface EventLog {
  /**
   * Resolves once the event is stored (committed, or where the writer keeps a journal, journaled: see `settled`);
   * rejects (503, 507) when it could not be.
   */
  write(event: EventRow, options?: WriteOptions): Promise<void>;
  writeMany(events: EventRow[]): Promise<void>;
  /** Commits everything queued so far. */
  flush(): Promise<void>;
  /**
   * Resolves once every event acknowledged before the call is in the event log, where reads find it. A writer that
   * acknowledges only committed events has nothing to wait for (no method); the SQLite writer thread acknowledges some
   * once they are in its journal (see ThreadedWriter).
   */
  settled?(): Promise<void>;
  /** Writes the aggregated rollups; resolves when every event committed before the call is in them. */
  flushRollups(): Promise<void>;
  /** Non-bot clicks of a link committed to the event log but not yet to the link's counter. */
  pendingClicks(linkId: number): number;
  /** Events waiting for their commit. */
  readonly depth: number;
  /** Batches in the spool, waiting for the database. */
  readonly spooled: number;
  /** For /healthz: what is wrong with the writer itself ("down: …"), if anything. */
  status?(): Record<string, string>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface WriteOptions {
  /**
   * Answer only once the event is committed, never from a journal: a click that counts against its link's max_clicks,
   * whose count must be exact before the next click is answered. By default, every non-bot link click.
   */
  committed?: boolean;
}

export class WriterUnavailable extends Error {}

export interface WriterOptions {
  /** Most events in one group commit. */
  maxBatch?: number;
  /** How often aggregated rollups are written (stats reads flush first, so they never lag). */
  rollupIntervalMs?: number;
  /** Rollup changes past which a flush starts early. */
  rollupMaxKeys?: number;
  /** Rollup row changes per transaction while flushing, so no flush stalls the redirects for long. */
  chunkSize?: number;
  /**
   * Group commits under way at once. 1 for SQLite (one synchronous writer); more for PostgreSQL, where a commit is a
   * network round trip and the next batch need not wait for it.
   */
  maxInFlight?: number;
  /**
   * Where batches go while the database is unreachable (PostgreSQL: the store must have appendBatches). Without a spool,
   * such a batch fails and its requests answer 503.
   */
  spool?: Spool;
  /** Told about spool and replay trouble. */
  log?: { warn(o: object, msg: string): void; info(o: object, msg: string): void; error?(o: object, msg: string): void };
  /** Told after each rollup flush is committed: the flushed events' ids run up to `to` (the worker thread reports it). */
  onFlushed?: (to: number) => void;
  /**
   * PostgreSQL: the instance's event journal (journal.ts, with a spool). Events no counter depends on (every write but
   * a click counted against its link's max_clicks, see WriteOptions) are answered once their turn's record is in it,
   * without waiting for the database's commit; a batch's record goes once the batch is committed or spooled. After a
   * crash, `start()` moves what the journal still holds into the spool, whose replay skips the batches (by id) that the
   * database already has.
   */
  journal?: Journal;
  /**
   * Where a batch answered already that the database refuses is kept for an operator (`rejected.ndjson`): the journal's
   * folder. Given when another thread keeps the journal (see appendAnswered); by default the `journal`'s.
   */
  rejectDir?: string;
  /**
   * Batches answered already (appendAnswered) are gathered for up to this long after the last commit started, so that
   * commits are larger (cheaper per event: PostgreSQL parses, plans and runs one statement per commit). Anything else
   * queued, an urgent batch, flush() or maxBatch events end the wait. 0: every commit starts as soon as it can.
   */
  gatherMs?: number;
}

/**
 * What a PostgreSQL writer's journal holds (batches answered before a crash, some of them committed already) goes to the
 * spool, whose replay commits those the database does not have yet (it knows the others' batch ids). The journal is
 * left as it is: its keeper starts it over. Returns the last record's sequence number (0: none).
 */
export function journalToSpool(dir: string, spool: Spool, log?: WriterOptions["log"]): number {
  const records = readJournal(dir);
  const batches = records.map((r): SpooledBatch => {
    const b = r.payload as JournaledBatch | SpooledBatch;
    // records of earlier versions hold the events as objects
    return "packed" in b ? { id: b.id, events: unpackEvents(b.packed) } : b;
  });
  // one fsync for all (a crash at low load leaves thousands of small records, most of them committed already)
  spool.appendMany(batches);
  const events = batches.reduce((n, b) => n + b.events.length, 0);
  if (records.length) log?.info({ batches: records.length, events }, "event journal of an earlier run: replaying it through the spool");
  return records.at(-1)?.seq ?? 0;
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * The one writer of the event log.
 *
 * Group commit: events enqueued during one turn of the event loop are appended in one transaction, then every waiter
 * is told. A caller answers its client only after its promise resolves, so an acknowledged event is a committed event;
 * a failed commit rejects its waiters, so nothing is acknowledged that was not stored.
 *
 * Rollups: committed events are aggregated in memory and written every `rollupIntervalMs` in chunks, with a watermark
 * (the last event id they cover). After a crash, `start()` finishes an interrupted flush and replays the events past the
 * watermark, so the rollups always converge on exactly the event log.
 * On PostgreSQL each instance is one writer with its own watermark (see PgStore), so the same holds per instance.
 *
 * With a spool (PostgreSQL), a batch that cannot reach the database is fsynced to the instance's spool and
 * acknowledged, then replayed once the database answers again. A rollup flush that fails leaves the buffer unusable
 * (its content was handed over); the next flush rebuilds it from the event log, exactly as a restart would.
 */
export class EventWriter implements EventLog {
  /** batches waiting for their commit, in order, and their events */
  private queue: Pending[] = [];
  private queued = 0;
  /** this turn's writes: answered once committed, and answered once journaled */
  private turnCommitted: Pending | null = null;
  private turnJournaled: { events: EventRow[]; waiters: Waiter[] } | null = null;
  private scheduled = false;
  private readonly journal: Journal | undefined;
  /** the last journal record written, and the last one whose batch (and every one before it) is committed or spooled */
  private journalSeq = 0;
  private journalDone = 0;
  /** records written whose batches are not done yet, in order, and those of them done out of order */
  private journalOpen: number[] = [];
  private journalDoneEarly = new Set<number>();
  /** events answered from the journal whose batches are not done yet */
  private journaledOpen = 0;
  /** reads waiting for the journal's batches to be done up to their record */
  private settling: { upTo: number; resolve: () => void }[] = [];
  /** group commits under way (at most maxInFlight) */
  private commits = new Set<Promise<void>>();
  private closed = false;
  private buffer: RollupBuffer | null = null;
  private rolling: Promise<void> | null = null;
  /** The flush under way: its link clicks count as pending until its watermark is committed. */
  private inFlight: { from: number; linkClicks: Map<number, number> } | null = null;
  /**
   * Batches under commit whose events are not in the rollup buffer yet (see uncommittedClicks). A batch leaves this set
   * in the step that adds its events to the buffer.
   */
  private unbuffered = new Set<SpooledBatch[]>();
  /** the store counts committed clicks itself (see countCommittedIn) */
  private storeCounts = false;
  /** a rollup flush failed: the buffer must be rebuilt from the event log before the next one */
  private broken = false;
  /**
   * Appending batches and adding them to the buffer (shared: several at once) against taking the buffer for a flush or
   * rebuilding it from the event log (exclusive). A flush then never covers an event id with a commit still under way
   * below it, and a batch committed during a rebuild is neither counted twice nor missed.
   */
  private appending = 0;
  private exclusiveTurn: Promise<void> | null = null;
  private appendsDone: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** gathering answered batches (see gatherMs): when the last commit started, the timer that starts the next */
  private lastCommitAt = 0;
  private gatherTimer: NodeJS.Timeout | null = null;
  private flushing = 0;
  private readonly opts: Required<Omit<WriterOptions, "spool" | "log" | "onFlushed" | "journal" | "rejectDir">>;
  private readonly rejectDir: string | undefined;
  private adoptTimer: NodeJS.Timeout | null = null;
  private readonly spool: Spool | undefined;
  private readonly log: WriterOptions["log"];
  private readonly onFlushed: WriterOptions["onFlushed"];
  /** the database failed: batches go straight to the spool until a replay gets through */
  private spooling = false;
  private replayTimer: NodeJS.Timeout | null = null;
  private replaying: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    opts: WriterOptions = {},
  ) {
    const { spool, log, onFlushed, journal, rejectDir, ...rest } = opts;
    this.rejectDir = rejectDir ?? journal?.dir;
    this.onFlushed = onFlushed;
    this.opts = { maxBatch: 5000, rollupIntervalMs: 10_000, rollupMaxKeys: 200_000, chunkSize: 1000, maxInFlight: 1, gatherMs: 0, ...rest };
    if (spool && !store.appendBatches) throw new Error("a spool needs a store with appendBatches (batch ids make replays safe)");
    if (journal && !spool) throw new Error("a journal needs a spool (a crash moves what the journal holds into it)");
    this.spool = spool;
    this.journal = journal;
    this.log = log;
  }

  /** Batches in the spool, waiting for the database. */
  get spooled(): number {
    return this.spool?.size ?? 0;
  }

  get depth(): number {
    return this.queued + (this.turnCommitted?.events.length ?? 0) + (this.turnJournaled?.events.length ?? 0);
  }

  /** Brings the rollups up to date with the event log, then flushes them periodically. */
  async start(): Promise<void> {
    if (this.journal) this.recoverJournal(this.journal);
    await this.recover();
    await this.flushRollups();
    if (this.spool?.size) {
      // batches spooled by an earlier run that ended while the database was away
      this.spooling = true;
      await this.replaySpool().catch(() => {});
    }
    this.timer = setInterval(() => void this.flushRollups().catch(() => {}), this.opts.rollupIntervalMs);
    this.timer.unref();
    if (this.store.claimOrphanWriter) {
      this.adoptTimer = setInterval(
        () =>
          void this.adoptOrphans().catch((err) => this.log?.warn({ err: (err as Error).message }, "adopting a stopped instance's rollups failed")),
        30_000,
      );
      this.adoptTimer.unref();
    }
  }

  /**
   * Several instances on one database: an instance that died (or was cut off for a minute) leaves events that are not
   * in the rollups yet. One live instance claims its writer, finishes them and retires it.
   */
  async adoptOrphans(): Promise<number> {
    let adopted = 0;
    for (;;) {
      const orphan = await this.store.claimOrphanWriter!();
      if (!orphan) return adopted;
      try {
        await new EventWriter(orphan.store, this.metrics, { chunkSize: this.opts.chunkSize }).recoverOnly();
        await orphan.done();
        adopted++;
        this.log?.info({}, "finished the rollups of a stopped instance");
      } catch (err) {
        await orphan.release().catch(() => {});
        throw err;
      }
    }
  }

  /** Rebuilds the rollup buffer from the store: finishes an interrupted flush, then replays past the watermark. */
  private async recover(): Promise<void> {
    const state = await this.store.rollupState();
    let watermark = state.watermark;
    if (state.pending) {
      const { from, to, chunkSize, format, done } = state.pending;
      const redo = new RollupBuffer(from);
      await this.replay(redo, from, to);
      // the row changes that flush made (an earlier version's may be more: see ROLLUP_FORMAT)
      const taken = redo.take(format);
      // cut as that flush cut them (its chunk size may not be ours), so the chunks it applied are the ones it recorded
      await this.applyChunks(taken.ops, chunkSize, new Set(done));
      await this.store.endRollupFlush(to, taken.linkClicks);
      this.onFlushed?.(to);
      watermark = to;
    }
    this.buffer = new RollupBuffer(watermark);
    await this.replay(this.buffer, watermark, null);
  }

  /** Recovers another (dead) writer's rollups through a store bound to it: used to adopt orphans. */
  async recoverOnly(): Promise<void> {
    await this.recover();
    await this.flushRollups();
  }

  private async replay(buf: RollupBuffer, after: number, upto: number | null) {
    for (;;) {
      const page = await this.store.scanEvents(after, upto, 5000);
      if (page.length === 0) return;
      after = page[page.length - 1]!.id;
      buf.add(page, after);
      // a long backlog is flushed as it goes, so memory stays bounded (not while redoing one interrupted flush)
      // (recovery runs alone: at start-up, or in a rebuild's exclusive turn)
      if (buf === this.buffer && buf.size > this.opts.rollupMaxKeys) await this.flushTaken(buf, true);
    }
  }

  /**
   * Non-bot clicks of a link not yet in the link's counter: those not committed yet (see uncommittedClicks), and, unless
   * the store counts them (see countCommittedIn), those committed but not yet flushed to it (a read made while a flush's
   * counters are being committed may count those twice for that moment: on the safe side of max_clicks).
   */
  pendingClicks(linkId: number): number {
    const uncommitted = this.uncommittedClicks(linkId);
    if (this.storeCounts) return uncommitted;
    return uncommitted + (this.buffer?.pendingClicks(linkId) ?? 0) + (this.inFlight?.linkClicks.get(linkId) ?? 0);
  }

  /**
   * A link's clicks handed to the writer that are not in the rollup buffer yet: this turn's, the queued batches', and
   * those of the commits under way. A cache fill (a link read again after a change anywhere) counts them, as the entry it
   * replaces did: without them, clicks under way when the cache was dropped would be forgotten, and a link with
   * max_clicks could be clicked past its limit. (Each click is counted in one place or the other, never both: a batch
   * moves from the queue to its commit, and from its commit to the buffer, in one step.) Batches spooled while the
   * database is away are not counted until their replay; neither is the link read then.
   */
  private uncommittedClicks(linkId: number): number {
    let n =
      (this.turnCommitted ? linkClicksIn(this.turnCommitted.events, linkId) : 0) +
      (this.turnJournaled ? linkClicksIn(this.turnJournaled.events, linkId) : 0);
    for (const b of this.queue) n += linkClicksIn(b.events, linkId);
    for (const batches of this.unbuffered) for (const b of batches) n += linkClicksIn(b.events, linkId);
    return n;
  }

  /**
   * SQLite: the store counts each link's committed clicks itself, reading the link with the rollup watermark in one
   * snapshot and adding this writer's clicks past it (SqliteStore.clicksPending), so a read that races a rollup flush
   * (its counters and watermark committed, or not yet) counts every committed click once. pendingClicks() then adds only
   * the clicks not committed yet.
   */
  countCommittedIn(store: { clicksPending?: (linkId: number, watermark: number) => number }): void {
    store.clicksPending = (linkId, watermark) => this.committedClicksPast(linkId, watermark);
    this.storeCounts = true;
  }

  /** A link's clicks in the buffer and the flush under way, of the events past the rollup watermark `watermark`. */
  private committedClicksPast(linkId: number, watermark: number): number {
    let n = 0;
    if (this.inFlight && this.inFlight.from >= watermark) n += this.inFlight.linkClicks.get(linkId) ?? 0;
    if (this.buffer && this.buffer.watermark >= watermark) n += this.buffer.pendingClicks(linkId);
    return n;
  }

  /**
   * A crash left batches in the journal that may not be committed: they go to the spool (synced), whose replay commits
   * those the database does not have yet (it knows the others' batch ids), and the journal starts over.
   */
  private recoverJournal(journal: Journal) {
    journalToSpool(journal.dir, this.spool!, this.log);
    journal.reset();
  }

  /**
   * `committed` (by default, for a link click that counts): the promise resolves once the event is committed. Otherwise,
   * with a journal, once its turn's record is written there.
   */
  write(event: EventRow, options?: WriteOptions): Promise<void> {
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = (err) => (err ? reject(err) : resolve());
      if (this.journal && !(options?.committed ?? countsAsLinkClick(event))) {
        const t = (this.turnJournaled ??= { events: [], waiters: [] });
        t.events.push(event);
        t.waiters.push(waiter);
      } else {
        const t = (this.turnCommitted ??= this.pending());
        t.events.push(event);
        t.waiters.push(waiter);
      }
      this.schedule();
    });
  }

  async writeMany(events: EventRow[]): Promise<void> {
    if (events.length === 0) return;
    if (this.journal && !events.some(countsAsLinkClick)) {
      if (this.closed) throw new WriterUnavailable("the server is shutting down");
      return new Promise<void>((resolve, reject) => {
        const t = (this.turnJournaled ??= { events: [], waiters: [] });
        for (const e of events) t.events.push(e);
        t.waiters.push((err) => (err ? reject(err) : resolve()));
        this.schedule();
      });
    }
    await this.append(events);
  }

  /**
   * Like writeMany, and resolves once committed, with the id of the last event of the last commit the events were in
   * (0: none, or not known: spooled), which is at least the id of each of them.
   */
  append(events: EventRow[]): Promise<number> {
    if (events.length === 0) return Promise.resolve(0);
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    return new Promise<number>((resolve, reject) => {
      let left = events.length;
      let failed = false;
      let last = 0;
      const t = (this.turnCommitted ??= this.pending());
      for (const e of events) {
        t.events.push(e);
        t.waiters.push((err, lastId) => {
          if (failed) return;
          if (err) return ((failed = true), reject(err));
          if (lastId !== undefined && lastId > last) last = lastId;
          if (--left === 0) resolve(last);
        });
      }
      this.schedule();
    });
  }

  /**
   * Batches answered already from a journal that another thread keeps (the PostgreSQL writer thread: the HTTP thread
   * journals and answers, see ThreadedWriter), each committed with its own id, after everything queued before them.
   * Resolves once every one is done: committed, or spooled (the database away), or, refused by the database three
   * times, kept in `rejectDir` (see putAside). Never rejects: until then the batches stay in that journal. Resolves with
   * the id of the last event committed (0: none, or not known: spooled).
   */
  appendAnswered(batches: SpooledBatch[], urgent = false): Promise<number> {
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    let left = batches.length;
    let last = 0;
    return new Promise<number>((resolve) => {
      const answered = (lastId: number) => {
        if (lastId > last) last = lastId;
        if (--left === 0) resolve(last);
      };
      this.endTurn();
      for (const b of batches) {
        this.queue.push({ id: b.id, events: b.events, waiters: [], jseq: 0, answered, urgent });
        this.queued += b.events.length;
      }
      this.schedule();
    });
  }

  private pending(): Pending {
    // batch ids let a spooled or journaled batch whose first commit had an unknown outcome be replayed safely
    return { id: this.store.appendBatches ? randomUUID() : "", events: [], waiters: [], jseq: 0 };
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.endTurn();
      while (this.startCommit());
    });
  }

  /** Queues this turn's writes for their commit; the journaled ones are written to the journal and answered first. */
  private endTurn() {
    const j = this.turnJournaled;
    this.turnJournaled = null;
    if (j) {
      const batch: Pending = { ...this.pending(), events: j.events };
      // the database is behind: answers wait for its commits again (back-pressure), until it has caught up
      if (this.journaledOpen >= MAX_UNCOMMITTED) batch.waiters = j.waiters;
      else {
        const jseq = this.journalSeq + 1;
        try {
          this.journal!.append(jseq, JSON.stringify({ id: batch.id, packed: packEvents(batch.events) } satisfies JournaledBatch));
        } catch (err) {
          for (const w of j.waiters) w(err as Error);
          return this.endTurnCommitted();
        }
        this.journalSeq = batch.jseq = jseq;
        this.journalOpen.push(jseq);
        this.journaledOpen += batch.events.length;
        for (const w of j.waiters) w(null);
      }
      this.queue.push(batch);
      this.queued += batch.events.length;
    }
    this.endTurnCommitted();
  }

  private endTurnCommitted() {
    const c = this.turnCommitted;
    this.turnCommitted = null;
    if (c) {
      this.queue.push(c);
      this.queued += c.events.length;
    }
  }

  /** Starts a group commit of what is queued (batches up to maxBatch events), if there is any and a slot is free. */
  private startCommit(): boolean {
    if (this.queue.length === 0 || this.commits.size >= this.opts.maxInFlight) return false;
    if (this.gathering()) return false;
    this.lastCommitAt = performance.now();
    let n = 0;
    let k = 0;
    while (k < this.queue.length && (k === 0 || n + this.queue[k]!.events.length <= this.opts.maxBatch)) n += this.queue[k++]!.events.length;
    const batches = this.queue.splice(0, k);
    this.queued -= n;
    const p: Promise<void> = this.commit(batches).finally(() => {
      this.commits.delete(p);
      this.done(batches);
      if (this.queue.length) this.schedule();
    });
    this.commits.add(p);
    return true;
  }

  /** What is queued is committed without gathering more (a read waits for it, see gatherMs). */
  hurry(): void {
    for (const b of this.queue) b.urgent = true;
    while (this.startCommit());
  }

  /** Whether the queue waits for more answered batches (see gatherMs); if so, a timer starts the commit. */
  private gathering(): boolean {
    const gather = this.opts.gatherMs;
    if (gather === 0 || this.flushing > 0 || this.queued >= this.opts.maxBatch) return false;
    for (const b of this.queue) if (!b.answered || b.urgent) return false;
    const wait = this.lastCommitAt + gather - performance.now();
    if (wait <= 0) return false;
    this.gatherTimer ??= setTimeout(() => {
      this.gatherTimer = null;
      while (this.startCommit());
    }, wait);
    return true;
  }

  /** Commits everything queued so far. */
  async flush(): Promise<void> {
    this.endTurn();
    this.flushing++;
    try {
      while (this.queue.length || this.commits.size) {
        while (this.startCommit());
        if (this.commits.size) await Promise.race(this.commits);
      }
    } finally {
      this.flushing--;
    }
  }

  /**
   * Resolves once every event acknowledged before the call is committed (or, the database away, spooled), where reads
   * find it (or, spooled, will once it is replayed).
   */
  settled(): Promise<void> {
    if (this.turnJournaled) this.endTurn();
    if (this.journalDone >= this.journalSeq) return Promise.resolve();
    while (this.startCommit());
    return new Promise((resolve) => this.settling.push({ upTo: this.journalSeq, resolve }));
  }

  /** The batches of a commit are done (committed, spooled or put aside): their journal records can go. */
  private done(batches: Pending[]) {
    for (const b of batches) {
      b.answered?.(b.lastId ?? 0);
      if (!b.jseq) continue;
      this.journaledOpen -= b.events.length;
      this.journalDoneEarly.add(b.jseq);
    }
    let moved = false;
    while (this.journalOpen.length && this.journalDoneEarly.delete(this.journalOpen[0]!)) {
      this.journalDone = this.journalOpen.shift()!;
      moved = true;
    }
    if (!moved) return;
    this.journal!.release(this.journalDone);
    if (this.settling.length) {
      const waiting = this.settling;
      this.settling = [];
      for (const w of waiting) {
        if (w.upTo <= this.journalDone) w.resolve();
        else this.settling.push(w);
      }
    }
  }

  private async commit(batches: Pending[]): Promise<void> {
    const start = process.hrtime.bigint();
    const waiters = batches.length === 1 ? batches[0]!.waiters : batches.flatMap((b) => b.waiters);
    const count = () => batches.reduce((n, b) => n + b.events.length, 0);
    const plain = (): SpooledBatch[] => batches.map((b) => ({ id: b.id, events: b.events }));
    try {
      if (!this.spooling) {
        try {
          return await this.appendInTurn(plain(), (lastId) => {
            for (const b of batches) if (b.answered) b.lastId = lastId;
            this.acknowledge(count(), waiters, start, lastId);
          });
        } catch (err) {
          if (!(err instanceof StoreUnavailable) || !this.spool) throw err;
          this.spooling = true;
          // the commit's outcome is unknown (the connection may have dropped after COMMIT): before any watermark moves
          // past it, the buffer is rebuilt from the event log, which has the batch's events if they got in
          this.broken = true;
          this.log?.warn({ err: err.message }, "database unreachable: spooling events locally until it is back");
          this.scheduleReplay();
        }
      }
      this.spool!.appendMany(plain());
      this.metrics.spooled.inc(count());
      this.acknowledge(count(), waiters, start);
    } catch (err) {
      this.metrics.writerFailures.inc();
      // a cause the client should hear (507 storage-full: the disk is full) goes out as it is; anything else is a 503
      const e = err instanceof AppError ? err : new WriterUnavailable(`could not store the event: ${(err as Error).message}`, { cause: err });
      for (const w of waiters) w(e);
      await this.putAside(batches.filter((b) => b.jseq || b.answered));
    }
  }

  /**
   * Journaled batches (answered already) whose commit failed: each is tried again alone (the failure may be another
   * batch's, or passing), spooled if the database is away, and one the database refuses three times is kept in a file
   * beside the journal, with the error, for an operator (and logged): never dropped. Until one of these succeeds (a full
   * disk, the database away), the batch stays in the journal and is tried again, with growing pauses.
   */
  private async putAside(batches: Pending[]) {
    for (const b of batches) {
      const batch = { id: b.id, events: b.events };
      let refusal: Error | null = null;
      let refusals = 0;
      for (let attempt = 1; ; attempt++) {
        await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 5000)));
        try {
          if (this.spooling) {
            this.spool!.append(batch);
            this.metrics.spooled.inc(b.events.length);
            this.scheduleReplay();
            break;
          }
          if (refusal && refusals >= 3) {
            const file = rejectBatch(this.rejectDir!, batch, refusal.message);
            this.log?.error?.(
              { err: refusal.message, events: b.events.length, file },
              "the database refused a batch of events answered from the journal three times: it is kept in a file for an operator, not in the event log",
            );
            break;
          }
          try {
            await this.appendInTurn([batch]);
            break;
          } catch (e) {
            if (!(e instanceof StoreUnavailable)) {
              refusal = e as Error;
              refusals++;
              continue;
            }
            this.spooling = true;
            this.broken = true;
          }
        } catch {
          // the spool or the file could not be written (a full disk): the batch stays in the journal, tried again
        }
      }
    }
  }

  private async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveTurn) await this.exclusiveTurn;
    this.appending++;
    try {
      return await fn();
    } finally {
      if (--this.appending === 0) for (const done of this.appendsDone.splice(0)) done();
    }
  }

  private async exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    while (this.exclusiveTurn) await this.exclusiveTurn;
    let release!: () => void;
    this.exclusiveTurn = new Promise((r) => (release = r));
    try {
      if (this.appending) await new Promise<void>((r) => this.appendsDone.push(r));
      return await fn();
    } finally {
      this.exclusiveTurn = null;
      release();
    }
  }

  /** Appends batches; committed events join the rollup buffer. */
  private appendInTurn(batches: SpooledBatch[], acknowledge?: (lastId: number) => void): Promise<void> {
    const append = async () => {
      if (!this.store.appendBatches)
        return { lastId: await this.store.appendEvents(batches.length === 1 ? batches[0]!.events : batches.flatMap((b) => b.events)), duplicates: 0 };
      return this.store.appendBatches(batches);
    };
    // counted as pending until they are in the buffer (see uncommittedClicks)
    this.unbuffered.add(batches);
    return this.shared(async () => {
      let r: { lastId: number | null; duplicates: number };
      try {
        try {
          r = await append();
        } catch (err) {
          if (!(err instanceof WriterRetired)) throw err;
          // another instance finished our rollups; we go on as a new writer, whose buffer the next flush rebuilds
          this.log?.warn({}, err.message);
          this.buffer = null;
          this.broken = true;
          r = await append();
        }
        if (acknowledge) {
          // committed: the requests are answered first, the rollup aggregation waits one turn of the event loop, so it
          // is not part of any request's latency (measured: about a tenth of the redirect path's CPU time)
          acknowledge(r.lastId ?? 0);
          await yieldToLoop();
        }
        // duplicates: replayed batches whose first commit went through after all; the event log knows where their
        // events are, so the buffer is rebuilt from it rather than guessed
        if (r.duplicates > 0) this.broken = true;
        else if (r.lastId !== null) for (const b of batches) this.buffer?.add(b.events, r.lastId);
      } finally {
        this.unbuffered.delete(batches);
      }
      if (this.buffer && this.buffer.size > this.opts.rollupMaxKeys) void this.flushRollups().catch(() => {});
    });
  }

  private acknowledge(events: number, waiters: Waiter[], start: bigint, lastId = 0) {
    this.metrics.batchSize.observe(events);
    this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - start) / 1e9);
    this.metrics.eventsWritten.inc(events);
    for (const w of waiters) w(null, lastId);
  }

  private scheduleReplay() {
    this.replayTimer ??= setTimeout(() => {
      this.replayTimer = null;
      void this.replaySpool().catch(() => {});
    }, 1000);
    this.replayTimer.unref?.();
  }

  /** Replays the spool into the database; once it is empty, new batches go to the database again. */
  private replaySpool(): Promise<void> {
    return (this.replaying ??= (async () => {
      try {
        const n = await this.spool!.drain(async (group) => {
          await this.appendInTurn(group);
          // The database takes batches again: new ones go straight to it while the backlog drains. (Spooling on until a
          // drain found the spool empty never ended under steady traffic: every drain found the batches spooled while it
          // ran.) A new batch that fails goes back to the spool and schedules the next round.
          this.spooling = false;
        });
        // batches spooled while draining (before the first replayed batch got through, or by a new failure) are
        // replayed by the next round
        if (this.spool!.size === 0) {
          this.spooling = false;
          this.log?.info({ batches: n }, "database reachable again: spooled events replayed");
        } else this.scheduleReplay();
      } catch (err) {
        this.scheduleReplay();
        throw err;
      } finally {
        this.replaying = null;
      }
    })());
  }

  private async applyChunks(ops: RollupOp[], size: number, skip: Set<number> = new Set()) {
    for (let i = 0, chunk = 0; i < ops.length; i += size, chunk++) {
      if (skip.has(chunk)) continue;
      await this.store.applyRollupChunk(ops.slice(i, i + size), chunk);
      if (i + size < ops.length) await yieldToLoop();
    }
  }

  /** Writes the aggregated rollups; resolves when every event committed before the call is in them. */
  async flushRollups(): Promise<void> {
    while (this.rolling) await this.rolling;
    if (this.broken) return this.rebuild();
    // answered batches still on their way into the buffer belong to "committed before the call"
    if (this.appending) await this.exclusive(() => undefined);
    const buf = this.buffer;
    if (!buf || buf.size === 0) return;
    return this.flushTaken(buf);
  }

  /** `alone`: the caller already runs with no commit under way (recovery). */
  private flushTaken(buf: RollupBuffer, alone = false): Promise<void> {
    this.rolling = (async () => {
      const detached = alone ? (this.inFlight = buf.detach()) : await this.exclusive(() => (this.inFlight = buf.detach()));
      try {
        // built between commits (a large flush is a few hundred milliseconds of work: no commit waits for all of it)
        const taken = { ...detached, ops: await rollupOps(detached, yieldToLoop) };
        await this.store.beginRollupFlush(taken.from, taken.to, this.opts.chunkSize);
        await this.applyChunks(taken.ops, this.opts.chunkSize);
        await this.store.endRollupFlush(taken.to, taken.linkClicks);
        this.onFlushed?.(taken.to);
      } catch (err) {
        this.broken = true;
        if (err instanceof WriterRetired) this.buffer = null;
        this.log?.warn({ err: (err as Error).message }, "rollup flush failed; rollups will be rebuilt from the event log");
        throw err;
      }
    })().finally(() => {
      this.rolling = null;
      this.inFlight = null;
    });
    return this.rolling;
  }

  /** After a failed flush: rebuild the buffer from the event log (commits wait their turn), then flush it. */
  private async rebuild(): Promise<void> {
    await this.exclusive(async () => {
      await this.recover();
      this.broken = false;
    });
    await this.flushRollups();
  }

  /** Stops taking events, commits what is queued and writes the rollups. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.adoptTimer) clearInterval(this.adoptTimer);
    await this.flush();
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = null;
    // one last try; whatever stays spooled is replayed by the next start
    if (this.spool?.size) await this.replaySpool().catch(() => {});
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.spool?.close();
    // every batch in the journal is committed or spooled: it starts over empty (the next start finds nothing to replay)
    if (this.journal && this.journalDone >= this.journalSeq) this.journal.reset();
    this.journal?.close();
    try {
      await this.flushRollups();
    } catch (err) {
      // every acknowledged event is in the log or the spool; the rollups catch up at the next start (or adoption)
      this.log?.warn({ err: (err as Error).message }, "rollups not written at shutdown; they are rebuilt from the event log later");
      return;
    }
    // everything of ours is in the rollups: no one needs to adopt this writer
    if (!this.broken && !this.spool?.size) await this.store.retireWriter?.();
  }
}
