import { DIMENSIONS, type EventRow, type RollupDelta, type ScopeKind, type VisitorMark, type WriteBatch, type Dimension } from "../store/port.js";
import { referrerHost } from "./enrich.js";
import { floorDay, floorHour } from "../util/time.js";

/** The rollup scopes an event counts in. Only link clicks are rolled up so far; later sources add theirs here. */
function scopesOf(e: EventRow): [ScopeKind, number][] {
  if (e.source !== "link" || e.name !== "click") return [];
  if (e.link_id !== null) {
    const s: [ScopeKind, number][] = [["link", e.link_id], ["project", e.project_id]];
    if (e.domain_id !== null) s.push(["domain", e.domain_id]);
    return s;
  }
  const s: [ScopeKind, number][] = [["orphan_project", e.project_id]];
  if (e.domain_id !== null) s.push(["orphan_domain", e.domain_id]);
  return s;
}

export function dimsOf(e: EventRow): Record<Dimension, string> {
  return {
    referrer_host: referrerHost(e.referrer ?? undefined),
    browser: e.browser ?? "",
    os: e.os ?? "",
    device: e.device ?? "",
    platform: e.platform ?? "",
    channel: e.channel ?? "",
    country: e.country ?? "",
  };
}

/** Turns a batch of events into the rollup increments and visitor marks committed with them. */
export function buildBatch(events: EventRow[]): WriteBatch {
  const rollups = new Map<string, RollupDelta>();
  const visitors = new Map<string, VisitorMark>();
  const linkClicks = new Map<number, number>();
  for (const e of events) {
    const scopes = scopesOf(e);
    if (scopes.length === 0) continue;
    const hour = floorHour(e.ts);
    const day = floorDay(e.ts);
    const dims = dimsOf(e);
    const dimKey = DIMENSIONS.map((d) => dims[d]).join("\u0000");
    for (const [scope, id] of scopes) {
      const key = `${scope}\u0000${id}\u0000${hour}\u0000${e.is_bot ? 1 : 0}\u0000${dimKey}`;
      const r = rollups.get(key);
      if (r) r.clicks++;
      else rollups.set(key, { scope, scope_id: id, hour, bot: e.is_bot, dims, clicks: 1 });
      if (e.visitor) {
        const vk = `${scope}\u0000${id}\u0000${day}\u0000${e.is_bot ? 1 : 0}\u0000${e.visitor}`;
        if (!visitors.has(vk)) visitors.set(vk, { scope, scope_id: id, day, bot: e.is_bot, visitor: e.visitor });
      }
    }
    if (e.link_id !== null && !e.is_bot) linkClicks.set(e.link_id, (linkClicks.get(e.link_id) ?? 0) + 1);
  }
  return { events, rollups: [...rollups.values()], visitors: [...visitors.values()], linkClicks };
}
