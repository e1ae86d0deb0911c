import type Database from "better-sqlite3";
import type pg from "pg";
import type { StoredEvent, Store } from "../store/port.js";
import { SqliteAnalyticsStore } from "../store/sqlite/analytics.js";
import { PgAnalyticsStore } from "../store/postgres/analytics.js";

/**
 * The analytics' tables (visitor aliases, visitor properties, saved funnels) and the compact scan of the event log that
 * feeds the in-memory event tables. One adapter per engine, like the webhooks' store.
 */

/** One event as the funnel tables read it: [id, ts, name, visitor, data (JSON text or null), source, link id or null]. */
export type TimelineRow = [number, number, string, string, string | null, string, number | null];

export interface AliasRow {
  id: number;
  alias: string;
  visitor: string;
  created_at: number;
}

export type PropertyOp = "set" | "add" | "unset";

export interface PropertyRow {
  id: number;
  project_id: number;
  visitor: string;
  name: string;
  op: PropertyOp;
  /** JSON text of the value; null with "unset" removes every value */
  value: string | null;
  ts: number;
}

export interface SavedFunnel {
  id: number;
  project_id: number;
  name: string;
  description: string | null;
  /** the funnel query as the API takes it (validated before it is stored) */
  query: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

export interface AnalyticsStore {
  /**
   * Non-bot events of a project that have a visitor, with id > afterId, in id order: up to `limit` of them, each handed
   * to `each` as it is read (so a load of millions of rows holds none of them longer than a moment). Returns how many.
   */
  scanTimeline(projectId: number, afterId: number, limit: number, each: (row: TimelineRow) => void): Promise<number>;
  /**
   * Non-bot events with a visitor, ts >= sinceTs and id <= uptoId: the re-scan for engines where several writers commit
   * ids out of order (PostgreSQL), so an event committed late behind a higher id is still read.
   */
  recentTimeline(projectId: number, sinceTs: number, uptoId: number): Promise<TimelineRow[]>;
  eventsByIds(projectId: number, ids: number[]): Promise<StoredEvent[]>;

  /** Records alias → visitor; throws UniqueViolation when the alias was merged before. */
  addAlias(projectId: number, alias: string, visitor: string, at: number): Promise<AliasRow>;
  /** the visitor an alias was merged into, or null */
  aliasOf(projectId: number, alias: string): Promise<string | null>;
  /** the aliases merged directly into these visitors */
  aliasesOf(projectId: number, visitors: string[]): Promise<AliasRow[]>;
  scanAliases(projectId: number, afterId: number, limit: number): Promise<AliasRow[]>;

  addPropertyOps(ops: Omit<PropertyRow, "id">[]): Promise<void>;
  scanProperties(projectId: number, afterId: number, limit: number): Promise<PropertyRow[]>;
  /** every property change of these visitors, in id order */
  propertiesOf(projectId: number, visitors: string[]): Promise<PropertyRow[]>;

  createFunnel(f: Omit<SavedFunnel, "id" | "created_at" | "updated_at">): Promise<SavedFunnel>;
  getFunnel(projectId: number, id: number): Promise<SavedFunnel | null>;
  getFunnelByName(projectId: number, name: string): Promise<SavedFunnel | null>;
  listFunnels(projectId: number): Promise<SavedFunnel[]>;
  updateFunnel(projectId: number, id: number, patch: Partial<Pick<SavedFunnel, "name" | "description" | "query">>): Promise<SavedFunnel | null>;
  deleteFunnel(projectId: number, id: number): Promise<boolean>;
}

export function analyticsStoreFor(store: Store): AnalyticsStore {
  if (store.engine === "sqlite") return new SqliteAnalyticsStore((store as unknown as { db: Database.Database }).db);
  if (store.engine === "postgres") return new PgAnalyticsStore((store as unknown as { pool: pg.Pool }).pool);
  throw new Error(`analytics: unsupported store engine ${(store as Store).engine}`);
}
