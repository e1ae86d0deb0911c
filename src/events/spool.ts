import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { AppError } from "../errors.js";
import type { EventRow } from "../store/port.js";

export interface SpooledBatch {
  id: string;
  events: EventRow[];
}

/**
 * The instance-local durable spool: while the database cannot be reached, each group commit is appended here as one
 * JSON line and fsynced before its events are acknowledged; when the database is back, the batches are replayed (each
 * at most once: the database remembers batch ids). Files: `current.ndjson` receives, `replay-*.ndjson` are being
 * drained, so batches spooled during a replay never mix with it.
 */
export class Spool {
  private fd: number | null = null;
  /** batches in replay-* files, and in current.ndjson */
  private replayCount = 0;
  private currentCount = 0;
  /** a failed append left a partial line that could not be cut off: the next one starts with a newline */
  private cut = false;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    // a spool left by an earlier run of this instance is replayed first
    try {
      renameSync(path.join(dir, "current.ndjson"), path.join(dir, `replay-${Date.now()}-${process.pid}-0.ndjson`));
    } catch {
      /* none */
    }
    for (const f of this.files()) this.replayCount += this.read(f).length;
  }

  /** Batches waiting for the database. */
  get size(): number {
    return this.replayCount + this.currentCount;
  }

  /**
   * Appends one batch and fsyncs it. On failure (a full disk) nothing of it stays in the file: a partial line would
   * glue itself to the next batch's line, and that batch, acknowledged, would be unreadable at replay.
   */
  append(batch: SpooledBatch): void {
    this.appendMany([batch]);
  }

  /** Several batches, with one fsync (as append: all of them or, on failure, none). */
  appendMany(batches: SpooledBatch[]): void {
    if (batches.length === 0) return;
    this.fd ??= openSync(path.join(this.dir, "current.ndjson"), "a");
    const fd = this.fd;
    const line = Buffer.from((this.cut ? "\n" : "") + batches.map((b) => JSON.stringify(b) + "\n").join(""));
    const before = fstatSync(fd).size;
    try {
      for (let off = 0; off < line.length;) off += writeSync(fd, line, off);
      fsyncSync(fd);
    } catch (err) {
      try {
        ftruncateSync(fd, before);
      } catch {
        /* the line stays cut short: read() skips it, and the next append starts on a line of its own */
        this.cut = true;
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT")
        throw new AppError(507, "storage-full", "the database is unreachable and the disk of this instance's spool is full; try again later");
      throw err;
    }
    this.cut = false;
    this.currentCount += batches.length;
  }

  /**
   * Hands every spooled batch to `apply`, oldest first, several at a time (up to maxEvents events); a file is deleted once all of it is applied. When `apply` throws
   * the rest stays spooled (batches applied before are skipped by the database on the next drain).
   */
  async drain(apply: (batches: SpooledBatch[]) => Promise<void>, maxEvents = 5000): Promise<number> {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    try {
      renameSync(path.join(this.dir, "current.ndjson"), path.join(this.dir, `replay-${Date.now()}-${process.pid}.ndjson`));
    } catch {
      /* nothing spooled since the last drain */
    }
    // the batches of current.ndjson are replay batches now; `size` counts down as they are applied, so /healthz shows
    // a long drain's progress (it stayed at its start value until the drain ended)
    this.replayCount += this.currentCount;
    this.currentCount = 0;
    let applied = 0;
    try {
      for (const f of this.files()) {
        // several batches per call (one statement on PostgreSQL), each keeping its own id
        let group: SpooledBatch[] = [];
        let events = 0;
        const flush = async () => {
          if (!group.length) return;
          await apply(group);
          applied += group.length;
          this.replayCount -= group.length;
          group = [];
          events = 0;
        };
        for (const b of this.read(f)) {
          if (events + b.events.length > maxEvents) await flush();
          group.push(b);
          events += b.events.length;
        }
        await flush();
        rmSync(path.join(this.dir, f), { force: true });
      }
    } finally {
      this.replayCount = 0;
      for (const f of this.files()) this.replayCount += this.read(f).length;
    }
    return applied;
  }

  private files(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.startsWith("replay-") && f.endsWith(".ndjson"))
      .sort();
  }

  private read(f: string): SpooledBatch[] {
    const out: SpooledBatch[] = [];
    for (const line of readFileSync(path.join(this.dir, f), "utf8").split("\n")) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as SpooledBatch);
      } catch {
        // a line cut short by a crash mid-write was never acknowledged: its events were not answered
      }
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
