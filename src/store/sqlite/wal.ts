import { statSync } from "node:fs";

/**
 * Past this size the write-ahead log is started over (see checkpointer.ts): big enough that it happens every few seconds
 * at most under full load, small enough that the log never holds more than a few seconds of writes.
 */
export const WAL_RESTART_BYTES = 64 * 1024 * 1024;

/** The size of a database's write-ahead log in bytes (0 when there is none). */
export function walSize(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}
