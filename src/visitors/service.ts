import { badRequest, conflict, notFound } from "../errors.js";
import { UniqueViolation } from "../store/port.js";
import { foldProperties, type Analytics, type ProjectData } from "../funnels/source.js";
import type { AnalyticsStore, PropertyOp, PropertyRow } from "../funnels/store.js";
import { iso } from "../util/time.js";

/**
 * Visitors: who did what. A visitor is a string id (the tracker's, a cookie, the application's user id); identify
 * merges an anonymous id into a known one, so both ids' events and properties are one visitor's from then on (also
 * backwards: funnels read the merged history). Properties are typed JSON values with history: set (replace), add (one
 * more value: a visitor may hold several), unset.
 */

export const MAX_VISITOR_ID = 200;
export const MAX_PROPERTY_NAME = 128;
export const MAX_PROPERTY_VALUE = 4096;
export const MAX_PROPERTY_OPS = 100;

export interface PropertyInput {
  /** name → value: replaces every value the visitor holds */
  set?: Record<string, unknown>;
  /** name → value (or a list of values): added to those the visitor holds */
  add?: Record<string, unknown>;
  /** names whose values are all removed, or name → the value to remove */
  unset?: string[] | Record<string, unknown>;
  /** when the change happened (default now) */
  ts?: number;
}

export function checkVisitorId(v: unknown, field = "visitor"): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_VISITOR_ID)
    throw badRequest(`${field} must be a string of 1 to ${MAX_VISITOR_ID} characters`, { field });
  return v;
}

function checkName(name: string, field: string): void {
  if (name.length === 0 || name.length > MAX_PROPERTY_NAME)
    throw badRequest(`${field}: a property name has 1 to ${MAX_PROPERTY_NAME} characters`, { field });
}

function valueText(value: unknown, field: string): string {
  if (value === undefined || value === null) throw badRequest(`${field}: a property value may not be null (use unset to remove it)`, { field });
  const text = JSON.stringify(value);
  if (text.length > MAX_PROPERTY_VALUE) throw badRequest(`${field}: the value's JSON is longer than ${MAX_PROPERTY_VALUE} characters`, { field });
  return text;
}

/** The property changes an input asks for, validated (a 400 names the field). */
export function propertyOps(projectId: number, visitor: string, input: PropertyInput, now: number): Omit<PropertyRow, "id">[] {
  const ts = input.ts ?? now;
  const ops: Omit<PropertyRow, "id">[] = [];
  const op = (name: string, o: PropertyOp, value: string | null) => ops.push({ project_id: projectId, visitor, name, op: o, value, ts });
  for (const [name, value] of Object.entries(input.set ?? {})) {
    checkName(name, `set.${name}`);
    op(name, "set", valueText(value, `set.${name}`));
  }
  for (const [name, value] of Object.entries(input.add ?? {})) {
    checkName(name, `add.${name}`);
    for (const v of Array.isArray(value) ? value : [value]) op(name, "add", valueText(v, `add.${name}`));
  }
  const unset = input.unset ?? [];
  if (Array.isArray(unset)) {
    for (const name of unset) {
      if (typeof name !== "string") throw badRequest("unset: a list of property names", { field: "unset" });
      checkName(name, "unset");
      op(name, "unset", null);
    }
  } else {
    for (const [name, value] of Object.entries(unset)) {
      checkName(name, `unset.${name}`);
      op(name, "unset", valueText(value, `unset.${name}`));
    }
  }
  if (ops.length === 0) throw badRequest("nothing to change: give set, add or unset", { field: "set" });
  if (ops.length > MAX_PROPERTY_OPS) throw badRequest(`at most ${MAX_PROPERTY_OPS} property changes per request`, { field: "set" });
  return ops;
}

export interface VisitorSummary {
  id: string;
  first_seen: string | null;
  last_seen: string | null;
  events: number;
}

export class VisitorService {
  constructor(
    private readonly store: AnalyticsStore,
    private readonly analytics: Analytics,
  ) {}

  /** The visitor an id resolves to in the store (following merges). */
  async root(projectId: number, id: string): Promise<string> {
    let v = id;
    for (let i = 0; i < 32; i++) {
      const p = await this.store.aliasOf(projectId, v);
      if (p === null || p === v) return v;
      v = p;
    }
    return v;
  }

  /**
   * Merges `anonymous` into `known`: from now on (and for funnels, backwards too) both ids are one visitor, `known`'s
   * root. An id already merged into a different visitor cannot be merged again (409).
   */
  async identify(projectId: number, anonymous: string, known: string): Promise<{ visitor: string; merged: boolean }> {
    const target = await this.root(projectId, known);
    const from = await this.root(projectId, anonymous);
    if (from === target) return { visitor: target, merged: false };
    if (from !== anonymous)
      throw conflict(`visitor ${JSON.stringify(anonymous)} was merged into ${JSON.stringify(from)} already; identify that one instead`, {
        field: "anonymous",
      });
    try {
      await this.store.addAlias(projectId, anonymous, target, Date.now());
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`visitor ${JSON.stringify(anonymous)} was merged already`, { field: "anonymous" });
      throw e;
    }
    return { visitor: target, merged: true };
  }

  async setProperties(projectId: number, visitor: string, input: PropertyInput): Promise<{ visitor: string; changes: number }> {
    const root = await this.root(projectId, visitor);
    const ops = propertyOps(projectId, root, input, Date.now());
    await this.store.addPropertyOps(ops);
    return { visitor: root, changes: ops.length };
  }

  /** Visitors with events, most recently active first; `q` filters ids by substring. */
  async list(projectId: number, opts: { q?: string; limit: number }): Promise<VisitorSummary[]> {
    const p = await this.analytics.project(projectId);
    const t = p.table;
    const nv = t.offsets.length - 1;
    const top: { v: number; last: number }[] = [];
    for (let v = 0; v < nv; v++) {
      const a = t.offsets[v];
      const b = t.offsets[v + 1];
      if (a === b) continue;
      const last = t.ts[b - 1];
      if (top.length === opts.limit && last <= top[top.length - 1].last) continue;
      if (opts.q && !t.visitorIds[v].includes(opts.q)) continue;
      let i = top.length;
      while (i > 0 && top[i - 1].last < last) i--;
      top.splice(i, 0, { v, last });
      if (top.length > opts.limit) top.pop();
    }
    return top.map(({ v }) => summary(p, v));
  }

  /** One visitor: merged ids, activity, properties now and their history, event counts by name. */
  async profile(projectId: number, id: string) {
    const root = await this.root(projectId, id);
    const p = await this.analytics.project(projectId);
    const t = p.table;
    const v = t.visitorIndex.get(root);
    const ids = [root, ...(await this.allAliases(projectId, root))];
    const history = await this.store.propertiesOf(projectId, ids);
    if ((v === undefined || v >= t.offsets.length - 1 || t.offsets[v] === t.offsets[v + 1]) && history.length === 0 && ids.length === 1)
      throw notFound(`visitor ${JSON.stringify(id)}`);
    const changes = history
      .map((r) => ({ name: r.name, op: r.op, key: r.value, value: r.value === null ? null : (JSON.parse(r.value) as unknown), ts: r.ts, id: r.id }))
      .sort((a, b) => a.ts - b.ts || a.id - b.id);
    const now = foldProperties(changes);
    const counts = new Map<string, number>();
    if (v !== undefined && v < t.offsets.length - 1)
      for (let i = t.offsets[v]; i < t.offsets[v + 1]; i++) counts.set(t.names[t.name[i]], (counts.get(t.names[t.name[i]]) ?? 0) + 1);
    return {
      ...(v !== undefined && v < t.offsets.length - 1 ? summary(p, v) : { id: root, first_seen: null, last_seen: null, events: 0 }),
      requested: id,
      aliases: ids.slice(1),
      properties: Object.fromEntries([...now].map(([name, vals]) => [name, [...vals.values()]])),
      property_history: changes.map((c) => ({ name: c.name, op: c.op, value: c.value, ts: iso(c.ts) })),
      event_counts: Object.fromEntries([...counts].sort((a, b) => b[1] - a[1])),
    };
  }

  /**
   * A visitor's events, newest first. `before` is the previous page's `next_before` (the time and id of its oldest
   * event, so events sharing a millisecond are not skipped) or a time: only events before it.
   */
  async timeline(projectId: number, id: string, opts: { before?: { ts: number; id?: number }; limit: number }) {
    const root = await this.root(projectId, id);
    const p = await this.analytics.project(projectId);
    const t = p.table;
    const v = t.visitorIndex.get(root);
    if (v === undefined || v >= t.offsets.length - 1) throw notFound(`visitor ${JSON.stringify(id)}`);
    const a = t.offsets[v];
    let end = t.offsets[v + 1];
    const before = opts.before;
    if (before) {
      let at = -1;
      if (before.id !== undefined) for (let i = end - 1; i >= a && at < 0; i--) if (t.id[i] === before.id) at = i;
      if (at >= 0) end = at;
      else while (end > a && t.ts[end - 1] >= before.ts) end--;
    }
    const ids: number[] = [];
    let i = end;
    for (; i > a && ids.length < opts.limit; i--) ids.push(t.id[i - 1]);
    // read before the await: a refresh meanwhile may regroup the table
    const nextBefore = i > a && ids.length > 0 ? `${t.ts[i]}.${t.id[i]}` : null;
    const events = (await this.store.eventsByIds(projectId, ids)).sort((x, y) => y.ts - x.ts || y.id - x.id);
    return { events, next_before: nextBefore };
  }

  /** Every id merged into root, directly or through others. */
  private async allAliases(projectId: number, root: string): Promise<string[]> {
    const out: string[] = [];
    let frontier = [root];
    for (let depth = 0; depth < 32 && frontier.length > 0 && out.length < 1000; depth++) {
      const rows = await this.store.aliasesOf(projectId, frontier);
      frontier = rows.map((r) => r.alias).filter((a) => a !== root && !out.includes(a));
      out.push(...frontier);
    }
    return out;
  }
}

function summary(p: ProjectData, v: number): VisitorSummary {
  const t = p.table;
  const a = t.offsets[v];
  const b = t.offsets[v + 1];
  return { id: t.visitorIds[v], first_seen: a < b ? iso(t.ts[a]) : null, last_seen: a < b ? iso(t.ts[b - 1]) : null, events: b - a };
}
