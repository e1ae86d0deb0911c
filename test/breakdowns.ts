/**
 * A store's breakdowns against the events themselves: the empty value is not stored (ROLLUP_FORMAT 2) but read as the
 * total less the other values, a click scope's name as its total, over each hour a range touches. Shared by the SQLite
 * test (rollups.test.ts) and the PostgreSQL one (postgres/writers.test.ts).
 */
import assert from "node:assert/strict";
import { EventWriter } from "../src/events/writer.js";
import { dimsOf } from "../src/events/rollup.js";
import { createMetrics } from "../src/ops/metrics.js";
import { DIMENSIONS, type Dimension, type EventRow, type Store } from "../src/store/port.js";
import { clickEvent } from "./events.js";

const HOUR = 3_600_000;

/** Writes clicks over five hours (some values empty, some bots), flushes, and compares every breakdown of many ranges. */
export async function checkBreakdowns(store: Store): Promise<void> {
  const t0 = Date.UTC(2026, 10, 20, 10);
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >>> 0) % n;
  const pick = <T>(xs: T[]) => xs[rnd(xs.length)]!;
  const events: EventRow[] = Array.from({ length: 600 }, (_, i) =>
    clickEvent({
      ts: t0 + rnd(5 * HOUR),
      visitor: `v${i % 41}`,
      link_id: 1 + (i % 3),
      domain_id: 1,
      channel: pick(["default", "mail", "sms"]),
      referrer: pick([null, null, "https://news.example/x", "https://t.co/y"]),
      browser: pick(["Chrome", "Firefox", ""]),
      os: pick(["Linux", "iOS"]),
      device: pick(["desktop", "mobile"]),
      platform: pick(["linux", "ios", ""]),
      country: pick(["", "", "DE"]),
      rule: pick([null, "ios"]),
      is_bot: rnd(8) === 0,
    }),
  );
  const writer = new EventWriter(store, createMetrics(), { rollupIntervalMs: 3_600_000 });
  await writer.start();
  try {
    await writer.writeMany(events);
    await writer.flushRollups();
  } finally {
    await writer.close();
  }
  const ranges: [number, number][] = [
    [t0, t0 + 5 * HOUR],
    [t0 + 20 * 60_000, t0 + 2 * HOUR + 10 * 60_000],
    [t0 + HOUR, t0 + HOUR + 15 * 60_000],
    [t0 + 4 * HOUR + 59 * 60_000, t0 + 9 * HOUR],
    [t0 - HOUR, t0],
  ];
  for (const [from, to] of ranges)
    for (const includeBots of [false, true])
      for (const [scope, scope_id, inScope] of [
        ["link", 2, (e: EventRow) => e.link_id === 2],
        ["project", 1, () => true],
      ] as const) {
        // each hour the range touches
        const [hFrom, hTo] = [Math.floor(from / HOUR) * HOUR, Math.ceil(to / HOUR) * HOUR];
        const counted = events.filter((e) => inScope(e) && (includeBots || !e.is_bot) && e.ts >= hFrom && e.ts < hTo);
        for (const dim of DIMENSIONS) {
          const want = new Map<string, number>();
          for (const e of counted) {
            const v = dimsOf(e)[dim as Dimension];
            want.set(v, (want.get(v) ?? 0) + 1);
          }
          const got = await store.statsBreakdown({ scope, scope_id, from, to, includeBots }, dim, 100);
          const label = `${scope} ${dim} ${new Date(from).toISOString()}..${new Date(to).toISOString()} bots ${includeBots}`;
          assert.deepEqual(Object.fromEntries(got.map((r) => [r.value, r.clicks])), Object.fromEntries(want), label);
          for (let i = 1; i < got.length; i++) assert.ok(got[i - 1]!.clicks >= got[i]!.clicks, `${label}: sorted by clicks`);
        }
      }
}
