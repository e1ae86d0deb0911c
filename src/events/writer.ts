import type { EventRow, RollupOp, Store } from "../store/port.js";
import type { Metrics } from "../ops/metrics.js";
import { RollupBuffer, type TakenRollups } from "./rollup.js";

type Waiter = (err: Error | null) => void;

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
 */
export class EventWriter {
  private queue: EventRow[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing: Promise<void> | null = null;
  private closed = false;
  private buffer: RollupBuffer | null = null;
  private rolling: Promise<void> | null = null;
  /** The flush under way: its link clicks count as pending until its watermark is committed. */
  private inFlight: TakenRollups | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly opts: Required<WriterOptions>;

  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    opts: WriterOptions = {},
  ) {
    this.opts = { maxBatch: 5000, rollupIntervalMs: 10_000, rollupMaxKeys: 200_000, chunkSize: 1000, ...opts };
    metrics.depth.read = () => this.queue.length;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Brings the rollups up to date with the event log, then flushes them periodically. */
  async start(): Promise<void> {
    const state = await this.store.rollupState();
    let watermark = state.watermark;
    if (state.pending) {
      const { from, to, done } = state.pending;
      const redo = new RollupBuffer(from);
      await this.replay(redo, from, to);
      const taken = redo.take();
      await this.applyChunks(taken.ops, new Set(done));
      await this.store.endRollupFlush(to, taken.linkClicks);
      watermark = to;
    }
    this.buffer = new RollupBuffer(watermark);
    await this.replay(this.buffer, watermark, null);
    await this.flushRollups();
    this.timer = setInterval(() => void this.flushRollups().catch(() => {}), this.opts.rollupIntervalMs);
    this.timer.unref();
  }

  private async replay(buf: RollupBuffer, after: number, upto: number | null) {
    for (;;) {
      const page = await this.store.scanEvents(after, upto, 5000);
      if (page.length === 0) return;
      after = page[page.length - 1]!.id;
      buf.add(page, after);
      // a long backlog is flushed as it goes, so memory stays bounded (not while redoing one interrupted flush)
      if (buf === this.buffer && buf.size > this.opts.rollupMaxKeys) await this.flushRollups();
    }
  }

  /** Non-bot clicks of a link committed to the event log but not yet to the link's counter. */
  pendingClicks(linkId: number): number {
    return (this.buffer?.pendingClicks(linkId) ?? 0) + (this.inFlight?.linkClicks.get(linkId) ?? 0);
  }

  write(event: EventRow): Promise<void> {
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    return new Promise<void>((resolve, reject) => {
      this.queue.push(event);
      this.waiters.push((err) => (err ? reject(err) : resolve()));
      this.schedule();
    });
  }

  writeMany(events: EventRow[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new WriterUnavailable("the server is shutting down"));
    return new Promise<void>((resolve, reject) => {
      let left = events.length;
      let failed = false;
      for (const e of events) {
        this.queue.push(e);
        this.waiters.push((err) => {
          if (failed) return;
          if (err) return ((failed = true), reject(err));
          if (--left === 0) resolve();
        });
      }
      this.schedule();
    });
  }

  private schedule() {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** Commits everything queued so far. */
  async flush(): Promise<void> {
    if (this.writing) {
      await this.writing;
      if (this.queue.length) return this.flush();
      return;
    }
    if (this.queue.length === 0) return;
    const events = this.queue.splice(0, this.opts.maxBatch);
    const waiters = this.waiters.splice(0, events.length);
    const start = process.hrtime.bigint();
    this.writing = this.store
      .appendEvents(events)
      .then(
        (lastId) => {
          this.buffer?.add(events, lastId);
          this.metrics.batchSize.observe(events.length);
          this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - start) / 1e9);
          this.metrics.eventsWritten.inc(events.length);
          for (const w of waiters) w(null);
          if (this.buffer && this.buffer.size > this.opts.rollupMaxKeys) void this.flushRollups().catch(() => {});
        },
        (err: Error) => {
          this.metrics.writerFailures.inc();
          const e = new WriterUnavailable(`could not store the event: ${err.message}`);
          for (const w of waiters) w(e);
        },
      )
      .finally(() => {
        this.writing = null;
        if (this.queue.length) this.schedule();
      });
    return this.writing;
  }

  private async applyChunks(ops: RollupOp[], skip: Set<number> = new Set()) {
    for (let i = 0, chunk = 0; i < ops.length; i += this.opts.chunkSize, chunk++) {
      if (skip.has(chunk)) continue;
      await this.store.applyRollupChunk(ops.slice(i, i + this.opts.chunkSize), chunk);
      if (i + this.opts.chunkSize < ops.length) await yieldToLoop();
    }
  }

  /** Writes the aggregated rollups; resolves when every event committed before the call is in them. */
  async flushRollups(): Promise<void> {
    while (this.rolling) await this.rolling;
    const buf = this.buffer;
    if (!buf || buf.size === 0) return;
    this.rolling = (async () => {
      const taken = (this.inFlight = buf.take());
      await this.store.beginRollupFlush(taken.from, taken.to);
      await this.applyChunks(taken.ops);
      await this.store.endRollupFlush(taken.to, taken.linkClicks);
    })().finally(() => {
      this.rolling = null;
      this.inFlight = null;
    });
    return this.rolling;
  }

  /** Stops taking events, commits what is queued and writes the rollups. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    while (this.queue.length || this.writing) await this.flush();
    await this.flushRollups();
  }
}
