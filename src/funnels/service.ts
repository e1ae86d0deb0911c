import { badRequest, conflict, notFound } from "../errors.js";
import { UniqueViolation } from "../store/port.js";
import { iso, parseTime } from "../util/time.js";
import { MAX_STEPS, runFunnel, type FunnelResult, type FunnelSpec, type OrderMode } from "./engine.js";
import type { Analytics, PropertyAt } from "./source.js";
import type { AnalyticsStore, SavedFunnel } from "./store.js";

/**
 * Funnels as the API takes them: ad-hoc queries and saved funnels. A query names its steps (event names, with optional
 * filters on event data) and options; it is validated into the engine's spec (a 400 names the field) and run over the
 * project's in-memory event table.
 */

export interface FunnelQuery {
  steps: (string | { name: string; where?: Record<string, string | number | boolean>; source?: string; link_id?: number })[];
  /** conversion window from the first step: "30m", "12h", "7d", "2w", or seconds; null = no window (default 14d) */
  window?: string | number | null;
  /** the longest time between two consecutive steps (same forms) */
  step_window?: string | number | null;
  order?: OrderMode;
  exclusions?: { name: string; between?: [number, number] }[];
  /** attempts may start from `from` (inclusive) until `to` (exclusive): ISO 8601 or epoch ms */
  from?: string | number;
  to?: string | number;
  breakdown?: { event_field: string } | { property: string; at?: PropertyAt };
  /** which event of a visitor's best attempt a breakdown reads: "first" (the first step, default) or "last" */
  attribution?: "first" | "last";
  dropoff_sample?: number;
}

export const DEFAULT_WINDOW_MS = 14 * 86_400_000;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** A duration: "90s", "30m", "12h", "7d", "2w", "500ms", or a number of seconds; null means none. */
export function parseDuration(v: unknown, field: string): number | null {
  if (v === null) return null;
  if (typeof v === "number" && Number.isFinite(v) && v > 0) return v * 1000;
  if (typeof v === "string") {
    const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(v.trim());
    if (m && Number(m[1]) > 0) return Number(m[1]) * UNITS[m[2]];
  }
  throw badRequest(`${field} must be a positive duration such as "30m", "12h", "7d" or a number of seconds (or null for none)`, { field });
}

/** The engine's spec of a query (without a property breakdown's callback, which needs the project's data). */
export function specOf(q: FunnelQuery): FunnelSpec & { property?: { name: string; at: PropertyAt } } {
  if (!q || typeof q !== "object" || !Array.isArray(q.steps))
    throw badRequest("steps: a list of 1 to 31 event names (or {name, where})", { field: "steps" });
  if (q.steps.length < 1 || q.steps.length > MAX_STEPS) throw badRequest(`steps: a funnel has 1 to ${MAX_STEPS} steps`, { field: "steps" });
  const steps = q.steps.map((s, i) => {
    const step = typeof s === "string" ? { name: s } : s;
    if (!step || typeof step.name !== "string" || step.name.length === 0 || step.name.length > 200)
      throw badRequest(`steps[${i}].name: an event name of 1 to 200 characters`, { field: `steps[${i}].name` });
    if (step.where !== undefined) {
      if (!step.where || typeof step.where !== "object" || Array.isArray(step.where))
        throw badRequest(`steps[${i}].where: an object of data field → value`, { field: `steps[${i}].where` });
      for (const [k, v] of Object.entries(step.where))
        if (!["string", "number", "boolean"].includes(typeof v))
          throw badRequest(`steps[${i}].where.${k}: a string, number or boolean`, { field: `steps[${i}].where.${k}` });
    }
    if (step.source !== undefined && (typeof step.source !== "string" || step.source.length === 0 || step.source.length > 32))
      throw badRequest(`steps[${i}].source: a source such as link, campaign, tracking or api`, { field: `steps[${i}].source` });
    if (step.link_id !== undefined && (!Number.isInteger(step.link_id) || step.link_id < 1))
      throw badRequest(`steps[${i}].link_id: a link id`, { field: `steps[${i}].link_id` });
    return {
      name: step.name,
      ...(step.where ? { where: step.where } : {}),
      ...(step.source !== undefined ? { source: step.source } : {}),
      ...(step.link_id !== undefined ? { link_id: step.link_id } : {}),
    };
  });
  const order = q.order ?? "ordered";
  if (!["ordered", "strict", "any"].includes(order)) throw badRequest("order must be ordered, strict or any", { field: "order" });
  const window = q.window === undefined ? DEFAULT_WINDOW_MS : parseDuration(q.window, "window");
  const stepWindow = q.step_window === undefined ? null : parseDuration(q.step_window, "step_window");
  const exclusions = (q.exclusions ?? []).map((x, i) => {
    if (!x || typeof x.name !== "string" || x.name.length === 0)
      throw badRequest(`exclusions[${i}].name: an event name`, { field: `exclusions[${i}].name` });
    if (x.between !== undefined) {
      const b = x.between;
      if (!Array.isArray(b) || b.length !== 2 || !b.every((n) => Number.isInteger(n)) || b[0] < 0 || b[1] >= steps.length || b[0] >= b[1])
        throw badRequest(`exclusions[${i}].between: two step indexes a < b (0-based, below ${steps.length})`, { field: `exclusions[${i}].between` });
      return { name: x.name, between: [b[0], b[1]] as [number, number] };
    }
    return { name: x.name };
  });
  const from = parseTime(q.from, "from");
  const to = parseTime(q.to, "to");
  if (from !== undefined && to !== undefined && from >= to) throw badRequest("from must be before to", { field: "from" });
  const attribution = q.attribution ?? "first";
  if (attribution !== "first" && attribution !== "last") throw badRequest("attribution must be first or last", { field: "attribution" });
  const sample = q.dropoff_sample ?? 10;
  if (!Number.isInteger(sample) || sample < 0 || sample > 100) throw badRequest("dropoff_sample: 0 to 100", { field: "dropoff_sample" });
  const spec: FunnelSpec & { property?: { name: string; at: PropertyAt } } = {
    steps,
    order,
    exclusions,
    attribution,
    dropoff_sample: sample,
    ...(window !== null ? { window_ms: window } : {}),
    ...(stepWindow !== null ? { step_window_ms: stepWindow } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
  };
  const bd = q.breakdown;
  if (bd !== undefined) {
    if (bd && typeof bd === "object" && "event_field" in bd && typeof bd.event_field === "string" && bd.event_field.length > 0) {
      spec.breakdown = { kind: "data", field: bd.event_field };
    } else if (bd && typeof bd === "object" && "property" in bd && typeof bd.property === "string" && bd.property.length > 0) {
      const at = bd.at ?? "event";
      if (!["event", "now", "ever"].includes(at)) throw badRequest("breakdown.at must be event, now or ever", { field: "breakdown.at" });
      spec.property = { name: bd.property, at };
    } else throw badRequest('breakdown: {"event_field": "plan"} or {"property": "country", "at": "event" | "now" | "ever"}', { field: "breakdown" });
  }
  return spec;
}

export interface FunnelRun extends FunnelResult {
  meta: { events: number; visitors: number; took_ms: number; refreshed_ms: number; from: string | null; to: string | null; window_ms: number | null };
}

export class FunnelService {
  constructor(
    private readonly store: AnalyticsStore,
    private readonly analytics: Analytics,
  ) {}

  async run(projectId: number, q: FunnelQuery): Promise<FunnelRun> {
    const spec = specOf(q);
    const p = await this.analytics.project(projectId);
    const started = performance.now();
    if (spec.property) {
      const { name, at } = spec.property;
      spec.breakdown = { kind: "values", valuesOf: (v, ts) => p.valuesOf(v, name, at, ts) };
    }
    const result = runFunnel(p.table, spec);
    return {
      ...result,
      meta: {
        events: p.table.length,
        visitors: p.table.offsets.length - 1,
        took_ms: Math.round((performance.now() - started) * 10) / 10,
        refreshed_ms: Math.round(p.lastRefreshMs * 10) / 10,
        from: spec.from !== undefined ? iso(spec.from) : null,
        to: spec.to !== undefined ? iso(spec.to) : null,
        window_ms: spec.window_ms ?? null,
      },
    };
  }

  async create(projectId: number, input: { name: string; description?: string | null; query: FunnelQuery }): Promise<SavedFunnel> {
    specOf(input.query);
    try {
      return await this.store.createFunnel({
        project_id: projectId,
        name: input.name,
        description: input.description ?? null,
        query: { ...input.query },
      });
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`a funnel named ${JSON.stringify(input.name)} exists already`, { field: "name" });
      throw e;
    }
  }

  async get(projectId: number, id: number): Promise<SavedFunnel> {
    const f = await this.store.getFunnel(projectId, id);
    if (!f) throw notFound(`funnel ${id}`);
    return f;
  }

  list(projectId: number): Promise<SavedFunnel[]> {
    return this.store.listFunnels(projectId);
  }

  async update(projectId: number, id: number, patch: { name?: string; description?: string | null; query?: FunnelQuery }): Promise<SavedFunnel> {
    if (patch.query !== undefined) specOf(patch.query);
    try {
      const f = await this.store.updateFunnel(projectId, id, { ...patch, query: patch.query ? { ...patch.query } : undefined });
      if (!f) throw notFound(`funnel ${id}`);
      return f;
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`a funnel named ${JSON.stringify(patch.name)} exists already`, { field: "name" });
      throw e;
    }
  }

  async delete(projectId: number, id: number): Promise<void> {
    if (!(await this.store.deleteFunnel(projectId, id))) throw notFound(`funnel ${id}`);
  }

  /** Runs a saved funnel, optionally over another time range. */
  async results(projectId: number, id: number, range: { from?: string; to?: string }): Promise<FunnelRun & { funnel: SavedFunnel }> {
    const f = await this.get(projectId, id);
    const q = { ...(f.query as unknown as FunnelQuery) };
    if (range.from !== undefined) q.from = range.from;
    if (range.to !== undefined) q.to = range.to;
    return { funnel: f, ...(await this.run(projectId, q)) };
  }
}
