/**
 * Past this size the write-ahead log is started over (see checkpointer.ts): big enough that it happens every few seconds
 * at most under full load, small enough that the log never holds more than a few seconds of writes.
 */
export const WAL_RESTART_BYTES = 64 * 1024 * 1024;

/**
 * The log's file is cut back to this size when the log starts over (`journal_size_limit`): twice the restart size, so
 * under load it keeps the size it grows to, and each cycle writes into pages the file and the page cache hold already.
 * Cut back to a quarter (as before), each cycle grew it again, and every write past the end cost the kernel new blocks,
 * pages and zeroing: measured under redirects, 8.6 % of the writer thread's time in zeroing alone.
 */
export const walSizeLimit = (restartBytes: number) => 2 * restartBytes;

/** A log frame's size: its 24-byte header and one page. */
export const frameBytes = (pageSize: number) => pageSize + 24;

/**
 * How many frames the log holds, as the checkpointer thread last measured it (each round's checkpoint says), shared with
 * the writer thread: the file's size no longer tells, as it keeps its size when the log starts over.
 */
export type WalGauge = Int32Array;

export const newWalGauge = (): WalGauge => new Int32Array(new SharedArrayBuffer(4));

/** What `PRAGMA wal_checkpoint` answers: frames in the log (-1: not in WAL mode) and frames copied to the database. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}
