import type pg from "pg";
import type { StoredEvent } from "../port.js";
import type { Row } from "../rows.js";
import { pgRows } from "./index.js";
import type { AliasRow, AnalyticsStore, PropertyRow, SavedFunnel, TimelineRow } from "../../funnels/store.js";

const PATCHABLE = new Set(["name", "description", "query"]);
const TIMELINE = `SELECT id, ts, name, visitor, data, source, link_id FROM events`;

/** The analytics' tables on PostgreSQL, on the adapter's pool (bigint read as numbers, jsonb as objects). */
export class PgAnalyticsStore implements AnalyticsStore {
  constructor(private readonly pool: pg.Pool) {}

  private q<T = Row>(sql: string, params: unknown[] = [], rowMode?: "array"): Promise<T[]> {
    return pgRows<T>(this.pool, sql, params, rowMode);
  }

  async scanTimeline(projectId: number, afterId: number, limit: number, each: (row: TimelineRow) => void): Promise<number> {
    // in pages of 10,000 rows: a page is read whole by the driver, so smaller pages keep memory flat
    let n = 0;
    let after = afterId;
    while (n < limit) {
      const rows = await this.q<TimelineRow>(
        `${TIMELINE} WHERE id > $1 AND project_id = $2 AND visitor IS NOT NULL AND NOT is_bot ORDER BY id LIMIT $3`,
        [after, projectId, Math.min(10_000, limit - n)],
        "array",
      );
      for (const row of rows) each(row);
      n += rows.length;
      if (rows.length < 10_000) break;
      after = rows[rows.length - 1][0];
    }
    return n;
  }

  async recentTimeline(projectId: number, sinceTs: number, uptoId: number): Promise<TimelineRow[]> {
    return this.q<TimelineRow>(
      `${TIMELINE} WHERE project_id = $1 AND ts >= $2 AND id <= $3 AND visitor IS NOT NULL AND NOT is_bot ORDER BY id`,
      [projectId, sinceTs, uptoId],
      "array",
    );
  }

  async eventsByIds(projectId: number, ids: number[]): Promise<StoredEvent[]> {
    if (ids.length === 0) return [];
    return this.q<StoredEvent>(`SELECT * FROM events WHERE project_id = $1 AND id = ANY($2::bigint[]) ORDER BY id`, [projectId, ids]);
  }

  async addAlias(projectId: number, alias: string, visitor: string, at: number): Promise<AliasRow> {
    const [r] = await this.q<AliasRow>(
      `INSERT INTO visitor_aliases (project_id, alias, visitor, created_at) VALUES ($1, $2, $3, $4) RETURNING id, alias, visitor, created_at`,
      [projectId, alias, visitor, at],
    );
    return r!;
  }

  async aliasOf(projectId: number, alias: string): Promise<string | null> {
    const [r] = await this.q(`SELECT visitor FROM visitor_aliases WHERE project_id = $1 AND alias = $2`, [projectId, alias]);
    return (r?.visitor as string | undefined) ?? null;
  }

  async aliasesOf(projectId: number, visitors: string[]): Promise<AliasRow[]> {
    if (visitors.length === 0) return [];
    return this.q<AliasRow>(
      `SELECT id, alias, visitor, created_at FROM visitor_aliases WHERE project_id = $1 AND visitor = ANY($2::text[]) ORDER BY id`,
      [projectId, visitors],
    );
  }

  async scanAliases(projectId: number, afterId: number, limit: number): Promise<AliasRow[]> {
    return this.q<AliasRow>(`SELECT id, alias, visitor, created_at FROM visitor_aliases WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, [
      projectId,
      afterId,
      limit,
    ]);
  }

  async addPropertyOps(ops: Omit<PropertyRow, "id">[]): Promise<void> {
    if (ops.length === 0) return;
    await this.q(
      `INSERT INTO visitor_properties (project_id, visitor, name, op, value, ts)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])`,
      [
        ops.map((o) => o.project_id),
        ops.map((o) => o.visitor),
        ops.map((o) => o.name),
        ops.map((o) => o.op),
        ops.map((o) => o.value),
        ops.map((o) => o.ts),
      ],
    );
  }

  async scanProperties(projectId: number, afterId: number, limit: number): Promise<PropertyRow[]> {
    return this.q<PropertyRow>(`SELECT * FROM visitor_properties WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, [
      projectId,
      afterId,
      limit,
    ]);
  }

  async propertiesOf(projectId: number, visitors: string[]): Promise<PropertyRow[]> {
    if (visitors.length === 0) return [];
    return this.q<PropertyRow>(`SELECT * FROM visitor_properties WHERE project_id = $1 AND visitor = ANY($2::text[]) ORDER BY id`, [
      projectId,
      visitors,
    ]);
  }

  async createFunnel(f: Omit<SavedFunnel, "id" | "created_at" | "updated_at">): Promise<SavedFunnel> {
    const now = Date.now();
    const [r] = await this.q<SavedFunnel>(
      `INSERT INTO funnels (project_id, name, description, query, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING *`,
      [f.project_id, f.name, f.description, JSON.stringify(f.query), now],
    );
    return r!;
  }

  async getFunnel(projectId: number, id: number): Promise<SavedFunnel | null> {
    const [r] = await this.q<SavedFunnel>(`SELECT * FROM funnels WHERE project_id = $1 AND id = $2`, [projectId, id]);
    return r ?? null;
  }

  async getFunnelByName(projectId: number, name: string): Promise<SavedFunnel | null> {
    const [r] = await this.q<SavedFunnel>(`SELECT * FROM funnels WHERE project_id = $1 AND name = $2`, [projectId, name]);
    return r ?? null;
  }

  async listFunnels(projectId: number): Promise<SavedFunnel[]> {
    return this.q<SavedFunnel>(`SELECT * FROM funnels WHERE project_id = $1 ORDER BY id`, [projectId]);
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
      vals.push(k === "query" ? JSON.stringify(v) : v);
      sets.push(`${k} = $${vals.length}`);
    }
    vals.push(Date.now(), projectId, id);
    const n = vals.length;
    const [r] = await this.q<SavedFunnel>(
      `UPDATE funnels SET ${[...sets, `updated_at = $${n - 2}`].join(", ")} WHERE project_id = $${n - 1} AND id = $${n} RETURNING *`,
      vals,
    );
    return r ?? null;
  }

  async deleteFunnel(projectId: number, id: number): Promise<boolean> {
    return (await this.q(`DELETE FROM funnels WHERE project_id = $1 AND id = $2 RETURNING id`, [projectId, id])).length > 0;
  }
}
