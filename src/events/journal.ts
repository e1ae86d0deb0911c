import {
  appendFileSync,
  closeSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { AppError } from "../errors.js";
import { WriterUnavailable } from "./writer.js";

/**
 * The event journal: an append-only file in which the HTTP thread writes each turn's events (those no counter depends
 * on) before it answers their requests, so the answer does not wait for the commit. Two writers keep one: the SQLite
 * writer thread (ThreadedWriter: the answer does not wait for the round trip to the thread and its commit), and, on
 * PostgreSQL, each instance's EventWriter (the answer does not wait for the database; see its `journal` option). A
 * write() that returned is in the operating system's page cache: a killed process loses nothing, exactly as a commit to
 * SQLite's write-ahead log in synchronous NORMAL mode (FULL syncs each record to the disk, as SQLite's FULL syncs each
 * commit).
 *
 * Each record holds one batch: its sequence number and its events (as they cross to the writer thread). The writer
 * thread commits the events to the event log and records, in the same transaction, the position of the last one it
 * committed (a "mark": seq × 2^20 + index in the record). After a crash, the writer thread starts by committing what
 * the journal holds past the mark. Files are segments named by their first sequence number; a segment is deleted once
 * every batch in it is committed. (The PostgreSQL writer keeps no mark: its records are batches with ids, which the
 * database remembers, so after a crash they are replayed through the spool and those it has already are skipped.)
 *
 * Record: u32 length of the payload, f64 sequence number, payload (JSON), all little-endian.
 */
const HEADER = 12;
/** a segment is closed past this size, and deleted once the writer thread has committed all of it */
export const SEGMENT_BYTES = 8 * 1024 * 1024;
/** the index of an event in its record takes the low 20 bits of a mark (a record holds fewer events than this) */
export const MARK_SHIFT = 2 ** 20;

export const markOf = (seq: number, index: number): number => seq * MARK_SHIFT + index;

/** A record's payload, parsed, from the memory append() returned (handed to the writer thread). */
export function recordPayload(rec: ArrayBuffer): unknown {
  return JSON.parse(Buffer.from(rec, HEADER).toString("utf8"));
}

export interface JournalRecord {
  seq: number;
  payload: unknown;
}

const segmentName = (firstSeq: number) => `${String(firstSeq).padStart(16, "0")}.log`;

function segments(dir: string): { file: string; first: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^\d{16}\.log$/.test(n))
    .map((n) => ({ file: path.join(dir, n), first: Number(n.slice(0, 16)) }))
    .sort((a, b) => a.first - b.first);
}

/**
 * Every complete record in the journal, in order. A record cut short at the end of a segment (the process was killed in
 * the middle of its write) was never acknowledged: it is left out.
 */
export function readJournal(dir: string): JournalRecord[] {
  const out: JournalRecord[] = [];
  for (const { file } of segments(dir)) {
    const buf = readFileSync(file);
    let at = 0;
    while (at + HEADER <= buf.length) {
      const len = buf.readUInt32LE(at);
      const end = at + HEADER + len;
      if (end > buf.length) break;
      let payload: unknown;
      try {
        payload = JSON.parse(buf.toString("utf8", at + HEADER, end));
      } catch {
        break;
      }
      out.push({ seq: buf.readDoubleLE(at + 4), payload });
      at = end;
    }
  }
  return out;
}

/**
 * Keeps events answered from a journal that the database refuses (`rejected.ndjson` in the journal's folder, one JSON
 * line each, synced), so an operator can look at them and put them in by hand; returns the file.
 */
export function rejectBatch(dir: string, batch: unknown, reason: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "rejected.ndjson");
  appendFileSync(file, JSON.stringify({ at: new Date().toISOString(), reason, batch }) + "\n", { flush: true });
  return file;
}

/** The HTTP thread's side: appends records, starts new segments, deletes committed ones. */
export class Journal {
  private fd: number | null = null;
  private size = 0;
  /** the segment being written: its first and last sequence numbers */
  private current: { file: string; first: number; last: number } | null = null;
  /** closed segments, oldest first, with the last sequence number each holds */
  private closed: { file: string; last: number }[] = [];

  constructor(
    readonly dir: string,
    private readonly sync: boolean,
  ) {}

  /** Starts over after the writer thread has committed everything in the journal: every segment there goes. */
  reset(): void {
    this.close();
    mkdirSync(this.dir, { recursive: true });
    for (const s of segments(this.dir)) rmSync(s.file, { force: true });
    this.closed = [];
  }

  /**
   * Appends one record; once this returns, the batch survives the process (and, with `sync`, the machine). A full disk
   * is a 507 and anything else a 503, with nothing of the record left behind, so a later record is read after it.
   * Returns the record as written, in memory of its own (not a slice of a shared pool): the writer thread's hand-over
   * transfers it (see recordPayload).
   */
  append(seq: number, payload: string): Buffer {
    if (this.fd === null || this.size >= SEGMENT_BYTES) this.startSegment(seq);
    const length = Buffer.byteLength(payload);
    const rec = Buffer.allocUnsafeSlow(HEADER + length);
    rec.writeUInt32LE(length, 0);
    rec.writeDoubleLE(seq, 4);
    rec.write(payload, HEADER);
    const fd = this.fd!;
    try {
      let done = 0;
      while (done < rec.length) done += writeSync(fd, rec, done, rec.length - done);
      if (this.sync) fdatasyncSync(fd);
    } catch (err) {
      try {
        ftruncateSync(fd, this.size);
      } catch {
        // the record stays cut short at the end, which a reader leaves out; the next one starts a new segment
        this.closeCurrent();
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT")
        throw new AppError(507, "storage-full", "the server's disk is full: nothing can be stored until space is freed; try again later");
      throw new WriterUnavailable(`could not write the event journal: ${(err as Error).message}`);
    }
    this.size += rec.length;
    this.current!.last = seq;
    return rec;
  }

  /** The writer thread has committed every batch up to `seq`: the segments that hold nothing later go. */
  release(seq: number): void {
    while (this.closed.length && this.closed[0]!.last <= seq) rmSync(this.closed.shift()!.file, { force: true });
  }

  private startSegment(seq: number) {
    this.closeCurrent();
    const file = path.join(this.dir, segmentName(seq));
    this.fd = openSync(file, "a");
    this.size = fstatSync(this.fd).size;
    this.current = { file, first: seq, last: seq - 1 };
  }

  private closeCurrent() {
    if (this.fd !== null) closeSync(this.fd);
    if (this.current && this.current.last >= this.current.first) this.closed.push({ file: this.current.file, last: this.current.last });
    else if (this.current) rmSync(this.current.file, { force: true });
    this.fd = null;
    this.current = null;
  }

  close(): void {
    this.closeCurrent();
  }
}
