import type Database from "better-sqlite3";
import type { StoredEvent } from "../port.js";
import { rethrow } from "./index.js";
import type { Row } from "../rows.js";
import type { AliasRow, AnalyticsStore, PropertyRow, SavedFunnel, TimelineRow } from "../../funnels/store.js";

function toFunnel(r: Row | undefined): SavedFunnel | null {
  if (!r) return null;
  return { ...(r as unknown as SavedFunnel), query: JSON.parse(r.query as string) as Record<string, unknown> };
}

/** Runs fn, turning a unique-constraint violation into UniqueViolation (the API answers 409). */
function unique<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    rethrow(e);
  }
}

const PATCHABLE = new Set(["name", "description", "query"]);

/** Binds a list as `?, ?, …` (SQLite has no arrays); callers keep lists short. */
const marks = (n: number) => new Array(n).fill("?").join(", ");

/** The analytics' tables on SQLite. Statements are prepared once: the event scan runs in tight loops. */
export class SqliteAnalyticsStore implements AnalyticsStore {
  private readonly scan: Database.Statement;
  private readonly recent: Database.Statement;

  constructor(private readonly db: Database.Database) {
    // the rowid range keeps the scan in id order without a sort, even with the (project_id, ts) index around
    this.scan = db
      .prepare(
        `SELECT id, ts, name, visitor, data, source, link_id FROM events NOT INDEXED
         WHERE id > ? AND project_id = ? AND visitor IS NOT NULL AND is_bot = 0 ORDER BY id LIMIT ?`,
      )
      .raw(true);
    this.recent = db
      .prepare(
        `SELECT id, ts, name, visitor, data, source, link_id FROM events
         WHERE project_id = ? AND ts >= ? AND id <= ? AND visitor IS NOT NULL AND is_bot = 0 ORDER BY id`,
      )
      .raw(true);
  }

  async scanTimeline(projectId: number, afterId: number, limit: number, each: (row: TimelineRow) => void): Promise<number> {
    let n = 0;
    for (const row of this.scan.iterate(afterId, projectId, limit) as IterableIterator<TimelineRow>) {
      each(row);
      n++;
    }
    return n;
  }

  async recentTimeline(projectId: number, sinceTs: number, uptoId: number): Promise<TimelineRow[]> {
    return this.recent.all(projectId, sinceTs, uptoId) as TimelineRow[];
  }

  async eventsByIds(projectId: number, ids: number[]): Promise<StoredEvent[]> {
    if (ids.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT * FROM events WHERE project_id = ? AND id IN (${marks(ids.length)}) ORDER BY id`)
      .all(projectId, ...ids) as Row[];
    return rows.map((r) => ({ ...(r as unknown as StoredEvent), is_bot: r.is_bot === 1 }));
  }

  async addAlias(projectId: number, alias: string, visitor: string, at: number): Promise<AliasRow> {
    return unique(
      () =>
        this.db
          .prepare(
            `INSERT INTO visitor_aliases (project_id, alias, visitor, created_at) VALUES (?, ?, ?, ?) RETURNING id, alias, visitor, created_at`,
          )
          .get(projectId, alias, visitor, at) as AliasRow,
    );
  }

  async aliasOf(projectId: number, alias: string): Promise<string | null> {
    const r = this.db.prepare(`SELECT visitor FROM visitor_aliases WHERE project_id = ? AND alias = ?`).get(projectId, alias) as Row | undefined;
    return (r?.visitor as string | undefined) ?? null;
  }

  async aliasesOf(projectId: number, visitors: string[]): Promise<AliasRow[]> {
    if (visitors.length === 0) return [];
    return this.db
      .prepare(
        `SELECT id, alias, visitor, created_at FROM visitor_aliases WHERE project_id = ? AND visitor IN (${marks(visitors.length)}) ORDER BY id`,
      )
      .all(projectId, ...visitors) as AliasRow[];
  }

  async scanAliases(projectId: number, afterId: number, limit: number): Promise<AliasRow[]> {
    return this.db
      .prepare(`SELECT id, alias, visitor, created_at FROM visitor_aliases WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?`)
      .all(projectId, afterId, limit) as AliasRow[];
  }

  async addPropertyOps(ops: Omit<PropertyRow, "id">[]): Promise<void> {
    const ins = this.db.prepare(`INSERT INTO visitor_properties (project_id, visitor, name, op, value, ts) VALUES (?, ?, ?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const o of ops) ins.run(o.project_id, o.visitor, o.name, o.op, o.value, o.ts);
    })();
  }

  async scanProperties(projectId: number, afterId: number, limit: number): Promise<PropertyRow[]> {
    return this.db
      .prepare(`SELECT * FROM visitor_properties WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?`)
      .all(projectId, afterId, limit) as PropertyRow[];
  }

  async propertiesOf(projectId: number, visitors: string[]): Promise<PropertyRow[]> {
    if (visitors.length === 0) return [];
    return this.db
      .prepare(`SELECT * FROM visitor_properties WHERE project_id = ? AND visitor IN (${marks(visitors.length)}) ORDER BY id`)
      .all(projectId, ...visitors) as PropertyRow[];
  }

  async createFunnel(f: Omit<SavedFunnel, "id" | "created_at" | "updated_at">): Promise<SavedFunnel> {
    const now = Date.now();
    return unique(() =>
      toFunnel(
        this.db
          .prepare(`INSERT INTO funnels (project_id, name, description, query, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *`)
          .get(f.project_id, f.name, f.description, JSON.stringify(f.query), now, now) as Row,
      )!,
    );
  }

  async getFunnel(projectId: number, id: number): Promise<SavedFunnel | null> {
    return toFunnel(this.db.prepare(`SELECT * FROM funnels WHERE project_id = ? AND id = ?`).get(projectId, id) as Row | undefined);
  }

  async getFunnelByName(projectId: number, name: string): Promise<SavedFunnel | null> {
    return toFunnel(this.db.prepare(`SELECT * FROM funnels WHERE project_id = ? AND name = ?`).get(projectId, name) as Row | undefined);
  }

  async listFunnels(projectId: number): Promise<SavedFunnel[]> {
    return (this.db.prepare(`SELECT * FROM funnels WHERE project_id = ? ORDER BY id`).all(projectId) as Row[]).map((r) => toFunnel(r)!);
  }

  async updateFunnel(
    projectId: number,
    id: number,
    patch: Partial<Pick<SavedFunnel, "name" | "description" | "query">>,
  ): Promise<SavedFunnel | null> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || !PATCHABLE.has(k)) continue;
      sets.push(`${k} = ?`);
      vals.push(k === "query" ? JSON.stringify(v) : v);
    }
    sets.push("updated_at = ?");
    vals.push(Date.now());
    return unique(() =>
      toFunnel(
        this.db.prepare(`UPDATE funnels SET ${sets.join(", ")} WHERE project_id = ? AND id = ? RETURNING *`).get(...vals, projectId, id) as
          Row | undefined,
      ),
    );
  }

  async deleteFunnel(projectId: number, id: number): Promise<boolean> {
    return this.db.prepare(`DELETE FROM funnels WHERE project_id = ? AND id = ?`).run(projectId, id).changes > 0;
  }
}
