import { bucketStart, HOUR, iso, type Interval } from "../util/time.js";
import { matchesWhere } from "./engine.js";
import type { ProjectData, PropertyAt } from "./source.js";

/**
 * Event reports over a project's in-memory table: how often an event happened and to how many visitors, its series,
 * what the visitors had done before it ("preceded by": any earlier event of the same visitor, at any earlier time, as
 * HiiTrack counts paths; a repeat of the event itself counts as preceded by it), and all of that per value of a
 * visitor property (at the time of the event, now, or ever held).
 */

export interface EventReportQuery {
  name: string;
  where?: Record<string, string | number | boolean>;
  from?: number;
  to?: number;
  interval: Interval;
  tz: string;
  property?: string;
  at: PropertyAt;
  /** most preceding events / property values listed */
  limit: number;
}

interface Counts {
  total: number;
  visitors: number;
}

/** Every event name of the project with its count and unique visitors, most frequent first. */
export function eventNames(p: ProjectData): { name: string; total: number; visitors: number }[] {
  const t = p.table;
  const total = new Float64Array(t.names.length);
  const visitors = new Float64Array(t.names.length);
  const lastVisitor = new Int32Array(t.names.length).fill(-1);
  for (let v = 0; v < t.offsets.length - 1; v++) {
    for (let i = t.offsets[v]; i < t.offsets[v + 1]; i++) {
      const n = t.name[i];
      total[n]++;
      if (lastVisitor[n] !== v) {
        lastVisitor[n] = v;
        visitors[n]++;
      }
    }
  }
  return t.names
    .map((name, n) => ({ name, total: total[n], visitors: visitors[n] }))
    .filter((x) => x.total > 0)
    .sort((a, b) => b.total - a.total || (a.name < b.name ? -1 : 1));
}

export function eventReport(p: ProjectData, q: EventReportQuery) {
  const t = p.table;
  const ni = t.nameIndex.get(q.name);
  const from = q.from ?? -Infinity;
  const to = q.to ?? Infinity;
  const overall: Counts = { total: 0, visitors: 0 };
  const series = new Map<number, Counts>();
  const preceded = new Map<number, Counts>();
  const byValue = new Map<string, { value: unknown; preceded: Map<number, Counts> } & Counts>();
  // the bucket of an hour is the same for every ms in it (time zones move by whole quarter hours at most... and
  // bucketStart handles those): cache per hour
  const bucketCache = new Map<number, number>();
  const bucketOf = (ts: number) => {
    const h = Math.floor(ts / HOUR);
    let b = bucketCache.get(h);
    if (b === undefined) bucketCache.set(h, (b = bucketStart(h * HOUR, q.interval, q.tz)));
    return b;
  };
  const seen = new Uint8Array(t.names.length);
  const seenList: number[] = [];
  const counted = new Uint8Array(t.names.length);
  const countedList: number[] = [];
  const precededList = (m: Map<number, Counts>) =>
    [...m.entries()]
      .map(([n, c]) => ({ name: t.names[n], total: c.total, visitors: c.visitors }))
      .sort((x, y) => y.total - x.total || (x.name < y.name ? -1 : 1))
      .slice(0, q.limit);
  if (ni !== undefined) {
    for (let v = 0; v < t.offsets.length - 1; v++) {
      const a = t.offsets[v];
      const b = t.offsets[v + 1];
      let any = false;
      let lastBucket = NaN;
      // (value) and (value, preceding event) pairs this visitor was counted in
      const valuesCounted = new Set<string>();
      const fixedValues = q.property && q.at !== "event" ? p.valuesOf(v, q.property, q.at, 0) : null;
      for (let i = a; i < b; i++) {
        const n = t.name[i];
        const ts = t.ts[i];
        if (n === ni && ts >= from && ts < to && matchesWhere(t.data(i), q.where)) {
          overall.total++;
          if (!any) {
            any = true;
            overall.visitors++;
          }
          const bucket = bucketOf(ts);
          let s = series.get(bucket);
          if (!s) series.set(bucket, (s = { total: 0, visitors: 0 }));
          s.total++;
          if (bucket !== lastBucket) {
            lastBucket = bucket;
            s.visitors++;
          }
          for (const prev of seenList) {
            let c = preceded.get(prev);
            if (!c) preceded.set(prev, (c = { total: 0, visitors: 0 }));
            c.total++;
            if (!counted[prev]) {
              counted[prev] = 1;
              countedList.push(prev);
              c.visitors++;
            }
          }
          if (q.property) {
            const values = fixedValues ?? p.valuesOf(v, q.property, "event", ts);
            for (const value of values.length ? values : [null]) {
              const key = JSON.stringify(value);
              let c = byValue.get(key);
              if (!c) byValue.set(key, (c = { value, total: 0, visitors: 0, preceded: new Map() }));
              c.total++;
              if (!valuesCounted.has(key)) {
                valuesCounted.add(key);
                c.visitors++;
              }
              for (const prev of seenList) {
                let pc = c.preceded.get(prev);
                if (!pc) c.preceded.set(prev, (pc = { total: 0, visitors: 0 }));
                pc.total++;
                const pair = `${key}\u0000${prev}`;
                if (!valuesCounted.has(pair)) {
                  valuesCounted.add(pair);
                  pc.visitors++;
                }
              }
            }
          }
        }
        if (!seen[n]) {
          seen[n] = 1;
          seenList.push(n);
        }
      }
      for (const n of seenList) seen[n] = 0;
      seenList.length = 0;
      for (const n of countedList) counted[n] = 0;
      countedList.length = 0;
    }
  }
  return {
    name: q.name,
    total: overall.total,
    visitors: overall.visitors,
    interval: q.interval,
    tz: q.tz,
    series: [...series.entries()].sort((x, y) => x[0] - y[0]).map(([ts, c]) => ({ t: iso(ts), total: c.total, visitors: c.visitors })),
    preceded_by: precededList(preceded),
    ...(q.property
      ? {
          property: {
            name: q.property,
            at: q.at,
            values: [...byValue.values()]
              .sort((x, y) => y.total - x.total)
              .slice(0, q.limit)
              .map((c) => ({ value: c.value, total: c.total, visitors: c.visitors, preceded_by: precededList(c.preceded) })),
          },
        }
      : {}),
  };
}
