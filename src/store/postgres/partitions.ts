import type pg from "pg";

/** The UTC month containing `ts`, as [start, end) in epoch ms and its partition name events_YYYY_MM. */
export function monthOf(ts: number, offset = 0): { name: string; from: number; to: number } {
  const d = new Date(ts);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + offset;
  const from = Date.UTC(y, m, 1);
  const to = Date.UTC(y, m + 1, 1);
  const start = new Date(from);
  return { name: `events_${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, "0")}`, from, to };
}

/**
 * Creates the monthly partitions of the event log from last month to three months ahead (idempotent; not in a
 * transaction, so one that cannot be made does not stop the others). The caller holds the migration lock, so two instances never race on one. Old partitions are never dropped here: retention is an
 * operator's `DROP TABLE events_YYYY_MM` (docs/deploy.md).
 */
export async function ensurePartitions(c: pg.ClientBase, now: number): Promise<string[]> {
  const failed: string[] = [];
  for (let offset = -1; offset <= 3; offset++) {
    const p = monthOf(now, offset);
    try {
      await c.query(`CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF events FOR VALUES FROM (${p.from}) TO (${p.to})`);
    } catch (e) {
      // the default partition already holds events of that month (23514): they stay there, still counted and queried
      if ((e as { code?: string }).code !== "23514") throw e;
      failed.push(p.name);
    }
  }
  return failed;
}
