import { intParam } from "../schemas.js";
import { badRequest } from "../errors.js";
import { campaignPlatformScope, DIMENSIONS, PLATFORMS, SLOT_MS, type Dimension, type ScopeKind, type Store } from "../store/port.js";
import { bucketStart, DAY, HOUR, isTimeZone, parseTime, type Interval } from "../util/time.js";
import { VisitorSketch } from "./sketch.js";
import type { EventLog } from "./writer.js";

export interface StatsQuery {
  from?: string;
  to?: string;
  interval?: Interval;
  tz?: string;
  bots?: "include" | "exclude";
  /** values per breakdown, 1-100 (a query-string value) */
  top?: string;
}

const BREAKDOWN_NAMES: Record<Dimension, string> = {
  referrer_host: "referrer",
  browser: "browser",
  os: "os",
  device: "device",
  platform: "platform",
  channel: "channel",
  country: "country",
  rule: "rule",
  name: "name",
};

/** How a breakdown shows the empty value: no referrer is a direct visit, no rule is the link's own target. */
const EMPTY_VALUE: Record<Dimension, string> = {
  ...Object.fromEntries(DIMENSIONS.map((d) => [d, "(unknown)"])),
  referrer_host: "(direct)",
  rule: "(default)",
} as Record<Dimension, string>;

const STEP: Record<Interval, number> = { hour: HOUR, day: DAY, week: 7 * DAY };
const MAX_BUCKETS = 5000;

/**
 * Counts, series and breakdowns of a link, a domain or a project, read from the hourly rollups only (never from the
 * raw event log), so their cost depends on the number of hours and dimension combinations, not on the number of clicks.
 */
export class StatsService {
  constructor(
    private readonly store: Store,
    private readonly writer: EventLog,
  ) {}

  private async visitors(range: Parameters<Store["statsSketches"]>[0]): Promise<number> {
    const all = new VisitorSketch();
    for (const b of await this.store.statsSketches(range)) all.merge(VisitorSketch.from(b));
    return all.count();
  }

  async stats(scope: ScopeKind, scopeId: number, q: StatsQuery, orphanScope?: ScopeKind) {
    const to = parseTime(q.to, "to") ?? Date.now();
    const from = parseTime(q.from, "from") ?? to - 30 * DAY;
    if (from >= to) throw badRequest("from must be before to", { field: "from" });
    const interval = q.interval ?? (to - from <= 2 * DAY ? "hour" : "day");
    const tz = q.tz ?? "UTC";
    if (!isTimeZone(tz)) throw badRequest(`tz ${JSON.stringify(tz)} is not an IANA time zone such as Europe/Paris`, { field: "tz" });
    if ((to - from) / STEP[interval] > MAX_BUCKETS) {
      throw badRequest(`that range has more than ${MAX_BUCKETS} ${interval}s; choose a larger interval or a shorter range`, { field: "interval" });
    }
    const includeBots = q.bots === "include";
    const top = intParam(q.top, "top", 1, 100) ?? 10;
    const range = { scope, scope_id: scopeId, from: from - (from % SLOT_MS), to, includeBots };

    // the rollups of clicks committed a moment ago may still be in the writer's memory
    await this.writer.flushRollups();
    const [rows, withBots, visitors, ...breakdowns] = await Promise.all([
      this.store.statsSeries(range),
      includeBots ? null : this.store.statsSeries({ ...range, includeBots: true }),
      this.visitors(range),
      ...DIMENSIONS.map((d) => this.store.statsBreakdown(range, d, top)),
    ]);
    const clicks = rows.reduce((n, r) => n + r.clicks, 0);
    const allClicks = withBots ? withBots.reduce((n, r) => n + r.clicks, 0) : clicks;

    const buckets = new Map<number, number>();
    for (let t = bucketStart(from, interval, tz); t < to; t = bucketStart(t + STEP[interval] * 1.5, interval, tz)) buckets.set(t, 0);
    for (const r of rows) {
      const b = bucketStart(r.slot, interval, tz);
      buckets.set(b, (buckets.get(b) ?? 0) + r.clicks);
    }
    const out: Record<string, unknown> = {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      interval,
      tz,
      bots: includeBots ? "include" : "exclude",
      clicks,
      bot_clicks: includeBots ? null : allClicks - clicks,
      visitors,
      series: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([t, c]) => ({ t: new Date(t).toISOString(), clicks: c })),
      breakdowns: Object.fromEntries(
        DIMENSIONS.map((d, i) => [
          BREAKDOWN_NAMES[d],
          breakdowns[i]!.map((b) => ({ value: b.value === "" ? EMPTY_VALUE[d] : b.value, clicks: b.clicks })),
        ]),
      ),
    };
    if (orphanScope) {
      const orphans = await this.store.statsSeries({ ...range, scope: orphanScope });
      out.orphan_visits = orphans.reduce((n, r) => n + r.clicks, 0);
    }
    return out;
  }

  /** A campaign's stats, plus clicks and visitors per platform (each from rollups of its own). */
  async campaign(campaignId: number, q: StatsQuery) {
    const out = await this.stats("campaign", campaignId, q);
    const from = Date.parse(out.from as string);
    const base = { from: from - (from % SLOT_MS), to: Date.parse(out.to as string), includeBots: q.bots === "include" };
    const names = [...PLATFORMS, ""];
    const per = await Promise.all(
      names.map(async (platform) => {
        const range = { ...base, scope: "campaign_platform" as const, scope_id: campaignPlatformScope(campaignId, platform) };
        const [rows, visitors] = await Promise.all([this.store.statsSeries(range), this.visitors(range)]);
        return { platform: platform || "(unknown)", clicks: rows.reduce((n, r) => n + r.clicks, 0), visitors };
      }),
    );
    out.platforms = per.filter((p) => p.clicks > 0).sort((a, b) => b.clicks - a.clicks);
    return out;
  }
}
