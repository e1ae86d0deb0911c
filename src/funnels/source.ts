import type { Store } from "../store/port.js";
import type { AnalyticsStore, PropertyOp, TimelineRow } from "./store.js";
import { EventTable } from "./table.js";

/**
 * Each project's events, visitor merges and visitor properties in memory, for funnels, event reports and visitor
 * pages: loaded from the store on first use, then brought up to date before every read (new events, aliases and
 * property changes are read by id, so a read sees everything committed before it). Reads share one refresh at a time.
 */

/** One property change as the reports fold them (values keyed by their JSON text, so 1 and "1" differ). */
export interface PropChange {
  name: string;
  op: PropertyOp;
  /** JSON text; null with unset = every value */
  key: string | null;
  value: unknown;
  ts: number;
  id: number;
}

/** The values a visitor holds for each property at one time, from its changes in order. */
export function foldProperties(changes: readonly PropChange[], at = Infinity, only?: string): Map<string, Map<string, unknown>> {
  const out = new Map<string, Map<string, unknown>>();
  for (const c of changes) {
    if (c.ts > at) break;
    if (only !== undefined && c.name !== only) continue;
    let vals = out.get(c.name);
    if (!vals) out.set(c.name, (vals = new Map()));
    if (c.op === "set") {
      vals.clear();
      vals.set(c.key!, c.value);
    } else if (c.op === "add") vals.set(c.key!, c.value);
    else if (c.key === null) vals.clear();
    else vals.delete(c.key);
    if (vals.size === 0) out.delete(c.name);
  }
  return out;
}

/** Every value a visitor ever held for a property (HiiTrack's retroactive properties). */
export function everValues(changes: readonly PropChange[], name: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const c of changes) if (c.name === name && c.op !== "unset") out.set(c.key!, c.value);
  return out;
}

export type PropertyAt = "event" | "now" | "ever";

const CHUNK = 100_000;
/** PostgreSQL: events committed up to this long after a higher id are still picked up (writers commit out of order). */
const LATE_COMMIT_MS = 10_000;
/** PostgreSQL: how far back (in ids) alias and property scans look again for rows committed late. */
const RESCAN_IDS = 1000;
/** Alias chains longer than this are cut (they cannot be made by identify, which merges into the chain's root). */
const MAX_CHAIN = 32;

export class ProjectData {
  readonly table = new EventTable();
  /** alias → the visitor it was merged into */
  readonly parent = new Map<string, string>();
  /** property changes by (root) visitor index, in (ts, id) order */
  readonly props = new Map<number, PropChange[]>();
  /** property names seen, with how many changes each */
  readonly propertyNames = new Map<string, number>();
  private eventCursor = 0;
  private aliasCursor = 0;
  private propCursor = 0;
  /** PostgreSQL: ids of the last RESCAN_IDS aliases and property changes read (the re-read overlaps them) */
  private readonly seenAliases = new Set<number>();
  private readonly seenProps = new Set<number>();
  /** PostgreSQL: ids of events read in the last LATE_COMMIT_MS (so the re-scan adds each once) */
  private recentIds = new Map<number, number>();
  private refreshing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  loadedAt = 0;
  lastRefreshMs = 0;

  constructor(
    readonly projectId: number,
    private readonly store: AnalyticsStore,
    private readonly multiWriter: boolean,
  ) {}

  /**
   * Where a scan of aliases or property changes starts. Several writers (PostgreSQL) may commit a lower id after a
   * higher one was read, so the scan overlaps the last RESCAN_IDS ids and skips those it has seen.
   */
  private rescanFrom(cursor: number): number {
    return this.multiWriter ? Math.max(0, cursor - RESCAN_IDS) : cursor;
  }

  /** True when the row was read before; remembers it (only the ids a re-read can meet). */
  private seen(set: Set<number>, id: number): boolean {
    if (!this.multiWriter) return false;
    if (set.has(id)) return true;
    set.add(id);
    // ids arrive in ascending order: forget those a later re-read (RESCAN_IDS back) can no longer meet
    if (set.size > 4 * RESCAN_IDS) for (const x of set) if (x <= id - 2 * RESCAN_IDS) set.delete(x);
    return false;
  }

  /** The visitor an id resolves to after every merge. */
  root(visitor: string): string {
    let v = visitor;
    for (let i = 0; i < MAX_CHAIN; i++) {
      const p = this.parent.get(v);
      if (p === undefined || p === v) return v;
      v = p;
    }
    return v;
  }

  /**
   * Brings the data up to date with the store. One refresh runs at a time; a caller that arrives while one runs waits
   * for the next (which starts after its call, so it sees what the caller committed before), shared by every caller
   * that arrives meanwhile.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.queued ??= this.refreshing.then(
        () => this.startRefresh(),
        () => this.startRefresh(),
      );
      return this.queued;
    }
    return this.startRefresh();
  }

  private startRefresh(): Promise<void> {
    this.queued = null;
    this.refreshing = this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const started = performance.now();
    const t = this.table;
    let merged = false;
    for (let from = this.rescanFrom(this.aliasCursor); ;) {
      const rows = await this.store.scanAliases(this.projectId, from, CHUNK);
      for (const r of rows) {
        if (this.seen(this.seenAliases, r.id)) continue;
        this.parent.set(r.alias, r.visitor);
        merged = true;
      }
      if (rows.length > 0) this.aliasCursor = Math.max(this.aliasCursor, (from = rows[rows.length - 1].id));
      if (rows.length < CHUNK) break;
    }
    if (this.multiWriter && this.eventCursor > 0) {
      const now = Date.now();
      for (const [id, ts] of this.recentIds) if (ts < now - 2 * LATE_COMMIT_MS) this.recentIds.delete(id);
      for (const [id, ts, name, visitor, data, source, link] of await this.store.recentTimeline(
        this.projectId,
        now - LATE_COMMIT_MS,
        this.eventCursor,
      )) {
        if (this.recentIds.has(id)) continue;
        this.recentIds.set(id, ts);
        t.push(this.root(visitor), ts, name, data, source, id, link ?? 0);
      }
    }
    const recentFrom = Date.now() - 2 * LATE_COMMIT_MS;
    const add = ([id, ts, name, visitor, data, source, link]: TimelineRow) => {
      t.push(this.parent.size ? this.root(visitor) : visitor, ts, name, data, source, id, link ?? 0);
      if (this.multiWriter && ts >= recentFrom) this.recentIds.set(id, ts);
      this.eventCursor = id;
    };
    while ((await this.store.scanTimeline(this.projectId, this.eventCursor, CHUNK, add)) === CHUNK);
    const newProps = new Set<number>();
    for (let from = this.rescanFrom(this.propCursor); ;) {
      const rows = await this.store.scanProperties(this.projectId, from, CHUNK);
      for (const r of rows) {
        if (this.seen(this.seenProps, r.id)) continue;
        const v = t.visitorOf(this.root(r.visitor));
        let list = this.props.get(v);
        if (!list) this.props.set(v, (list = []));
        list.push({ name: r.name, op: r.op, key: r.value, value: r.value === null ? null : JSON.parse(r.value), ts: r.ts, id: r.id });
        this.propertyNames.set(r.name, (this.propertyNames.get(r.name) ?? 0) + 1);
        newProps.add(v);
      }
      if (rows.length > 0) this.propCursor = Math.max(this.propCursor, (from = rows[rows.length - 1].id));
      if (rows.length < CHUNK) break;
    }
    for (const v of newProps) this.props.get(v)!.sort(byTime);
    if (merged) this.remap();
    else if (t.dirty) t.sort();
    this.loadedAt ||= Date.now();
    this.lastRefreshMs = performance.now() - started;
  }

  /** After new merges: every visitor's rows and property changes move to its root. */
  private remap(): void {
    const t = this.table;
    const remap = new Uint32Array(t.visitorCount);
    for (let v = 0; v < remap.length; v++) {
      const id = t.visitorIds[v];
      remap[v] = this.parent.has(id) ? t.visitorOf(this.root(id)) : v;
    }
    for (const [v, list] of [...this.props]) {
      const r = remap[v];
      if (r === v) continue;
      this.props.delete(v);
      const into = this.props.get(r);
      if (into) {
        into.push(...list);
        into.sort(byTime);
      } else this.props.set(r, list);
    }
    // visitorOf above may have added roots never seen before: they map to themselves
    const full = new Uint32Array(t.visitorCount);
    full.set(remap);
    for (let v = remap.length; v < full.length; v++) full[v] = v;
    t.sort(full);
  }

  /** The property changes of a visitor (by table index), in order. */
  changesOf(v: number): readonly PropChange[] {
    return this.props.get(v) ?? [];
  }

  /** The values of property `name` a visitor holds at `ts` ("event"), now, or ever held. */
  valuesOf(v: number, name: string, at: PropertyAt, ts: number): unknown[] {
    const changes = this.props.get(v);
    if (!changes) return [];
    if (at === "ever") return [...everValues(changes, name).values()];
    const vals = foldProperties(changes, at === "now" ? Infinity : ts, name).get(name);
    return vals ? [...vals.values()] : [];
  }
}

const byTime = (a: PropChange, b: PropChange) => a.ts - b.ts || a.id - b.id;

/** The projects' data, loaded on first use and kept (a project's events are read from the store once). */
export class Analytics {
  private readonly projects = new Map<number, ProjectData>();

  constructor(
    readonly store: AnalyticsStore,
    private readonly engine: Store["engine"],
  ) {}

  /** A project's data, up to date with everything committed before this call. */
  async project(projectId: number): Promise<ProjectData> {
    let p = this.projects.get(projectId);
    if (!p) this.projects.set(projectId, (p = new ProjectData(projectId, this.store, this.engine === "postgres")));
    await p.refresh();
    return p;
  }

  /** Loaded projects and the bytes their tables hold (for /metrics and the benchmark). */
  stats(): { projects: number; events: number; bytes: number } {
    let events = 0;
    let bytes = 0;
    for (const p of this.projects.values()) {
      events += p.table.length;
      bytes += p.table.bytes;
    }
    return { projects: this.projects.size, events, bytes };
  }
}
