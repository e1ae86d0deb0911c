import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { MIGRATIONS } from "./migrations.js";
import { frameBytes, WAL_RESTART_BYTES, walSizeLimit, type CheckpointResult, type WalGauge } from "./wal.js";
import { BUSY_TIMEOUT_MS, writeTx } from "./lock.js";
import { AppError } from "../../errors.js";
import { LINK_COLUMNS, LINK_SELECT, linkFieldValue, linkOrder, linkValues, toCampaign, toLink, type Row } from "../rows.js";
import {
  breakdownHours,
  LEGACY_CHUNK_SIZE,
  namedByTotal,
  ROLLUP_FORMAT,
  DIMENSIONS,
  UniqueViolation,
  type EventRow,
  type RollupOp,
  type RollupState,
  type ApiKey,
  type Dimension,
  type Domain,
  type EventFilter,
  type Campaign,
  type Membership,
  type App,
  type IngestSession,
  type SessionFilter,
  type Session,
  type TrackingKey,
  type Link,
  type LinkFilter,
  type LinkPatch,
  type NewLink,
  type Project,
  type StatsRange,
  type Store,
  type StoredEvent,
  type User,
} from "../port.js";

export interface SqliteOptions {
  /** Path of the database file, or ":memory:". */
  file: string;
  synchronous?: "FULL" | "NORMAL";
  /** false: this connection never checkpoints the WAL (a checkpointer thread does; see checkpointer.ts) */
  autocheckpoint?: boolean;
  /** the write-ahead log's size past which it is started over (default WAL_RESTART_BYTES; see checkpointer.ts) */
  walRestartBytes?: number;
  /** the writer thread's: the log's length as the checkpointer thread measures it (see checkpointBetweenCommits) */
  walGauge?: WalGauge;
}

/** The events table's columns an insert sets, in the order eventValues writes them. */
const EVENT_COLUMNS =
  "project_id, ts, client_ts, name, visitor, session, link_id, domain_id, campaign_id, source, channel, platform, ip, ua, referrer, browser, os, device, is_bot, country, rule, data, app_id";
const EVENT_COLUMN_COUNT = 23;
const EVENT_PLACEHOLDERS = `(${Array(EVENT_COLUMN_COUNT).fill("?").join(", ")})`;
/** rows per multi-row insert (23 values each; SQLite allows 32,766 per statement) */
const ROWS_PER_INSERT = 16;

/** Writes an event's values for EVENT_COLUMNS into `out` from position `at`. */
function eventValues(e: EventRow, out: unknown[], at: number): void {
  out[at] = e.project_id;
  out[at + 1] = e.ts;
  out[at + 2] = e.client_ts;
  out[at + 3] = e.name;
  out[at + 4] = e.visitor;
  out[at + 5] = e.session;
  out[at + 6] = e.link_id;
  out[at + 7] = e.domain_id;
  out[at + 8] = e.campaign_id;
  out[at + 9] = e.source;
  out[at + 10] = e.channel;
  out[at + 11] = e.platform;
  out[at + 12] = e.ip;
  out[at + 13] = e.ua;
  out[at + 14] = e.referrer;
  out[at + 15] = e.browser;
  out[at + 16] = e.os;
  out[at + 17] = e.device;
  out[at + 18] = e.is_bot ? 1 : 0;
  out[at + 19] = e.country;
  out[at + 20] = e.rule;
  out[at + 21] = e.data;
  out[at + 22] = e.app_id ?? null;
}

const COLUMN_NAMES = EVENT_COLUMNS.split(", ");
/** every column of EVENT_COLUMNS, none shared (see columnSets): the insert of every column */
const ALL_COLUMNS = 2 ** EVENT_COLUMN_COUNT - 1;

/** `used + shared * SHARED` (see columnSets): the key of a set of columns an insert sets and of those it binds once */
const SHARED = 2 ** EVENT_COLUMN_COUNT;

/**
 * The columns of `events[from, from + n)`, in one pass: `used`, bit i set where column i of EVENT_COLUMNS holds a value
 * in at least one of them (project_id, ts, name, source and is_bot always do; every other column may be left out of an
 * insert, and is NULL then); `shared`, those of them whose value is the same in every one (a batch from one front end:
 * its user agent, browser, os, device, ip, app, often its visitor), never the server time (a row needs a value of its
 * own, and 16 events alike in every column are possible). Returned as `used + shared * SHARED`.
 */
function columnSets(events: EventRow[], from: number, n: number): number {
  const f = events[from]!;
  const app = f.app_id ?? null;
  let used = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 9) | (1 << 18);
  let differ = 1 << 1;
  for (let i = from; i < from + n; i++) {
    const e = events[i]!;
    if (e.project_id !== f.project_id) differ |= 1 << 0;
    if (e.client_ts !== null) used |= 1 << 2;
    if (e.client_ts !== f.client_ts) differ |= 1 << 2;
    if (e.name !== f.name) differ |= 1 << 3;
    if (e.visitor !== null) used |= 1 << 4;
    if (e.visitor !== f.visitor) differ |= 1 << 4;
    if (e.session !== null) used |= 1 << 5;
    if (e.session !== f.session) differ |= 1 << 5;
    if (e.link_id !== null) used |= 1 << 6;
    if (e.link_id !== f.link_id) differ |= 1 << 6;
    if (e.domain_id !== null) used |= 1 << 7;
    if (e.domain_id !== f.domain_id) differ |= 1 << 7;
    if (e.campaign_id !== null) used |= 1 << 8;
    if (e.campaign_id !== f.campaign_id) differ |= 1 << 8;
    if (e.source !== f.source) differ |= 1 << 9;
    if (e.channel !== null) used |= 1 << 10;
    if (e.channel !== f.channel) differ |= 1 << 10;
    if (e.platform !== null) used |= 1 << 11;
    if (e.platform !== f.platform) differ |= 1 << 11;
    if (e.ip !== null) used |= 1 << 12;
    if (e.ip !== f.ip) differ |= 1 << 12;
    if (e.ua !== null) used |= 1 << 13;
    if (e.ua !== f.ua) differ |= 1 << 13;
    if (e.referrer !== null) used |= 1 << 14;
    if (e.referrer !== f.referrer) differ |= 1 << 14;
    if (e.browser !== null) used |= 1 << 15;
    if (e.browser !== f.browser) differ |= 1 << 15;
    if (e.os !== null) used |= 1 << 16;
    if (e.os !== f.os) differ |= 1 << 16;
    if (e.device !== null) used |= 1 << 17;
    if (e.device !== f.device) differ |= 1 << 17;
    if (e.is_bot !== f.is_bot) differ |= 1 << 18;
    if (e.country !== null) used |= 1 << 19;
    if (e.country !== f.country) differ |= 1 << 19;
    if (e.rule !== null) used |= 1 << 20;
    if (e.rule !== f.rule) differ |= 1 << 20;
    if (e.data !== null) used |= 1 << 21;
    if (e.data !== f.data) differ |= 1 << 21;
    if (e.app_id != null) used |= 1 << 22;
    if ((e.app_id ?? null) !== app) differ |= 1 << 22;
  }
  return used + (used & ~differ) * SHARED;
}

/**
 * A multi-row insert of ROWS_PER_INSERT events that sets only some columns, binding once those whose value all its rows
 * share (see narrowInsert), and its reused bind values.
 */
interface NarrowInsert {
  statement: Database.Statement;
  /** the columns bound once for all rows, then those bound per row (indexes into EVENT_COLUMNS) */
  shared: number[];
  columns: number[];
  values: unknown[];
}

/**
 * at most this many column sets (used × shared) get an insert of their own (each a prepared statement); others take
 * one that shares nothing, or the full insert
 */
const MAX_NARROW_INSERTS = 64;

export function sqlitePath(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true });
  return path.join(dataDir, "clicktrail.db");
}

/** A unique or primary-key constraint failed (the key is taken). */
export function isUniqueViolation(e: unknown): boolean {
  const code = e && typeof e === "object" && "code" in e ? String((e as { code: unknown }).code) : "";
  return code.startsWith("SQLITE_CONSTRAINT_UNIQUE") || code.startsWith("SQLITE_CONSTRAINT_PRIMARYKEY");
}

/** Rethrows a taken key as UniqueViolation (the API answers 409), anything else as it is. */
export function rethrow(e: unknown): never {
  if (isUniqueViolation(e)) throw new UniqueViolation((e as Error).message);
  throw e;
}

/**
 * A full disk or a failing file, as the API should say it: 507 storage-full (problem+json naming the cause) instead of
 * an anonymous 500. Everything else goes on unchanged.
 */
function storageError(e: unknown, onFull: () => void): unknown {
  const code = e && typeof e === "object" && "code" in e ? String((e as { code: unknown }).code) : "";
  if (code === "SQLITE_FULL") {
    onFull();
    return new AppError(507, "storage-full", "the server's disk is full: nothing can be stored until space is freed; try again later");
  }
  if (code.startsWith("SQLITE_IOERR"))
    return new AppError(503, "storage-unavailable", `the database file cannot be read or written right now (${code}); try again later`);
  return e;
}

/**
 * The database handle with every statement's errors mapped by storageError: SQL runs in many places of the adapter,
 * and a full disk can fail any write (or the commit of a transaction).
 */
function guardedDatabase(db: Database.Database, onFull: () => void): Database.Database {
  const map = (e: unknown) => storageError(e, onFull);
  const wrapTx = (tx: Database.Transaction<(...a: unknown[]) => unknown>) => {
    const call =
      (f: (...a: unknown[]) => unknown) =>
      (...a: unknown[]) => {
        try {
          return f(...a);
        } catch (e) {
          throw map(e);
        }
      };
    // IMMEDIATE by default: the event log is written by a second connection (the writer thread), and a deferred
    // transaction that reads first could not take the write lock after that connection committed (SQLITE_BUSY_SNAPSHOT);
    // an immediate one waits for the lock (busy_timeout) before it reads
    return Object.assign(call(tx.immediate), {
      default: call(tx.default),
      deferred: call(tx.deferred),
      immediate: call(tx.immediate),
      exclusive: call(tx.exclusive),
    });
  };
  const guard = <T extends object>(target: T, wrapResult: (prop: PropertyKey, r: unknown) => unknown): T => {
    const methods = new Map<PropertyKey, unknown>();
    const proxy: T = new Proxy(target, {
      get(t, prop) {
        const v = Reflect.get(t, prop, t) as unknown;
        if (typeof v !== "function") return v;
        let m = methods.get(prop);
        if (!m) {
          m = (...args: unknown[]) => {
            let r: unknown;
            try {
              r = (v as (...a: unknown[]) => unknown).apply(t, args);
            } catch (e) {
              throw map(e);
            }
            return r === t ? proxy : wrapResult(prop, r);
          };
          methods.set(prop, m);
        }
        return m;
      },
    });
    return proxy;
  };
  return guard(db, (prop, r) => {
    if (prop === "prepare") return guard(r as Database.Statement, (_p, x) => x);
    if (prop === "transaction") return wrapTx(r as Database.Transaction<(...a: unknown[]) => unknown>);
    return r;
  });
}

function toKey(r: Row | undefined): ApiKey | null {
  if (!r) return null;
  return { ...(r as unknown as ApiKey), scopes: JSON.parse(r.scopes as string) };
}

function toEvent(r: Row): StoredEvent {
  return { ...(r as unknown as StoredEvent), is_bot: r.is_bot === 1 };
}

export class SqliteStore implements Store {
  readonly engine = "sqlite" as const;
  readonly db: Database.Database;
  /**
   * The handle without the error mapping: the statements that only ever run inside a (mapped) transaction of the write
   * path use it, so a group commit does not pay the mapping's proxy on every row (measured: about a tenth of ingest's CPU).
   */
  private readonly raw: Database.Database;
  private lastConfigVersion: string | null = null;
  readonly file: string;
  readonly synchronous: "FULL" | "NORMAL";
  readonly walRestartBytes: number;
  /**
   * Set by the writer thread (see ThreadedWriter): the clicks of a link committed to the event log after the rollup
   * watermark and not yet in links.clicks. Links are read with the watermark in one snapshot and counted with these.
   */
  clicksPending?: (linkId: number, watermark: number) => number;
  private prepared?: ReturnType<SqliteStore["prepareAll"]>;

  /** when a write last failed for lack of disk space (0: since then one succeeded), for /healthz */
  private fullAt = 0;

  constructor(opts: SqliteOptions) {
    this.file = opts.file;
    this.synchronous = opts.synchronous ?? "FULL";
    this.walRestartBytes = opts.walRestartBytes ?? WAL_RESTART_BYTES;
    this.raw = new Database(opts.file);
    this.db = guardedDatabase(this.raw, () => (this.fullAt = Date.now()));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${this.synchronous}`);
    this.db.pragma("foreign_keys = ON");
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.db.pragma("cache_size = -65536");
    // checkpoint less often: fewer, larger WAL-to-database copies (measured: about 30 % less commit time)
    this.db.pragma(`wal_autocheckpoint = ${opts.autocheckpoint === false ? 0 : 10000}`);
    // a log started over is cut back to this size (every connection that may write sets it: the one whose commit
    // starts the log over cuts it)
    this.db.pragma(`journal_size_limit = ${walSizeLimit(this.walRestartBytes)}`);
    this.walGauge = opts.walGauge ?? null;
    this.frameBytes = frameBytes(this.db.pragma("page_size", { simple: true }) as number);
  }

  private readonly walGauge: WalGauge | null;
  private readonly frameBytes: number;

  private get s() {
    return (this.prepared ??= this.prepareAll());
  }

  private prepareAll() {
    const db = this.db;
    const tx = this.raw;
    return {
      insertEvent: tx.prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES ${EVENT_PLACEHOLDERS}`),
      insertEvents: tx.prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES ${Array(ROWS_PER_INSERT).fill(EVENT_PLACEHOLDERS).join(", ")}`),
      upsertRollup: tx.prepare(
        `INSERT INTO rollups (scope, scope_id, dim, slot, bot, value, clicks) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET clicks = clicks + excluded.clicks`,
      ),
      getSketch: tx.prepare(`SELECT sketch FROM visitor_sketches WHERE scope = ? AND scope_id = ? AND hour = ? AND bot = ?`).pluck(),
      putSketch: tx.prepare(
        `INSERT INTO visitor_sketches (scope, scope_id, hour, bot, sketch) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET sketch = excluded.sketch`,
      ),
      chunkDone: tx.prepare(`INSERT INTO rollup_chunks_done (chunk) VALUES (?)`),
      addLinkClicks: tx.prepare(`UPDATE links SET clicks = clicks + ? WHERE id = ?`),
      linkById: db.prepare(`${LINK_SELECT} WHERE l.project_id = ? AND l.id = ?`),
      linkBySlug: db.prepare(`${LINK_SELECT} WHERE l.domain_id = ? AND l.slug = ?`),
      domainByHost: db.prepare(`SELECT * FROM domains WHERE hostname = ?`),
      keyByHash: db.prepare(`SELECT * FROM api_keys WHERE hash = ?`),
      watermark: db.prepare(`SELECT value FROM meta WHERE key = 'rollup_watermark'`).pluck(),
      setJournalMark: tx.prepare(`INSERT INTO meta (key, value) VALUES ('journal_mark', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
    };
  }

  async migrate(): Promise<number> {
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    let applied = 0;
    // IMMEDIATE takes the write lock first, so two processes starting at once apply each migration once.
    const run = this.db.transaction(() => {
      const done = new Set((this.db.prepare(`SELECT id FROM schema_migrations`).all() as { id: number }[]).map((r) => r.id));
      for (const m of MIGRATIONS) {
        if (done.has(m.id)) continue;
        this.db.exec(m.sql);
        this.db.prepare(`INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)`).run(m.id, m.name, Date.now());
        applied++;
      }
      // foreign keys are off while tables are rebuilt: every reference must still hold before the migrations commit
      const broken = this.db.pragma("foreign_key_check") as unknown[];
      if (broken.length) throw new Error(`migration left ${broken.length} broken foreign key(s): ${JSON.stringify(broken.slice(0, 3))}`);
    });
    // (a no-op inside a transaction, so it is set around it)
    this.db.pragma("foreign_keys = OFF");
    try {
      run.immediate();
    } finally {
      this.db.pragma("foreign_keys = ON");
    }
    this.prepared = undefined;
    this.lastConfigVersion = await this.getMeta("config_version");
    return applied;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Whether a cached table changed since the last call (migration 8's triggers move the counter). */
  async externalChange(): Promise<boolean> {
    const v = await this.getMeta("config_version");
    const changed = v !== this.lastConfigVersion;
    this.lastConfigVersion = v;
    return changed;
  }

  async ping(): Promise<void> {
    this.db.prepare("SELECT 1").get();
  }

  async getMeta(key: string): Promise<string | null> {
    const r = this.db.prepare(`SELECT value FROM meta WHERE key = ?`).get(key) as Row | undefined;
    return (r?.value as string) ?? null;
  }

  async setMetaIfAbsent(key: string, value: string): Promise<string> {
    await writeTx(this.db, () => this.db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)`).run(key, value));
    return (await this.getMeta(key))!;
  }

  async createProject(name: string): Promise<Project> {
    try {
      const now = Date.now();
      const r = this.db.prepare(`INSERT INTO projects (name, created_at) VALUES (?, ?)`).run(name, now);
      return { id: Number(r.lastInsertRowid), name, created_at: now };
    } catch (e) {
      rethrow(e);
    }
  }

  async getProject(idOrName: number | string): Promise<Project | null> {
    const col = typeof idOrName === "number" ? "id" : "name";
    return (this.db.prepare(`SELECT * FROM projects WHERE ${col} = ?`).get(idOrName) as Project | undefined) ?? null;
  }

  async listProjects(): Promise<Project[]> {
    return this.db.prepare(`SELECT * FROM projects ORDER BY id`).all() as Project[];
  }

  async createUser(email: string, passwordHash: string): Promise<User> {
    try {
      const now = Date.now();
      const r = this.db.prepare(`INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)`).run(email, passwordHash, now);
      return { id: Number(r.lastInsertRowid), email, password_hash: passwordHash, created_at: now };
    } catch (e) {
      rethrow(e);
    }
  }

  async getUserByEmail(email: string): Promise<User | null> {
    return (this.db.prepare(`SELECT * FROM users WHERE email = ?`).get(email) as User | undefined) ?? null;
  }

  async addMember(userId: number, projectId: number, role: string): Promise<void> {
    this.db
      .prepare(`INSERT INTO memberships (user_id, project_id, role) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET role = excluded.role`)
      .run(userId, projectId, role);
  }

  async getUser(id: number): Promise<User | null> {
    return (this.db.prepare(`SELECT * FROM users WHERE id = ?`).get(id) as User | undefined) ?? null;
  }

  async listMemberships(userId: number): Promise<Membership[]> {
    return this.db
      .prepare(`SELECT m.project_id, p.name, m.role FROM memberships m JOIN projects p ON p.id = m.project_id WHERE m.user_id = ? ORDER BY p.id`)
      .all(userId) as Membership[];
  }

  async createTrackingKey(k: Omit<TrackingKey, "id" | "created_at" | "revoked_at">): Promise<TrackingKey> {
    try {
      const r = this.db
        .prepare(`INSERT INTO tracking_keys (project_id, kid, kind, secret, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(k.project_id, k.kid, k.kind, k.secret, Date.now());
      return this.db.prepare(`SELECT * FROM tracking_keys WHERE id = ?`).get(r.lastInsertRowid) as TrackingKey;
    } catch (e) {
      rethrow(e);
    }
  }

  async listTrackingKeys(projectId: number): Promise<TrackingKey[]> {
    return this.db.prepare(`SELECT * FROM tracking_keys WHERE project_id = ? ORDER BY id`).all(projectId) as TrackingKey[];
  }

  async activeTrackingKeys(): Promise<TrackingKey[]> {
    return this.db.prepare(`SELECT * FROM tracking_keys WHERE revoked_at IS NULL ORDER BY id DESC`).all() as TrackingKey[];
  }

  async revokeTrackingKey(projectId: number, id: number): Promise<boolean> {
    return (
      this.db.prepare(`UPDATE tracking_keys SET revoked_at = ? WHERE project_id = ? AND id = ? AND revoked_at IS NULL`).run(Date.now(), projectId, id)
        .changes > 0
    );
  }

  async setMeta(key: string, value: string): Promise<void> {
    await writeTx(this.db, () =>
      this.db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value`).run(key, value),
    );
  }

  async createApp(a: Omit<App, "id" | "created_at" | "disabled_at">): Promise<App> {
    try {
      const r = this.db
        .prepare(`INSERT INTO apps (project_id, name, key, idle_timeout_ms, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(a.project_id, a.name, a.key, a.idle_timeout_ms, Date.now());
      return this.db.prepare(`SELECT * FROM apps WHERE id = ?`).get(r.lastInsertRowid) as App;
    } catch (e) {
      rethrow(e);
    }
  }

  async getApp(projectId: number, id: number): Promise<App | null> {
    return (this.db.prepare(`SELECT * FROM apps WHERE project_id = ? AND id = ?`).get(projectId, id) as App | undefined) ?? null;
  }

  async getAppByKey(key: string): Promise<App | null> {
    return (this.db.prepare(`SELECT * FROM apps WHERE key = ?`).get(key) as App | undefined) ?? null;
  }

  async listApps(projectId: number): Promise<App[]> {
    return this.db.prepare(`SELECT * FROM apps WHERE project_id = ? ORDER BY id`).all(projectId) as App[];
  }

  async disableApp(projectId: number, id: number, disabled: boolean): Promise<App | null> {
    this.db.prepare(`UPDATE apps SET disabled_at = ? WHERE project_id = ? AND id = ?`).run(disabled ? Date.now() : null, projectId, id);
    return this.getApp(projectId, id);
  }

  async createIngestSession(x: Omit<IngestSession, "id" | "stopped_at" | "stop_reason" | "event_count">): Promise<IngestSession> {
    return writeTx(this.db, () => {
      const r = this.db
        .prepare(
          `INSERT INTO sessions_ingest (project_id, app_id, token, visitor, started_at, client_started_at, last_event_at, ip, ua) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(x.project_id, x.app_id, x.token, x.visitor, x.started_at, x.client_started_at, x.last_event_at, x.ip, x.ua);
      return this.db.prepare(`SELECT * FROM sessions_ingest WHERE id = ?`).get(r.lastInsertRowid) as IngestSession;
    });
  }

  async getIngestSession(token: string): Promise<IngestSession | null> {
    return (this.db.prepare(`SELECT * FROM sessions_ingest WHERE token = ?`).get(token) as IngestSession | undefined) ?? null;
  }

  async stopIngestSession(token: string, at: number, reason: string): Promise<boolean> {
    const stop = this.db.prepare(`UPDATE sessions_ingest SET stopped_at = ?, stop_reason = ? WHERE token = ? AND stopped_at IS NULL`);
    return writeTx(this.db, () => stop.run(at, reason, token).changes > 0);
  }

  async touchIngestSessions(updates: { token: string; last_event_at: number; events: number }[]): Promise<void> {
    const st = this.db.prepare(`UPDATE sessions_ingest SET last_event_at = max(last_event_at, ?), event_count = event_count + ? WHERE token = ?`);
    await writeTx(this.db, () => {
      for (const u of updates) st.run(u.last_event_at, u.events, u.token);
    });
  }

  async listIngestSessions(f: SessionFilter): Promise<IngestSession[]> {
    const where = ["project_id = ?"];
    const vals: unknown[] = [f.project_id];
    const add = (c: string, v: unknown) => (where.push(c), vals.push(v));
    if (f.app_id !== undefined) add("app_id = ?", f.app_id);
    if (f.visitor !== undefined) add("visitor = ?", f.visitor);
    if (f.from !== undefined) add("started_at >= ?", f.from);
    if (f.to !== undefined) add("started_at < ?", f.to);
    if (f.before_id !== undefined) add("id < ?", f.before_id);
    return this.db
      .prepare(`SELECT * FROM sessions_ingest WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`)
      .all(...vals, f.limit) as IngestSession[];
  }

  async createSession(x: Session): Promise<void> {
    this.db
      .prepare(`INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`)
      .run(x.id_hash, x.user_id, x.csrf, x.created_at, x.expires_at);
    // expired sessions go as new ones come
    this.db.prepare(`DELETE FROM sessions WHERE expires_at < ?`).run(x.created_at);
  }

  async getSession(idHash: string, now: number): Promise<Session | null> {
    return (this.db.prepare(`SELECT * FROM sessions WHERE id_hash = ? AND expires_at > ?`).get(idHash, now) as Session | undefined) ?? null;
  }

  async deleteSession(idHash: string): Promise<void> {
    this.db.prepare(`DELETE FROM sessions WHERE id_hash = ?`).run(idHash);
  }

  async createApiKey(k: Omit<ApiKey, "id" | "created_at" | "revoked_at">): Promise<ApiKey> {
    const now = Date.now();
    const r = this.db
      .prepare(`INSERT INTO api_keys (project_id, name, prefix, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(k.project_id, k.name, k.prefix, k.hash, JSON.stringify(k.scopes), now);
    return { ...k, id: Number(r.lastInsertRowid), created_at: now, revoked_at: null };
  }

  async getApiKeyByHash(hash: string): Promise<ApiKey | null> {
    return toKey(this.s.keyByHash.get(hash) as Row | undefined);
  }

  async listApiKeys(projectId: number): Promise<ApiKey[]> {
    return (this.db.prepare(`SELECT * FROM api_keys WHERE project_id = ? ORDER BY id`).all(projectId) as Row[]).map((r) => toKey(r)!);
  }

  async revokeApiKey(projectId: number, id: number): Promise<boolean> {
    const r = this.db
      .prepare(`UPDATE api_keys SET revoked_at = ? WHERE project_id = ? AND id = ? AND revoked_at IS NULL`)
      .run(Date.now(), projectId, id);
    return r.changes > 0;
  }

  async countApiKeys(): Promise<number> {
    return (this.db.prepare(`SELECT count(*) AS n FROM api_keys`).get() as { n: number }).n;
  }

  async createDomain(d: Omit<Domain, "id" | "created_at" | "updated_at">): Promise<Domain> {
    try {
      const now = Date.now();
      const r = this.db
        .prepare(`INSERT INTO domains (project_id, hostname, fallback_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`)
        .run(d.project_id, d.hostname, d.fallback_url, now, now);
      return { ...d, id: Number(r.lastInsertRowid), created_at: now, updated_at: now };
    } catch (e) {
      rethrow(e);
    }
  }

  async getDomain(projectId: number, id: number): Promise<Domain | null> {
    return (this.db.prepare(`SELECT * FROM domains WHERE project_id = ? AND id = ?`).get(projectId, id) as Domain | undefined) ?? null;
  }

  async getDomainByHostname(hostname: string): Promise<Domain | null> {
    return (this.s.domainByHost.get(hostname) as Domain | undefined) ?? null;
  }

  async listDomains(projectId: number): Promise<Domain[]> {
    return this.db.prepare(`SELECT * FROM domains WHERE project_id = ? ORDER BY hostname`).all(projectId) as Domain[];
  }

  async updateDomain(projectId: number, id: number, patch: Partial<Pick<Domain, "hostname" | "fallback_url">>): Promise<Domain | null> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${k} = ?`);
      vals.push(v);
    }
    try {
      this.db
        .prepare(`UPDATE domains SET ${[...sets, "updated_at = ?"].join(", ")} WHERE project_id = ? AND id = ?`)
        .run(...vals, Date.now(), projectId, id);
    } catch (e) {
      rethrow(e);
    }
    return this.getDomain(projectId, id);
  }

  async deleteDomain(projectId: number, id: number): Promise<boolean> {
    return this.db.prepare(`DELETE FROM domains WHERE project_id = ? AND id = ?`).run(projectId, id).changes > 0;
  }

  async countLinksOnDomain(domainId: number): Promise<number> {
    return (this.db.prepare(`SELECT count(*) AS n FROM links WHERE domain_id = ?`).get(domainId) as { n: number }).n;
  }

  async createCampaign(c: Omit<Campaign, "id" | "created_at" | "updated_at">): Promise<Campaign> {
    const now = Date.now();
    try {
      const r = this.db
        .prepare(`INSERT INTO campaigns (project_id, name, utm, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(c.project_id, c.name, JSON.stringify(c.utm), c.notes, now, now);
      return (await this.getCampaign(c.project_id, Number(r.lastInsertRowid)))!;
    } catch (e) {
      rethrow(e);
    }
  }

  async getCampaign(projectId: number, id: number): Promise<Campaign | null> {
    return toCampaign(this.db.prepare(`SELECT * FROM campaigns WHERE project_id = ? AND id = ?`).get(projectId, id) as Row | undefined);
  }

  async getCampaignById(id: number): Promise<Campaign | null> {
    return toCampaign(this.db.prepare(`SELECT * FROM campaigns WHERE id = ?`).get(id) as Row | undefined);
  }

  async listCampaigns(projectId: number): Promise<Campaign[]> {
    return (this.db.prepare(`SELECT * FROM campaigns WHERE project_id = ? ORDER BY id DESC`).all(projectId) as Row[]).map((r) => toCampaign(r)!);
  }

  async updateCampaign(projectId: number, id: number, patch: Partial<Pick<Campaign, "name" | "utm" | "notes">>): Promise<Campaign | null> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${k} = ?`);
      vals.push(k === "utm" ? JSON.stringify(v) : v);
    }
    try {
      this.db
        .prepare(`UPDATE campaigns SET ${[...sets, "updated_at = ?"].join(", ")} WHERE project_id = ? AND id = ?`)
        .run(...vals, Date.now(), projectId, id);
    } catch (e) {
      rethrow(e);
    }
    return this.getCampaign(projectId, id);
  }

  async deleteCampaign(projectId: number, id: number): Promise<boolean> {
    return this.db.prepare(`DELETE FROM campaigns WHERE project_id = ? AND id = ?`).run(projectId, id).changes > 0;
  }

  async createLink(l: NewLink): Promise<Link> {
    const now = Date.now();
    const tx = this.db.transaction(() => {
      const r = this.db
        .prepare(
          `INSERT INTO links (${LINK_COLUMNS}) VALUES (${LINK_COLUMNS.split(",")
            .map(() => "?")
            .join(", ")})`,
        )
        .run(...linkValues(l, (b) => (b ? 1 : 0)), now, now);
      const id = Number(r.lastInsertRowid);
      this.setTags(id, l.tags);
      return id;
    });
    try {
      const id = tx();
      return (await this.getLink(l.project_id, id))!;
    } catch (e) {
      rethrow(e);
    }
  }

  private setTags(linkId: number, tags: string[]) {
    this.db.prepare(`DELETE FROM link_tags WHERE link_id = ?`).run(linkId);
    const ins = this.db.prepare(`INSERT OR IGNORE INTO link_tags (link_id, tag) VALUES (?, ?)`);
    for (const t of tags) ins.run(linkId, t);
  }

  /**
   * Reads links; with a writer thread, in one snapshot with the rollup watermark, so each link's clicks can be counted
   * exactly: the stored counter plus the committed clicks past the watermark (none twice, none missed).
   */
  private links(read: () => Row[]): Link[] {
    const pending = this.clicksPending;
    if (!pending) return read().map((r) => toLink(r)!);
    const [rows, watermark] = this.db.transaction(() => [read(), Number(this.s.watermark.get() ?? 0)] as const).deferred();
    return rows.map((r) => {
      const l = toLink(r)!;
      l.clicks += pending(l.id, watermark);
      return l;
    });
  }

  private link(read: () => Row | undefined): Link | null {
    return (
      this.links(() => {
        const r = read();
        return r ? [r] : [];
      })[0] ?? null
    );
  }

  async getLink(projectId: number, id: number): Promise<Link | null> {
    return this.link(() => this.s.linkById.get(projectId, id) as Row | undefined);
  }

  async getLinkBySlug(domainId: number, slug: string): Promise<Link | null> {
    return this.link(() => this.s.linkBySlug.get(domainId, slug) as Row | undefined);
  }

  async findLinkByTarget(domainId: number, target: string): Promise<Link | null> {
    return this.link(() => this.db.prepare(`${LINK_SELECT} WHERE l.domain_id = ? AND l.target = ? LIMIT 1`).get(domainId, target) as Row | undefined);
  }

  async listLinks(f: LinkFilter): Promise<Link[]> {
    const where = ["l.project_id = ?"];
    const vals: unknown[] = [f.project_id];
    const add = (cond: string, ...v: unknown[]) => (where.push(cond), vals.push(...v));
    if (f.domain_id !== undefined) add("l.domain_id = ?", f.domain_id);
    if (f.tag !== undefined) add("l.id IN (SELECT link_id FROM link_tags WHERE tag = ?)", f.tag);
    if (f.q !== undefined) {
      const like = `%${f.q.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
      add(`(l.slug LIKE ? ESCAPE '\\' OR l.target LIKE ? ESCAPE '\\' OR l.title LIKE ? ESCAPE '\\')`, like, like, like);
    }
    if (f.created_after !== undefined) add("l.created_at >= ?", f.created_after);
    if (f.created_before !== undefined) add("l.created_at < ?", f.created_before);
    if (f.before_id !== undefined) add("l.id < ?", f.before_id);
    if (f.campaign_id !== undefined) add("l.campaign_id = ?", f.campaign_id);
    if (f.targeted) add("(l.rules <> '[]' OR l.allowed_platforms IS NOT NULL)");
    const { where: after, order } = linkOrder(f, (v) => (vals.push(v), "?"));
    if (after) where.push(after);
    return this.links(() => this.db.prepare(`${LINK_SELECT} WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT ?`).all(...vals, f.limit) as Row[]);
  }

  async updateLink(projectId: number, id: number, patch: LinkPatch): Promise<Link | null> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${k} = ?`);
      vals.push(k === "forward_query" ? (v ? 1 : 0) : linkFieldValue(k, v));
    }
    const tx = this.db.transaction(() => {
      const r = this.db
        .prepare(`UPDATE links SET ${[...sets, "updated_at = ?"].join(", ")} WHERE project_id = ? AND id = ?`)
        .run(...vals, Date.now(), projectId, id);
      if (r.changes > 0 && patch.tags) this.setTags(id, patch.tags);
    });
    try {
      tx();
    } catch (e) {
      rethrow(e);
    }
    return this.getLink(projectId, id);
  }

  async deleteLink(projectId: number, id: number): Promise<boolean> {
    return this.db.prepare(`DELETE FROM links WHERE project_id = ? AND id = ?`).run(projectId, id).changes > 0;
  }

  /** bind values of one statement of ROWS_PER_INSERT events (reused: the insert copies them) */
  private readonly manyValues: unknown[] = new Array(ROWS_PER_INSERT * EVENT_COLUMN_COUNT);
  private readonly oneValues: unknown[] = new Array(EVENT_COLUMN_COUNT);

  /** column sets (see columnSets) → their insert */
  private readonly narrowInserts = new Map<number, NarrowInsert>();

  /**
   * The insert for ROWS_PER_INSERT events with the column sets `key` (see columnSets): it sets only the columns used
   * (the rest default to NULL), and binds the shared ones once for all rows; null: past MAX_NARROW_INSERTS, the full
   * insert. Binding a value costs
   * better-sqlite3 several type checks, and a string its conversion to UTF-8. Events leave many columns empty (a click
   * has no data, session or app; a front end's event no link, domain, referrer or rule): measured (appendEvents,
   * 2,600-event transactions), 2.42–2.96 → 2.10–2.22 µs per event of front ends' events, 2.21–2.33 → 2.02–2.13 µs per
   * click. And a batch from one front end repeats its user agent, browser, os, device, ip and app in every event: see
   * docs/performance.md.
   */
  private narrowInsert(key: number): NarrowInsert | null {
    const n = this.narrowInserts.get(key);
    if (n !== undefined) return n;
    const used = key % SHARED;
    const shared = (key - used) / SHARED;
    if (this.narrowInserts.size >= MAX_NARROW_INSERTS) return shared === 0 ? null : this.narrowInsert(used);
    const all = [...Array(EVENT_COLUMN_COUNT).keys()].filter((c) => used & (1 << c));
    const once = all.filter((c) => shared & (1 << c));
    const columns = all.filter((c) => !(shared & (1 << c)));
    const names = all.map((c) => COLUMN_NAMES[c]).join(", ");
    const values = Array(ROWS_PER_INSERT)
      .fill(`(${columns.map(() => "?").join(", ")})`)
      .join(", ");
    // the shared values in a one-row subquery joined to each row (better-sqlite3 binds no numbered parameters, ?N);
    // the rows are inserted in the order of the VALUES list, as a plain multi-row insert's are
    const statement = this.raw.prepare(
      once.length === 0
        ? `INSERT INTO events (${names}) VALUES ${values}`
        : `INSERT INTO events (${names}) SELECT ${all.map((c) => (shared & (1 << c) ? `s.${COLUMN_NAMES[c]}` : `v.column${columns.indexOf(c) + 1}`)).join(", ")}` +
            ` FROM (SELECT ${once.map((c) => `? AS ${COLUMN_NAMES[c]}`).join(", ")}) AS s, (VALUES ${values}) AS v`,
    );
    const insert = { statement, shared: once, columns, values: new Array<unknown>(once.length + columns.length * ROWS_PER_INSERT) };
    this.narrowInserts.set(key, insert);
    return insert;
  }

  private readonly appendTx = (events: EventRow[]): number => {
    const s = this.s;
    let last = 0;
    let i = 0;
    // several rows per statement: a sixth less time per event than one statement each (measured: 4.3 → 3.7 µs). The
    // values go as arguments, not as one array: better-sqlite3 reads an array element by element through V8's generic
    // property lookup, arguments directly (measured: 3.1 → 2.4 µs per event, the real table in WAL mode)
    const all = this.oneValues;
    for (; i + ROWS_PER_INSERT <= events.length; i += ROWS_PER_INSERT) {
      const key = columnSets(events, i, ROWS_PER_INSERT);
      const narrow = key === ALL_COLUMNS ? null : this.narrowInsert(key);
      if (narrow === null) {
        for (let j = 0; j < ROWS_PER_INSERT; j++) eventValues(events[i + j]!, this.manyValues, j * EVENT_COLUMN_COUNT);
        last = Number(s.insertEvents.run(...this.manyValues).lastInsertRowid);
        continue;
      }
      const { shared: once, columns, values } = narrow;
      let k = 0;
      eventValues(events[i]!, all, 0);
      for (let c = 0; c < once.length; c++) values[k++] = all[once[c]!];
      for (let j = 0; j < ROWS_PER_INSERT; j++) {
        if (j > 0) eventValues(events[i + j]!, all, 0);
        for (let c = 0; c < columns.length; c++) values[k++] = all[columns[c]!];
      }
      last = Number(narrow.statement.run(...values).lastInsertRowid);
    }
    for (; i < events.length; i++) {
      eventValues(events[i]!, all, 0);
      last = Number(s.insertEvent.run(...all).lastInsertRowid);
    }
    // how far the writer thread's journal is committed: the mark of the last journaled event in this transaction
    for (let j = events.length - 1; j >= 0; j--) {
      const mark = events[j]!.journal;
      if (mark === undefined) continue;
      s.setJournalMark.run(String(mark));
      break;
    }
    return last;
  };

  /**
   * Moves the journal's committed mark past an event that will never be committed (the database refused it; it is kept
   * in the journal's rejected.ndjson): the next writer thread does not try it again. Never moves the mark back.
   */
  setJournalMark(mark: number): void {
    this.db.transaction(() => {
      const now = this.db.prepare(`SELECT value FROM meta WHERE key = 'journal_mark'`).pluck().get() as string | undefined;
      if (now === undefined || Number(now) < mark) this.s.setJournalMark.run(String(mark));
    })();
  }

  /** The mark of the last journaled event committed (see events/journal.ts); -1 when none ever was. */
  async journalMark(): Promise<number> {
    const v = await this.getMeta("journal_mark");
    return v === null ? -1 : Number(v);
  }

  private appendTxn?: (events: EventRow[]) => number;

  async appendEvents(events: EventRow[]): Promise<number> {
    const id = (this.appendTxn ??= this.db.transaction(this.appendTx))(events);
    this.fullAt = 0;
    return id;
  }

  /** A checkpointer thread copies the WAL into the database file (see checkpointer.ts): this connection leaves it. */
  stopAutocheckpoint(): void {
    this.db.pragma("wal_autocheckpoint = 0");
  }

  /**
   * On the writer thread, between two of its commits: once the write-ahead log has passed walRestartBytes (as the
   * checkpointer thread last measured it: its WalGauge), a PASSIVE checkpoint on this connection. No commit is under way and the checkpointer thread has copied (and synced) all but the last
   * frames, so it copies those few and the next commit starts the log over, without the blocking RESTART (see
   * checkpointer.ts). Nothing happens while a reader still needs the log; the next call tries again.
   */
  checkpointBetweenCommits(): void {
    const gauge = this.walGauge;
    if (gauge === null || Atomics.load(gauge, 0) * this.frameBytes <= this.walRestartBytes) return;
    const [r] = this.db.pragma("wal_checkpoint(PASSIVE)") as CheckpointResult[];
    // all of it copied: the next commit starts the log over (the checkpointer thread measures it again in its next round)
    Atomics.store(gauge, 0, r!.log === r!.checkpointed ? 0 : Math.max(0, r!.log));
  }

  /** The writer thread's commits failed for lack of disk space (it has a connection of its own). */
  noteDiskFull(): void {
    this.fullAt = Date.now();
  }

  /** The writer thread committed: the disk takes writes again. */
  noteWriteSucceeded(): void {
    this.fullAt = 0;
  }

  status(): Record<string, string> {
    return this.fullAt ? { disk: `full: no write has succeeded since ${new Date(this.fullAt).toISOString()}` } : {};
  }

  async scanEvents(afterId: number, uptoId: number | null, limit: number): Promise<StoredEvent[]> {
    const rows = this.db
      .prepare(`SELECT * FROM events WHERE id > ?${uptoId === null ? "" : " AND id <= ?"} ORDER BY id LIMIT ?`)
      .all(...(uptoId === null ? [afterId, limit] : [afterId, uptoId, limit])) as Row[];
    return rows.map(toEvent);
  }

  async rollupState(): Promise<RollupState> {
    const watermark = Number((await this.getMeta("rollup_watermark")) ?? 0);
    const pending = await this.getMeta("rollup_pending");
    if (!pending) return { watermark, pending: null };
    // from:to:chunkSize:format (before the chunk size was recorded: from:to, cut into chunks of 1,000; before the format
    // was: format 1)
    const [from, to, chunkSize = LEGACY_CHUNK_SIZE, format = 1] = pending.split(":").map(Number) as [number, number, number?, number?];
    const done = this.db.prepare(`SELECT chunk FROM rollup_chunks_done ORDER BY chunk`).pluck().all() as number[];
    return { watermark, pending: { from, to, chunkSize, format, done } };
  }

  async beginRollupFlush(from: number, to: number, chunkSize: number): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM rollup_chunks_done`).run();
      this.db
        .prepare(`INSERT INTO meta (key, value) VALUES ('rollup_pending', ?) ON CONFLICT DO UPDATE SET value = excluded.value`)
        .run(`${from}:${to}:${chunkSize}:${ROLLUP_FORMAT}`);
    })();
  }

  private readonly chunkTx = (ops: RollupOp[], chunk: number) => {
    const s = this.s;
    for (const op of ops) {
      if (op.kind === "count") s.upsertRollup.run(op.scope, op.scope_id, op.dim, op.slot, op.bot ? 1 : 0, op.value, op.clicks);
      else {
        const stored = s.getSketch.get(op.scope, op.scope_id, op.hour, op.bot ? 1 : 0) as Buffer | undefined;
        s.putSketch.run(op.scope, op.scope_id, op.hour, op.bot ? 1 : 0, op.merge(stored ?? null));
      }
    }
    s.chunkDone.run(chunk);
  };
  private chunkTxn?: (ops: RollupOp[], chunk: number) => void;

  async applyRollupChunk(ops: RollupOp[], chunk: number): Promise<void> {
    (this.chunkTxn ??= this.db.transaction(this.chunkTx))(ops, chunk);
  }

  async endRollupFlush(to: number, linkClicks: Map<number, number>): Promise<void> {
    this.db.transaction(() => {
      for (const [id, n] of linkClicks) this.s.addLinkClicks.run(n, id);
      this.db.prepare(`DELETE FROM rollup_chunks_done`).run();
      this.db.prepare(`DELETE FROM meta WHERE key = 'rollup_pending'`).run();
      this.db
        .prepare(`INSERT INTO meta (key, value) VALUES ('rollup_watermark', ?) ON CONFLICT DO UPDATE SET value = excluded.value`)
        .run(String(to));
    })();
  }

  async listEvents(f: EventFilter): Promise<StoredEvent[]> {
    const where = ["project_id = ?"];
    const vals: unknown[] = [f.project_id];
    const add = (cond: string, ...v: unknown[]) => (where.push(cond), vals.push(...v));
    if (f.link_id !== undefined) add("link_id = ?", f.link_id);
    if (f.domain_id !== undefined) add("domain_id = ?", f.domain_id);
    if (f.name !== undefined) add("name = ?", f.name);
    if (f.source !== undefined) add("source = ?", f.source);
    if (f.app_id !== undefined) add("app_id = ?", f.app_id);
    if (f.session !== undefined) add("session = ?", f.session);
    if (f.visitor !== undefined) add("visitor = ?", f.visitor);
    if (f.ip !== undefined) add("ip = ?", f.ip);
    if (f.before_id !== undefined) add("id < ?", f.before_id);
    if (f.from !== undefined) add("ts >= ?", f.from);
    if (f.to !== undefined) add("ts < ?", f.to);
    if (f.after_id !== undefined) add("id > ?", f.after_id);
    // Without a time range, app or session to narrow it, read the log in id order and stop at the limit: the planner
    // would otherwise take the (project_id, ts) index and sort every event of the project to return the newest 50
    // (measured: the soak's GET /api/v1/events slowed the whole server as the log grew)
    const scan = f.from === undefined && f.to === undefined && f.app_id === undefined && f.session === undefined ? " NOT INDEXED" : "";
    const rows = this.db
      .prepare(`SELECT * FROM events${scan} WHERE ${where.join(" AND ")} ORDER BY id${f.desc ? " DESC" : ""} LIMIT ?`)
      .all(...vals, f.limit) as Row[];
    return rows.map(toEvent);
  }

  async countEvents(projectId: number): Promise<number> {
    return (this.db.prepare(`SELECT count(*) AS n FROM events WHERE project_id = ?`).get(projectId) as { n: number }).n;
  }

  private rangeArgs(r: StatsRange, dim: string): unknown[] {
    return [r.scope, r.scope_id, dim, r.from, r.to];
  }

  async statsSeries(r: StatsRange): Promise<{ slot: number; clicks: number }[]> {
    const bots = r.includeBots ? "" : " AND bot = 0";
    return this.db
      .prepare(
        `SELECT slot, sum(clicks) AS clicks FROM rollups WHERE scope = ? AND scope_id = ? AND dim = ? AND slot >= ? AND slot < ?${bots} GROUP BY slot ORDER BY slot`,
      )
      .all(...this.rangeArgs(r, "total")) as { slot: number; clicks: number }[];
  }

  async statsBreakdown(r: StatsRange, dim: Dimension, limit: number): Promise<{ value: string; clicks: number }[]> {
    if (!DIMENSIONS.includes(dim)) throw new Error(`unknown dimension ${dim}`);
    const bots = r.includeBots ? "" : " AND bot = 0";
    const [from, to] = breakdownHours(r);
    // the hours' total: a click scope's name, and the empty value (the total less the other values: see ROLLUP_FORMAT)
    const total = `SELECT coalesce(sum(clicks), 0) FROM rollups WHERE scope = ? AND scope_id = ? AND dim = 'total' AND slot >= ? AND slot < ?${bots}`;
    if (dim === "name" && namedByTotal(r.scope)) {
      const n = this.db.prepare(total).pluck().get(r.scope, r.scope_id, from, to) as number;
      return n > 0 ? [{ value: "click", clicks: n }] : [];
    }
    return this.db
      .prepare(
        `WITH v AS (
           SELECT value, sum(clicks) AS clicks FROM rollups
           WHERE scope = ? AND scope_id = ? AND dim = ? AND value <> '' AND slot >= ? AND slot < ?${bots} GROUP BY value
         ), e AS (SELECT (${total}) - (SELECT coalesce(sum(clicks), 0) FROM v) AS clicks)
         SELECT value, clicks FROM v UNION ALL SELECT '', clicks FROM e WHERE clicks > 0
         ORDER BY clicks DESC, value LIMIT ?`,
      )
      .all(r.scope, r.scope_id, dim, from, to, r.scope, r.scope_id, from, to, limit) as { value: string; clicks: number }[];
  }

  async statsSketches(r: StatsRange): Promise<Uint8Array[]> {
    const hourFrom = r.from - (r.from % 3_600_000);
    return this.db
      .prepare(
        `SELECT sketch FROM visitor_sketches WHERE scope = ? AND scope_id = ? AND hour >= ? AND hour < ?${r.includeBots ? "" : " AND bot = 0"}`,
      )
      .pluck()
      .all(r.scope, r.scope_id, hourFrom, r.to) as Uint8Array[];
  }
}
