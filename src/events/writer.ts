import type { EventRow, Store } from "../store/port.js";
import type { Metrics } from "../ops/metrics.js";
import { buildBatch } from "./rollup.js";

type Waiter = (err: Error | null) => void;

export class WriterUnavailable extends Error {}

/**
 * Group commit: events enqueued during one turn of the event loop are written in one transaction (events + rollups),
 * then every waiter is told. A caller answers its client only after its promise resolves, so an acknowledged event
 * is a committed event. A failed commit rejects its waiters: nothing is acknowledged that was not stored.
 */
export class EventWriter {
  private queue: EventRow[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    private readonly maxBatch = 5000,
  ) {
    metrics.depth.read = () => this.queue.length;
  }

  get depth(): number {
    return this.queue.length;
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
    const events = this.queue.splice(0, this.maxBatch);
    const waiters = this.waiters.splice(0, events.length);
    const start = process.hrtime.bigint();
    this.writing = this.store
      .writeBatch(buildBatch(events))
      .then(
        () => {
          this.metrics.batchSize.observe(events.length);
          this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - start) / 1e9);
          this.metrics.eventsWritten.inc(events.length);
          for (const w of waiters) w(null);
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

  /** Stops taking events and commits what is queued. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length || this.writing) await this.flush();
  }
}
