import pg from "pg";
import { randomUUID } from "node:crypto";
import { PG_MIGRATIONS } from "./migrations.js";
import { LINK_COLUMNS, linkFieldValue, linkOrder, linkValues, toCampaign, toLink, type Row } from "../rows.js";
import { scalarArray, textArray, textValue } from "./arrays.js";
import { ensurePartitions } from "./partitions.js";
import { PgNotifyChannel, RedisChannel, type ChangeChannel } from "./changes.js";
import {
  breakdownHours,
  LEGACY_CHUNK_SIZE,
  namedByTotal,
  ROLLUP_FORMAT,
  DIMENSIONS,
  StoreUnavailable,
  UniqueViolation,
  WriterRetired,
  type OrphanWriter,
  type ApiKey,
  type Dimension,
  type Domain,
  type EventBatch,
  type EventFilter,
  type EventRow,
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
  type RollupOp,
  type RollupState,
  type StatsRange,
  type Store,
  type StoredEvent,
  type User,
} from "../port.js";

export interface PgOptions {
  url: string;
  poolSize?: number;
  /** When set, cache invalidation between instances goes over Redis pub/sub instead of LISTEN/NOTIFY. */
  redisUrl?: string;
  /** Listen for other instances' changes (the server does; one-shot CLI commands need not). */
  watchChanges?: boolean;
}

// bigint (count, ids, ms timestamps) and numeric (sum) as JS numbers: every value we keep fits in 2^53
const parseNumber = (v: string) => Number(v);
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20 || oid === 1700 ? parseNumber : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "57P01",
  "57P02",
  "57P03",
  "53300",
]);

export function isConnectionError(e: unknown): boolean {
  if (!e || typeof e !== "object") return false;
  const code = String((e as { code?: unknown }).code ?? "");
  if (CONNECTION_CODES.has(code) || code.startsWith("08")) return true;
  const msg = String((e as { message?: unknown }).message ?? "");
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Connection ended/i.test(
    msg,
  );
}

export function mapError(e: unknown): never {
  if (e instanceof StoreUnavailable || e instanceof UniqueViolation) throw e;
  if (e && typeof e === "object" && (e as { code?: unknown }).code === "23505") throw new UniqueViolation((e as Error).message);
  if (isConnectionError(e)) throw new StoreUnavailable(`the database is unreachable (${(e as Error).message})`);
  throw e;
}

/**
 * A statement the writer runs over and over with the same text: sent with a name, so each connection parses and plans
 * it once and then only binds and executes it with a generic plan (measured on the group commit's statement, commits of
 * 50 events: PostgreSQL's CPU 0.95 → 0.52 ms per commit, the round trip 1.5 → 0.85 ms; see docs/performance.md).
 */
export interface Prepared {
  name: string;
  text: string;
}

const preparedNames = new Set<string>();
const prepared = (name: string, text: string): Prepared => {
  // node-postgres refuses a name sent with another text only when it is run: two statements must not share one
  if (preparedNames.has(name)) throw new Error(`two prepared statements are named ${name}`);
  preparedNames.add(name);
  return { name: `clicktrail_${name}`, text };
};

/**
 * A prepared statement the connection no longer has (26000: deallocated, as a pooler that resets sessions does) or can
 * no longer run as prepared (0A000: "cached plan must not change result type", after a schema change). pool.query
 * closes a connection after any error; a transaction's connection is closed after these.
 */
function brokenPrepared(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === "26000" || code === "0A000";
}

/** A query's rows on the pool (`rowMode` "array": each row as an array), its errors mapped as mapError does. */
export async function pgRows<T = Row>(pool: pg.Pool, sql: string | Prepared, params: unknown[] = [], rowMode?: "array"): Promise<T[]> {
  try {
    const config: pg.QueryConfig = typeof sql === "string" ? { text: sql, values: params } : { name: sql.name, text: sql.text, values: params };
    const res = rowMode ? await pool.query({ ...config, rowMode }) : await pool.query(config);
    return res.rows as T[];
  } catch (e) {
    mapError(e);
  }
}

/** A writer whose heartbeat is older than this is adopted by another instance. */
const ORPHAN_AFTER_MS = 60_000;

const EVENT_COLUMNS = [
  ["project_id", "bigint"],
  ["ts", "bigint"],
  ["client_ts", "bigint"],
  ["name", "text"],
  ["visitor", "text"],
  ["session", "text"],
  ["link_id", "bigint"],
  ["domain_id", "bigint"],
  ["campaign_id", "bigint"],
  ["source", "text"],
  ["channel", "text"],
  ["platform", "text"],
  ["ip", "text"],
  ["ua", "text"],
  ["referrer", "text"],
  ["browser", "text"],
  ["os", "text"],
  ["device", "text"],
  ["is_bot", "boolean"],
  ["country", "text"],
  ["rule", "text"],
  ["data", "text"],
  ["app_id", "bigint"],
] as const satisfies readonly (readonly [keyof EventRow, string])[];

const EVENT_NAMES = EVENT_COLUMNS.map(([c]) => c).join(", ");
const C = EVENT_COLUMNS.length;
const N = C + 2;
/** the one column always sent whole (see APPEND_SQL: the rows are as many as its array's elements) */
const ALWAYS_WHOLE = "ts";

/**
 * One statement, one round trip, no explicit transaction: checks that this writer still owns its row (FOR KEY SHARE:
 * an instance adopting the writer holds it FOR UPDATE), claims the batch ids, appends the events of the batches whose
 * id was new. `owned` 0: the writer was adopted, nothing was written. `fresh`: how many batch ids were new.
 * $1 the batch ids, then the event columns as arrays, then each event's batch as its position in $1 (from 1), then the
 * writer, then a value per column (and one for the batch position) that every event of the commit shares: such a
 * column's array is empty (unnest pads it with NULLs) and the value fills it in. A commit's events share many (their
 * project, name, source, domain, the columns they leave empty), and an array of a hundred equal elements costs node to
 * write and PostgreSQL to parse. (Each event's batch as a position rather than the batch's id: 2 or 3 bytes of the
 * statement per event instead of 37, and an integer to read instead of a uuid. Measured alone, 300 commits of 20 batches
 * of 50 events, builds alternating: node 1.41–1.89 → 1.39–1.56 µs per event, PostgreSQL 4.97–5.53 → 4.93–5.20.)
 */
const APPEND_SQL = prepared(
  "append",
  `
WITH w AS (
  SELECT id FROM writers WHERE id = $${N + 1} FOR KEY SHARE
), b AS (
  INSERT INTO writer_batches (id, created_at)
  SELECT x, (extract(epoch FROM now()) * 1000)::bigint FROM unnest($1::uuid[]) AS x WHERE EXISTS (SELECT 1 FROM w)
  ON CONFLICT DO NOTHING RETURNING id
), e AS (
  INSERT INTO events (${EVENT_NAMES}, writer)
  SELECT ${EVENT_COLUMNS.map(([c, t], i) => `coalesce(t.${c}, $${N + 2 + i}::${t})`).join(", ")}, $${N + 1}::integer
    FROM unnest(${EVENT_COLUMNS.map(([, t], i) => `$${i + 2}::${t}[]`).join(", ")}, $${N}::integer[]) AS t(${EVENT_NAMES}, batch)
  WHERE ($1::uuid[])[coalesce(t.batch, $${N + 2 + C}::integer)] IN (SELECT id FROM b) RETURNING id
)
SELECT (SELECT count(*) FROM w) AS owned, (SELECT count(*) FROM b) AS fresh, (SELECT max(id) FROM e) AS last`,
);

const ROLLUP_SQL = prepared(
  "rollup",
  `
INSERT INTO rollups (scope, scope_id, dim, slot, bot, value, clicks)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::boolean[], $6::text[], $7::bigint[])
ON CONFLICT (scope, scope_id, dim, slot, bot, value) DO UPDATE SET clicks = rollups.clicks + EXCLUDED.clicks`,
);

/** which of ROLLUP_SQL's arrays are text[] (the others: bigint[] and boolean[]) */
const ROLLUP_TEXT = [true, false, true, false, false, true, false];

const SKETCH_LOCK_SQL = prepared(
  "sketch_lock",
  `
SELECT s.scope, s.scope_id, s.hour, s.bot, s.sketch FROM visitor_sketches s
JOIN unnest($1::text[], $2::bigint[], $3::bigint[], $4::boolean[]) AS k(scope, scope_id, hour, bot)
  ON s.scope = k.scope AND s.scope_id = k.scope_id AND s.hour = k.hour AND s.bot = k.bot
ORDER BY s.scope, s.scope_id, s.hour, s.bot
FOR UPDATE OF s`,
);

const SKETCH_PUT_SQL = prepared(
  "sketch_put",
  `
INSERT INTO visitor_sketches (scope, scope_id, hour, bot, sketch)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::boolean[], $5::bytea[])
ON CONFLICT (scope, scope_id, hour, bot) DO UPDATE SET sketch = EXCLUDED.sketch`,
);

const TOUCH_SESSIONS_SQL = prepared(
  "touch_sessions",
  `UPDATE sessions_ingest s SET last_event_at = GREATEST(s.last_event_at, u.t), event_count = s.event_count + u.n
   FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(token, t, n) WHERE s.token = u.token`,
);

/**
 * A link with its domain's hostname and its click counter (link_counts, migration 11), the counter read for each link
 * returned: a join would leave the plan of every listing to the table statistics (measured with stale ones: the newest
 * 51 of 100,000 links in 186 ms, a hash join of both tables, against 0.6 ms).
 */
const LINK_SELECT = `SELECT l.*, d.hostname, (SELECT c.clicks FROM link_counts c WHERE c.link_id = l.id) AS clicks
  FROM links l JOIN domains d ON d.id = l.domain_id`;
/** A listing sorted by clicks joins the counters, on the project too, so the planner walks their sort index. */
const LINK_SELECT_BY_CLICKS = `SELECT l.*, d.hostname, c.clicks FROM links l JOIN domains d ON d.id = l.domain_id
  JOIN link_counts c ON c.link_id = l.id AND c.project_id = l.project_id`;

/**
 * A link by id and by slug: planned once per connection (prepared), not per call. Planning a link read took about
 * 0.19 ms of PostgreSQL's time, four times its execution (measured while 10,000 links were created and 3,400 of them
 * filled a redirect cache).
 */
const LINK_BY_ID_SQL = prepared("link_by_id", `${LINK_SELECT} WHERE l.project_id = $1 AND l.id = $2`);
const LINK_BY_SLUG_SQL = prepared("link_by_slug", `${LINK_SELECT} WHERE l.domain_id = $1 AND l.slug = $2`);
/** (every link created through the API names its domain by hostname) */
const DOMAIN_BY_HOSTNAME_SQL = prepared("domain_by_hostname", `SELECT * FROM domains WHERE hostname = $1`);

/** (the links row is locked, so claims of one link follow each other; the counter only grows) */
const CLAIM_CLICK_SQL = prepared(
  "claim_click",
  `UPDATE links l SET claimed = GREATEST(l.claimed, c.clicks) + 1 FROM link_counts c
   WHERE l.id = $1 AND c.link_id = l.id AND (l.max_clicks IS NULL OR GREATEST(l.claimed, c.clicks) < l.max_clicks) RETURNING l.id`,
);

/**
 * The PostgreSQL adapter: the same data as SQLite, for several instances on one database. Rollups are kept in each
 * batch's own transaction (instances write concurrently, so no single watermark could describe them), `max_clicks`
 * is granted by an atomic row update, and other instances' changes arrive over LISTEN/NOTIFY or Redis.
 */
export class PgStore implements Store {
  readonly engine = "postgres" as const;
  readonly pool: pg.Pool;
  /** this instance's writer row (registered on first use); a view made by claimOrphanWriter has the orphan's */
  protected writerId: number | null = null;
  /** true in an adopter's view of an orphan: the adopter holds the writer's row lock itself */
  protected adopted = false;
  /** in an adopter's view: the connection of the adoption's transaction, where its writes go */
  protected held: pg.PoolClient | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  readonly instance = randomUUID();
  private readonly channel: ChangeChannel | null;
  private partitionTimer: NodeJS.Timeout | null = null;
  /** Redis and the database were both unreachable: caches were kept, and are dropped once the database answers */
  private missedChanges = false;
  /** one reachability probe at a time (an unreachable database takes connectionTimeoutMillis to fail) */
  private probing: Promise<boolean> | null = null;

  constructor(readonly opts: PgOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      // fail fast while the database is away: the caller answers 503 (or spools the events) instead of hanging
      connectionTimeoutMillis: 2000,
      idleTimeoutMillis: 30_000,
      types,
    });
    // an idle connection that dies (database restarted) must not take the process down; the next query reconnects
    this.pool.on("error", () => {});
    this.channel =
      opts.watchChanges === false
        ? null
        : opts.redisUrl
          ? new RedisChannel(opts.redisUrl, this.instance)
          : new PgNotifyChannel(opts.url, this.pool, this.instance);
  }

  private q<T = Row>(sql: string | Prepared, params: unknown[] = []): Promise<T[]> {
    return pgRows<T>(this.pool, sql, params);
  }

  private async one<T = Row>(sql: string | Prepared, params: unknown[] = []): Promise<T | undefined> {
    return (await this.q<T>(sql, params))[0];
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (e) {
      mapError(e);
    }
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    // an adopter's view: everything happens in the adoption's own transaction (which holds the orphan's row lock),
    // each step in a savepoint
    if (this.held) return this.within(this.held, ["SAVEPOINT step", "RELEASE SAVEPOINT step", "ROLLBACK TO SAVEPOINT step"], fn);
    const client = await this.connect();
    let broken = false;
    try {
      return await this.within(client, ["BEGIN", "COMMIT", "ROLLBACK"], fn);
    } catch (e) {
      broken = brokenPrepared(e);
      throw e;
    } finally {
      // a connection whose prepared statement cannot run any more is closed, so the next transaction prepares afresh
      client.release(broken);
    }
  }

  private async within<T>(c: pg.PoolClient, [begin, commit, rollback]: string[], fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      await c.query(begin!);
      const r = await fn(c);
      await c.query(commit!);
      return r;
    } catch (e) {
      await c.query(rollback!).catch(() => {});
      mapError(e);
    }
  }

  /**
   * Tells the other instances (after a committed change) to drop their caches. Changes in quick succession (a bulk
   * import) share messages: while one is on its way, the next is sent once it arrives, covering every change since.
   */
  private async changed() {
    if (!this.channel) return;
    if (this.publishing) {
      this.publishAgain = true;
      return this.publishing;
    }
    this.publishing = (async () => {
      do {
        this.publishAgain = false;
        await this.channel!.publish().catch(() => {});
      } while (this.publishAgain);
    })().finally(() => (this.publishing = null));
    return this.publishing;
  }
  private publishing: Promise<void> | null = null;
  private publishAgain = false;

  async migrate(): Promise<number> {
    const client = await this.connect();
    try {
      // one instance migrates at a time; the others wait here and then find nothing left to do
      await client.query(`SELECT pg_advisory_lock(hashtext('clicktrail:migrate'))`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`);
      const done = new Set((await client.query(`SELECT id FROM schema_migrations`)).rows.map((r) => r.id as number));
      let applied = 0;
      for (const m of PG_MIGRATIONS) {
        if (done.has(m.id)) continue;
        await client.query("BEGIN");
        try {
          await client.query(m.sql);
          await client.query(`INSERT INTO schema_migrations (id, name, applied_at) VALUES ($1, $2, $3)`, [m.id, m.name, Date.now()]);
          await client.query("COMMIT");
        } catch (e) {
          await client.query("ROLLBACK").catch(() => {});
          throw e;
        }
        applied++;
      }
      await ensurePartitions(client, Date.now());
      return applied;
    } catch (e) {
      mapError(e);
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('clicktrail:migrate'))`).catch(() => {});
      client.release();
    }
  }

  /** Upkeep: next months' partitions every 6 hours (start-up did it already) and this writer's heartbeat. */
  startMaintenance(onError: (e: unknown) => void) {
    this.partitionTimer ??= setInterval(() => void this.maintain().catch(onError), 6 * 3_600_000).unref();
    this.startHeartbeat();
  }

  /** This writer's heartbeat (the writer thread's store beats for the instance's writer, which it registers). */
  startHeartbeat() {
    // a writer that stops beating for ORPHAN_AFTER_MS is adopted by another instance
    this.heartbeatTimer ??= setInterval(() => {
      if (this.writerId === null) return;
      this.q(`UPDATE writers SET heartbeat_at = $2 WHERE id = $1`, [this.writerId, Date.now()]).catch(() => {});
    }, 10_000).unref();
  }

  async maintain(): Promise<void> {
    const c = await this.connect();
    try {
      await c.query(`SELECT pg_advisory_lock(hashtext('clicktrail:migrate'))`);
      await ensurePartitions(c, Date.now());
      // batch ids only guard spool replays; a month is far longer than any outage an instance rides out
      await c.query(`DELETE FROM writer_batches WHERE created_at < $1`, [Date.now() - 30 * 86_400_000]);
    } finally {
      await c.query(`SELECT pg_advisory_unlock(hashtext('clicktrail:migrate'))`).catch(() => {});
      c.release();
    }
  }

  async close(): Promise<void> {
    if (this.partitionTimer) clearInterval(this.partitionTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.channel?.close();
    await this.pool.end().catch(() => {});
  }

  async externalChange(): Promise<boolean> {
    if (!this.channel) return false;
    const changed = this.channel.changed();
    if (this.channel.up() || this.channel.kind === "postgres") {
      // (LISTEN/NOTIFY is down only when the database is unreachable from here: its caches are kept, see changes.ts)
      if (!this.missedChanges) return changed;
      this.missedChanges = false;
      return true;
    }
    // Redis is down, so changes may be missed: caches are bypassed and reads go to the database. Unless the database
    // cannot be reached either: then dropping the caches would only turn cached links' redirects into 503s, while they
    // can be served and their clicks spooled. They are kept until the database answers, and dropped then.
    const reachable = await (this.probing ??= this.ping()
      .then(
        () => true,
        () => false,
      )
      .finally(() => (this.probing = null)));
    this.missedChanges = !reachable;
    return reachable;
  }

  status(): Record<string, string> {
    if (!this.channel) return {};
    return this.channel.kind === "redis" ? { redis: this.channel.up() ? "up" : "down" } : { listener: this.channel.up() ? "up" : "down" };
  }

  async ping(): Promise<void> {
    await this.q(`SELECT 1`);
  }

  async getMeta(key: string): Promise<string | null> {
    return ((await this.one(`SELECT value FROM meta WHERE key = $1`, [key]))?.value as string) ?? null;
  }

  async setMetaIfAbsent(key: string, value: string): Promise<string> {
    await this.q(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [key, value]);
    return (await this.getMeta(key))!;
  }

  async createProject(name: string): Promise<Project> {
    return (await this.one<Project>(`INSERT INTO projects (name, created_at) VALUES ($1, $2) RETURNING *`, [name, Date.now()]))!;
  }

  async getProject(idOrName: number | string): Promise<Project | null> {
    const col = typeof idOrName === "number" ? "id" : "name";
    return (await this.one<Project>(`SELECT * FROM projects WHERE ${col} = $1`, [idOrName])) ?? null;
  }

  async listProjects(): Promise<Project[]> {
    return this.q<Project>(`SELECT * FROM projects ORDER BY id`);
  }

  async createUser(email: string, passwordHash: string): Promise<User> {
    return (await this.one<User>(`INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) RETURNING *`, [
      email,
      passwordHash,
      Date.now(),
    ]))!;
  }

  async getUserByEmail(email: string): Promise<User | null> {
    return (await this.one<User>(`SELECT * FROM users WHERE lower(email) = lower($1)`, [email])) ?? null;
  }

  async getUser(id: number): Promise<User | null> {
    return (await this.one<User>(`SELECT * FROM users WHERE id = $1`, [id])) ?? null;
  }

  async listMemberships(userId: number): Promise<Membership[]> {
    return this.q<Membership>(
      `SELECT m.project_id, p.name, m.role FROM memberships m JOIN projects p ON p.id = m.project_id WHERE m.user_id = $1 ORDER BY p.id`,
      [userId],
    );
  }

  async createTrackingKey(k: Omit<TrackingKey, "id" | "created_at" | "revoked_at">): Promise<TrackingKey> {
    const r = await this.one<TrackingKey>(
      `INSERT INTO tracking_keys (project_id, kid, kind, secret, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      [k.project_id, k.kid, k.kind, k.secret, Date.now()],
    );
    await this.changed();
    return r!;
  }

  async listTrackingKeys(projectId: number): Promise<TrackingKey[]> {
    return this.q<TrackingKey>(`SELECT * FROM tracking_keys WHERE project_id = $1 ORDER BY id`, [projectId]);
  }

  async activeTrackingKeys(): Promise<TrackingKey[]> {
    return this.q<TrackingKey>(`SELECT * FROM tracking_keys WHERE revoked_at IS NULL ORDER BY id DESC`);
  }

  async revokeTrackingKey(projectId: number, id: number): Promise<boolean> {
    const r = await this.q(`UPDATE tracking_keys SET revoked_at = $1 WHERE project_id = $2 AND id = $3 AND revoked_at IS NULL RETURNING id`, [
      Date.now(),
      projectId,
      id,
    ]);
    if (r.length) await this.changed();
    return r.length > 0;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.q(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value]);
  }

  async createApp(a: Omit<App, "id" | "created_at" | "disabled_at">): Promise<App> {
    return (await this.one<App>(`INSERT INTO apps (project_id, name, key, idle_timeout_ms, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *`, [
      a.project_id,
      a.name,
      a.key,
      a.idle_timeout_ms,
      Date.now(),
    ]))!;
  }

  async getApp(projectId: number, id: number): Promise<App | null> {
    return (await this.one<App>(`SELECT * FROM apps WHERE project_id = $1 AND id = $2`, [projectId, id])) ?? null;
  }

  async getAppByKey(key: string): Promise<App | null> {
    return (await this.one<App>(`SELECT * FROM apps WHERE key = $1`, [key])) ?? null;
  }

  async listApps(projectId: number): Promise<App[]> {
    return this.q<App>(`SELECT * FROM apps WHERE project_id = $1 ORDER BY id`, [projectId]);
  }

  async disableApp(projectId: number, id: number, disabled: boolean): Promise<App | null> {
    const r = await this.one<App>(`UPDATE apps SET disabled_at = $1 WHERE project_id = $2 AND id = $3 RETURNING *`, [
      disabled ? Date.now() : null,
      projectId,
      id,
    ]);
    if (r) await this.changed();
    return r ?? null;
  }

  async createIngestSession(x: Omit<IngestSession, "id" | "stopped_at" | "stop_reason" | "event_count">): Promise<IngestSession> {
    return (await this.one<IngestSession>(
      `INSERT INTO sessions_ingest (project_id, app_id, token, visitor, started_at, client_started_at, last_event_at, ip, ua)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
      [x.project_id, x.app_id, x.token, x.visitor, x.started_at, x.client_started_at, x.last_event_at, x.ip, x.ua],
    ))!;
  }

  async getIngestSession(token: string): Promise<IngestSession | null> {
    return (await this.one<IngestSession>(`SELECT * FROM sessions_ingest WHERE token = $1`, [token])) ?? null;
  }

  async stopIngestSession(token: string, at: number, reason: string): Promise<boolean> {
    const r = await this.q(`UPDATE sessions_ingest SET stopped_at = $1, stop_reason = $2 WHERE token = $3 AND stopped_at IS NULL RETURNING id`, [
      at,
      reason,
      token,
    ]);
    return r.length > 0;
  }

  async touchIngestSessions(updates: { token: string; last_event_at: number; events: number }[]): Promise<void> {
    if (!updates.length) return;
    await this.q(TOUCH_SESSIONS_SQL, [updates.map((u) => u.token), updates.map((u) => u.last_event_at), updates.map((u) => u.events)]);
  }

  async listIngestSessions(f: SessionFilter): Promise<IngestSession[]> {
    const vals: unknown[] = [f.project_id];
    const where = ["project_id = $1"];
    const p = (v: unknown) => (vals.push(v), `$${vals.length}`);
    if (f.app_id !== undefined) where.push(`app_id = ${p(f.app_id)}`);
    if (f.visitor !== undefined) where.push(`visitor = ${p(f.visitor)}`);
    if (f.from !== undefined) where.push(`started_at >= ${p(f.from)}`);
    if (f.to !== undefined) where.push(`started_at < ${p(f.to)}`);
    if (f.before_id !== undefined) where.push(`id < ${p(f.before_id)}`);
    return this.q<IngestSession>(`SELECT * FROM sessions_ingest WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ${p(f.limit)}`, vals);
  }

  async createSession(x: Session): Promise<void> {
    await this.q(`INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`, [
      x.id_hash,
      x.user_id,
      x.csrf,
      x.created_at,
      x.expires_at,
    ]);
    await this.q(`DELETE FROM sessions WHERE expires_at < $1`, [x.created_at]);
  }

  async getSession(idHash: string, now: number): Promise<Session | null> {
    return (await this.one<Session>(`SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2`, [idHash, now])) ?? null;
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.q(`DELETE FROM sessions WHERE id_hash = $1`, [idHash]);
  }

  async addMember(userId: number, projectId: number, role: string): Promise<void> {
    await this.q(
      `INSERT INTO memberships (user_id, project_id, role) VALUES ($1, $2, $3) ON CONFLICT (user_id, project_id) DO UPDATE SET role = EXCLUDED.role`,
      [userId, projectId, role],
    );
  }

  async createApiKey(k: Omit<ApiKey, "id" | "created_at" | "revoked_at">): Promise<ApiKey> {
    const r = await this.one<ApiKey>(
      `INSERT INTO api_keys (project_id, name, prefix, hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [k.project_id, k.name, k.prefix, k.hash, JSON.stringify(k.scopes), Date.now()],
    );
    await this.changed();
    return r!;
  }

  async getApiKeyByHash(hash: string): Promise<ApiKey | null> {
    return (await this.one<ApiKey>(`SELECT * FROM api_keys WHERE hash = $1`, [hash])) ?? null;
  }

  async listApiKeys(projectId: number): Promise<ApiKey[]> {
    return this.q<ApiKey>(`SELECT * FROM api_keys WHERE project_id = $1 ORDER BY id`, [projectId]);
  }

  async revokeApiKey(projectId: number, id: number): Promise<boolean> {
    const r = await this.q(`UPDATE api_keys SET revoked_at = $1 WHERE project_id = $2 AND id = $3 AND revoked_at IS NULL RETURNING id`, [
      Date.now(),
      projectId,
      id,
    ]);
    if (r.length) await this.changed();
    return r.length > 0;
  }

  async countApiKeys(): Promise<number> {
    return ((await this.one(`SELECT count(*) AS n FROM api_keys`))!.n as number) ?? 0;
  }

  async createDomain(d: Omit<Domain, "id" | "created_at" | "updated_at">): Promise<Domain> {
    const now = Date.now();
    const r = await this.one<Domain>(
      `INSERT INTO domains (project_id, hostname, fallback_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING *`,
      [d.project_id, d.hostname, d.fallback_url, now],
    );
    await this.changed();
    return r!;
  }

  async getDomain(projectId: number, id: number): Promise<Domain | null> {
    return (await this.one<Domain>(`SELECT * FROM domains WHERE project_id = $1 AND id = $2`, [projectId, id])) ?? null;
  }

  async getDomainByHostname(hostname: string): Promise<Domain | null> {
    return (await this.one<Domain>(DOMAIN_BY_HOSTNAME_SQL, [hostname])) ?? null;
  }

  async listDomains(projectId: number): Promise<Domain[]> {
    return this.q<Domain>(`SELECT * FROM domains WHERE project_id = $1 ORDER BY hostname COLLATE "C"`, [projectId]);
  }

  async updateDomain(projectId: number, id: number, patch: Partial<Pick<Domain, "hostname" | "fallback_url">>): Promise<Domain | null> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      vals.push(v);
      sets.push(`${k} = $${vals.length}`);
    }
    vals.push(Date.now(), projectId, id);
    const n = vals.length;
    const r = await this.one<Domain>(
      `UPDATE domains SET ${[...sets, `updated_at = $${n - 2}`].join(", ")} WHERE project_id = $${n - 1} AND id = $${n} RETURNING *`,
      vals,
    );
    if (r) await this.changed();
    return r ?? null;
  }

  async deleteDomain(projectId: number, id: number): Promise<boolean> {
    const r = await this.q(`DELETE FROM domains WHERE project_id = $1 AND id = $2 RETURNING id`, [projectId, id]);
    if (r.length) await this.changed();
    return r.length > 0;
  }

  async countLinksOnDomain(domainId: number): Promise<number> {
    return (await this.one(`SELECT count(*) AS n FROM links WHERE domain_id = $1`, [domainId]))!.n as number;
  }

  async createCampaign(c: Omit<Campaign, "id" | "created_at" | "updated_at">): Promise<Campaign> {
    const now = Date.now();
    const r = await this.one(
      `INSERT INTO campaigns (project_id, name, utm, notes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING *`,
      [c.project_id, c.name, JSON.stringify(c.utm), c.notes, now],
    );
    return toCampaign(r)!;
  }

  async getCampaign(projectId: number, id: number): Promise<Campaign | null> {
    return toCampaign(await this.one(`SELECT * FROM campaigns WHERE project_id = $1 AND id = $2`, [projectId, id]));
  }

  async getCampaignById(id: number): Promise<Campaign | null> {
    return toCampaign(await this.one(`SELECT * FROM campaigns WHERE id = $1`, [id]));
  }

  async listCampaigns(projectId: number): Promise<Campaign[]> {
    return (await this.q(`SELECT * FROM campaigns WHERE project_id = $1 ORDER BY id DESC`, [projectId])).map((r) => toCampaign(r)!);
  }

  async updateCampaign(projectId: number, id: number, patch: Partial<Pick<Campaign, "name" | "utm" | "notes">>): Promise<Campaign | null> {
    const vals: unknown[] = [];
    const sets: string[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      vals.push(k === "utm" ? JSON.stringify(v) : v);
      sets.push(`${k} = $${vals.length}`);
    }
    vals.push(Date.now(), projectId, id);
    const n = vals.length;
    const r = await this.one(
      `UPDATE campaigns SET ${[...sets, `updated_at = $${n - 2}`].join(", ")} WHERE project_id = $${n - 1} AND id = $${n} RETURNING *`,
      vals,
    );
    // links carry their campaign's UTM parameters: other instances' caches must drop them
    if (r) await this.changed();
    return toCampaign(r);
  }

  async deleteCampaign(projectId: number, id: number): Promise<boolean> {
    const r = await this.q(`DELETE FROM campaigns WHERE project_id = $1 AND id = $2 RETURNING id`, [projectId, id]);
    if (r.length) await this.changed();
    return r.length > 0;
  }

  async createLink(l: NewLink): Promise<Link> {
    const id = await this.tx(async (c) => {
      const now = Date.now();
      const r = await c.query(
        `INSERT INTO links (${LINK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id`,
        [...linkValues(l, (b) => b), now],
      );
      const id = r.rows[0].id as number;
      await this.setTags(c, id, l.tags, true);
      return id;
    });
    await this.changed();
    return (await this.getLink(l.project_id, id))!;
  }

  /** `fresh`: a link just inserted, with no tags to remove */
  private async setTags(c: pg.PoolClient, linkId: number, tags: string[], fresh = false) {
    if (!fresh) await c.query(`DELETE FROM link_tags WHERE link_id = $1`, [linkId]);
    if (tags.length)
      await c.query(`INSERT INTO link_tags (link_id, tag) SELECT $1, t FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING`, [linkId, tags]);
  }

  async getLink(projectId: number, id: number): Promise<Link | null> {
    return toLink(await this.one(LINK_BY_ID_SQL, [projectId, id]));
  }

  async getLinkBySlug(domainId: number, slug: string): Promise<Link | null> {
    return toLink(await this.one(LINK_BY_SLUG_SQL, [domainId, slug]));
  }

  async findLinkByTarget(domainId: number, target: string): Promise<Link | null> {
    return toLink(await this.one(`${LINK_SELECT} WHERE l.domain_id = $1 AND l.target = $2 ORDER BY l.id LIMIT 1`, [domainId, target]));
  }

  async listLinks(f: LinkFilter): Promise<Link[]> {
    const vals: unknown[] = [f.project_id];
    const where = ["l.project_id = $1"];
    const p = (v: unknown) => (vals.push(v), `$${vals.length}`);
    if (f.domain_id !== undefined) where.push(`l.domain_id = ${p(f.domain_id)}`);
    if (f.tag !== undefined) where.push(`l.id IN (SELECT link_id FROM link_tags WHERE tag = ${p(f.tag)})`);
    if (f.q !== undefined) {
      const like = p(`%${f.q.replace(/[\\%_]/g, (c) => "\\" + c)}%`);
      // the expression of the trigram index links_search (migration 3)
      where.push(`(l.slug || ' ' || l.target || ' ' || coalesce(l.title, '')) ILIKE ${like}`);
    }
    if (f.created_after !== undefined) where.push(`l.created_at >= ${p(f.created_after)}`);
    if (f.created_before !== undefined) where.push(`l.created_at < ${p(f.created_before)}`);
    if (f.before_id !== undefined) where.push(`l.id < ${p(f.before_id)}`);
    if (f.campaign_id !== undefined) where.push(`l.campaign_id = ${p(f.campaign_id)}`);
    if (f.targeted) where.push(`(l.rules <> '[]'::jsonb OR l.allowed_platforms IS NOT NULL)`);
    const { where: after, order } = linkOrder(f, p, { col: "c.clicks", id: "c.link_id" });
    if (after) where.push(after);
    const select = f.sort?.endsWith("clicks") ? LINK_SELECT_BY_CLICKS : LINK_SELECT;
    const rows = await this.q(`${select} WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT ${p(f.limit)}`, vals);
    return rows.map((r) => toLink(r)!);
  }

  async updateLink(projectId: number, id: number, patch: LinkPatch): Promise<Link | null> {
    const vals: unknown[] = [];
    const sets: string[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      vals.push(linkFieldValue(k, v));
      sets.push(`${k} = $${vals.length}`);
    }
    vals.push(Date.now(), projectId, id);
    const n = vals.length;
    const found = await this.tx(async (c) => {
      const r = await c.query(
        `UPDATE links SET ${[...sets, `updated_at = $${n - 2}`].join(", ")} WHERE project_id = $${n - 1} AND id = $${n} RETURNING id`,
        vals,
      );
      if (r.rowCount && patch.tags) await this.setTags(c, id, patch.tags);
      return (r.rowCount ?? 0) > 0;
    });
    if (found) await this.changed();
    return this.getLink(projectId, id);
  }

  async deleteLink(projectId: number, id: number): Promise<boolean> {
    const r = await this.q(`DELETE FROM links WHERE project_id = $1 AND id = $2 RETURNING id`, [projectId, id]);
    if (r.length) await this.changed();
    return r.length > 0;
  }

  async claimClick(linkId: number): Promise<boolean> {
    const r = await this.q(CLAIM_CLICK_SQL, [linkId]);
    return r.length > 0;
  }

  /** This instance's writer id, registering it on first use with a watermark past every event id given out so far. */
  private async writer(): Promise<number> {
    if (this.writerId !== null) return this.writerId;
    const now = Date.now();
    const r = await this.one<{ id: number }>(
      `INSERT INTO writers (instance, started_at, heartbeat_at, watermark)
       SELECT $1, $2, $2, CASE WHEN is_called THEN last_value ELSE 0 END FROM events_id_seq RETURNING id`,
      [this.instance, now],
    );
    return (this.writerId = r!.id);
  }

  /** Another instance adopted this writer (we were cut off too long): start over as a new writer. */
  private retired(): never {
    this.writerId = null;
    throw new WriterRetired("this instance's writer was adopted by another instance; its rollups are rebuilt as a new writer");
  }

  async appendEvents(events: EventRow[]): Promise<number> {
    for (;;) {
      try {
        return (await this.appendBatches([{ id: randomUUID(), events }])).lastId ?? 0;
      } catch (e) {
        if (!(e instanceof WriterRetired)) throw e;
      }
    }
  }

  async appendBatches(batches: EventBatch[]): Promise<{ lastId: number | null; duplicates: number }> {
    const n = batches.reduce((k, b) => k + b.events.length, 0);
    const one = batches.length === 1 ? batches[0]!.events : null;
    const events = one ?? batches.flatMap((b) => b.events);
    const column = new Array<unknown>(n);
    const shared = new Array<unknown>(C + 1).fill(null);
    const cols = EVENT_COLUMNS.map(([name, type], c) => {
      const first = n > 0 ? events[0]![name] : null;
      let same = n > 0 && name !== ALWAYS_WHOLE;
      for (let i = 1; same && i < n; i++) same = events[i]![name] === first;
      if (same) {
        shared[c] = first === undefined ? null : typeof first === "string" ? textValue(first) : first;
        return "{}";
      }
      for (let i = 0; i < n; i++) column[i] = events[i]![name];
      return type === "text" ? textArray(column) : scalarArray(column);
    });
    // each event's batch, as its position in the batch ids (one batch: shared by every event)
    let batchOf = "{}";
    if (one) shared[C] = 1;
    else
      batchOf = `{${batches
        .map((b, i) => `${i + 1},`.repeat(b.events.length))
        .join("")
        .slice(0, -1)}}`;
    const writer = await this.writer();
    const params = [`{${batches.map((b) => b.id).join(",")}}`, ...cols, batchOf, writer, ...shared];
    const res = (await this.one<{ owned: number; fresh: number; last: number | null }>(APPEND_SQL, params))!;
    if (!res.owned) this.retired();
    return { lastId: res.last, duplicates: batches.length - res.fresh };
  }

  /** A transaction of this writer: fails with WriterRetired when another instance adopted it. */
  private writerTx<T>(fn: (c: pg.PoolClient, writer: number) => Promise<T>): Promise<T> {
    return this.tx(async (c) => {
      const writer = await this.writer();
      if (!this.adopted) {
        const own = await c.query(`SELECT id FROM writers WHERE id = $1 FOR KEY SHARE`, [writer]);
        if (!own.rowCount) this.retired();
      }
      return fn(c, writer);
    });
  }

  async scanEvents(afterId: number, uptoId: number | null, limit: number): Promise<StoredEvent[]> {
    const vals: unknown[] = [await this.writer(), afterId];
    let sql = `SELECT * FROM events WHERE writer = $1 AND id > $2`;
    if (uptoId !== null) sql += ` AND id <= $${vals.push(uptoId)}`;
    sql += ` ORDER BY id LIMIT $${vals.push(limit)}`;
    return this.q<StoredEvent>(sql, vals);
  }

  async rollupState(): Promise<RollupState> {
    const writer = await this.writer();
    const w = await this.one<{
      watermark: number;
      pending_from: number | null;
      pending_to: number | null;
      pending_chunk_size: number | null;
      pending_format: number | null;
    }>(`SELECT watermark, pending_from, pending_to, pending_chunk_size, pending_format FROM writers WHERE id = $1`, [writer]);
    if (!w) this.retired();
    if (w.pending_from === null || w.pending_to === null) return { watermark: w.watermark, pending: null };
    const done = (await this.q<{ chunk: number }>(`SELECT chunk FROM rollup_chunks_done WHERE writer = $1 ORDER BY chunk`, [writer])).map(
      (r) => r.chunk,
    );
    const chunkSize = w.pending_chunk_size ?? LEGACY_CHUNK_SIZE;
    // a flush begun before the format was recorded made format 1's row changes
    const format = w.pending_format ?? 1;
    return { watermark: w.watermark, pending: { from: w.pending_from, to: w.pending_to, chunkSize, format, done } };
  }

  async beginRollupFlush(from: number, to: number, chunkSize: number): Promise<void> {
    await this.writerTx(async (c, writer) => {
      await c.query(`DELETE FROM rollup_chunks_done WHERE writer = $1`, [writer]);
      await c.query(`UPDATE writers SET pending_from = $2, pending_to = $3, pending_chunk_size = $4, pending_format = $5 WHERE id = $1`, [
        writer,
        from,
        to,
        chunkSize,
        ROLLUP_FORMAT,
      ]);
    });
  }

  async applyRollupChunk(ops: RollupOp[], chunk: number): Promise<void> {
    const r: unknown[][] = [[], [], [], [], [], [], []];
    const sketches: Extract<RollupOp, { kind: "sketch" }>[] = [];
    for (const op of ops) {
      if (op.kind === "sketch") {
        sketches.push(op);
        continue;
      }
      const row = [op.scope, op.scope_id, op.dim, op.slot, op.bot, op.value, op.clicks];
      for (let i = 0; i < row.length; i++) r[i]!.push(row[i]);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.writerTx(async (c, writer) => {
          // ops come sorted by key, so two instances lock shared rows (a project's totals) in the same order
          // (the same array literals as the group commit's: node-postgres's own cost the HTTP thread more)
          if (r[0]!.length) await c.query({ ...ROLLUP_SQL, values: r.map((col, i) => (ROLLUP_TEXT[i] ? textArray(col) : scalarArray(col))) });
          if (sketches.length) await this.mergeSketches(c, sketches);
          await c.query(`INSERT INTO rollup_chunks_done (writer, chunk) VALUES ($1, $2)`, [writer, chunk]);
        });
      } catch (e) {
        // should two instances still deadlock on shared rows, PostgreSQL aborts one: run it again
        const code = (e as { code?: string }).code;
        if ((code === "40P01" || code === "40001") && attempt < 5) continue;
        throw e;
      }
    }
  }

  async endRollupFlush(to: number, linkClicks: Map<number, number>): Promise<void> {
    const ids = [...linkClicks.keys()].sort((a, b) => a - b);
    await this.writerTx(async (c, writer) => {
      if (ids.length)
        await c.query(`UPDATE link_counts c SET clicks = c.clicks + u.n FROM unnest($1::bigint[], $2::bigint[]) AS u(id, n) WHERE c.link_id = u.id`, [
          scalarArray(ids),
          scalarArray(ids.map((id) => linkClicks.get(id)!)),
        ]);
      await c.query(`DELETE FROM rollup_chunks_done WHERE writer = $1`, [writer]);
      // (the format too: an earlier version's flush, begun after a downgrade, leaves it unset, which says format 1)
      await c.query(`UPDATE writers SET watermark = $2, pending_from = NULL, pending_to = NULL, pending_format = NULL WHERE id = $1`, [writer, to]);
    });
  }

  /**
   * Claims a writer whose heartbeat stopped (FOR UPDATE SKIP LOCKED: one adopter per orphan). The adoption is one
   * transaction: the returned view writes the orphan's rollups through it, and done() deletes the orphan's row and
   * commits, so an adopter that dies half-way leaves nothing behind. A live orphan's appends (FOR KEY SHARE on its row)
   * wait for the adoption and then find their writer gone.
   */
  async claimOrphanWriter(): Promise<OrphanWriter | null> {
    const c = await this.connect();
    try {
      await c.query("BEGIN");
      const r = await c.query(
        `SELECT id FROM writers WHERE heartbeat_at < $1 AND id IS DISTINCT FROM $2 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [Date.now() - ORPHAN_AFTER_MS, this.writerId],
      );
      if (!r.rowCount) {
        await c.query("COMMIT");
        c.release();
        return null;
      }
      const id = r.rows[0].id as number;
      const view = Object.create(this) as PgStore;
      view.writerId = id;
      view.adopted = true;
      view.held = c;
      const end = async (sql: string) => {
        try {
          await c.query(sql);
        } finally {
          c.release();
        }
      };
      return {
        store: view,
        done: async () => {
          await c.query(`DELETE FROM writers WHERE id = $1`, [id]);
          await c.query(`DELETE FROM rollup_chunks_done WHERE writer = $1`, [id]);
          await end("COMMIT");
        },
        release: () => end("ROLLBACK"),
      };
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      c.release();
      mapError(e);
    }
  }

  /** Sketches are merged in JS: the rows are locked, merged with the chunk's visitors and written back. */
  private async mergeSketches(c: pg.PoolClient, ops: Extract<RollupOp, { kind: "sketch" }>[]) {
    const key = (scope: string, id: number, hour: number, bot: boolean) => `${scope}\u0000${id}\u0000${hour}\u0000${bot}`;
    const k = [ops.map((o) => o.scope), ops.map((o) => o.scope_id), ops.map((o) => o.hour), ops.map((o) => o.bot)];
    const stored = new Map<string, Buffer>();
    for (const row of (await c.query({ ...SKETCH_LOCK_SQL, values: k })).rows)
      stored.set(key(row.scope, row.scope_id, row.hour, row.bot), row.sketch as Buffer);
    const merged = ops.map((o) => o.merge(stored.get(key(o.scope, o.scope_id, o.hour, o.bot)) ?? null));
    await c.query({ ...SKETCH_PUT_SQL, values: [...k, merged] });
  }

  async retireWriter(): Promise<void> {
    if (this.writerId === null) return;
    await this.q(`DELETE FROM writers WHERE id = $1 AND pending_from IS NULL`, [this.writerId]);
    this.writerId = null;
  }

  async listEvents(f: EventFilter): Promise<StoredEvent[]> {
    const vals: unknown[] = [f.project_id];
    const where = ["project_id = $1"];
    const p = (v: unknown) => (vals.push(v), `$${vals.length}`);
    if (f.link_id !== undefined) where.push(`link_id = ${p(f.link_id)}`);
    if (f.domain_id !== undefined) where.push(`domain_id = ${p(f.domain_id)}`);
    if (f.name !== undefined) where.push(`name = ${p(f.name)}`);
    if (f.source !== undefined) where.push(`source = ${p(f.source)}`);
    if (f.app_id !== undefined) where.push(`app_id = ${p(f.app_id)}`);
    if (f.session !== undefined) where.push(`session = ${p(f.session)}`);
    if (f.visitor !== undefined) where.push(`visitor = ${p(f.visitor)}`);
    if (f.ip !== undefined) where.push(`ip = ${p(f.ip)}`);
    if (f.before_id !== undefined) where.push(`id < ${p(f.before_id)}`);
    if (f.from !== undefined) where.push(`ts >= ${p(f.from)}`);
    if (f.to !== undefined) where.push(`ts < ${p(f.to)}`);
    if (f.after_id !== undefined) where.push(`id > ${p(f.after_id)}`);
    return this.q<StoredEvent>(`SELECT * FROM events WHERE ${where.join(" AND ")} ORDER BY id${f.desc ? " DESC" : ""} LIMIT ${p(f.limit)}`, vals);
  }

  async countEvents(projectId: number): Promise<number> {
    return (await this.one(`SELECT count(*) AS n FROM events WHERE project_id = $1`, [projectId]))!.n as number;
  }

  async statsSeries(r: StatsRange): Promise<{ slot: number; clicks: number }[]> {
    return this.q(
      `SELECT slot, sum(clicks) AS clicks FROM rollups WHERE scope = $1 AND scope_id = $2 AND dim = 'total' AND slot >= $3 AND slot < $4
       ${r.includeBots ? "" : "AND NOT bot"} GROUP BY slot ORDER BY slot`,
      [r.scope, r.scope_id, r.from, r.to],
    );
  }

  async statsBreakdown(r: StatsRange, dim: Dimension, limit: number): Promise<{ value: string; clicks: number }[]> {
    if (!DIMENSIONS.includes(dim)) throw new Error(`unknown dimension ${dim}`);
    const bots = r.includeBots ? "" : "AND NOT bot";
    const [from, to] = breakdownHours(r);
    // the hours' total: a click scope's name, and the empty value (the total less the other values: see ROLLUP_FORMAT)
    const total = `SELECT coalesce(sum(clicks), 0) FROM rollups WHERE scope = $1 AND scope_id = $2 AND dim = 'total' AND slot >= $3 AND slot < $4 ${bots}`;
    if (dim === "name" && namedByTotal(r.scope)) {
      const n = Number((await this.one<{ n: number }>(`SELECT (${total}) AS n`, [r.scope, r.scope_id, from, to]))!.n);
      return n > 0 ? [{ value: "click", clicks: n }] : [];
    }
    return this.q(
      `WITH v AS (
         SELECT value, sum(clicks) AS clicks FROM rollups
         WHERE scope = $1 AND scope_id = $2 AND dim = $5 AND value <> '' AND slot >= $3 AND slot < $4 ${bots} GROUP BY value
       ), e AS (SELECT (${total}) - (SELECT coalesce(sum(clicks), 0) FROM v) AS clicks)
       SELECT value, clicks FROM (SELECT value, clicks FROM v UNION ALL SELECT '', clicks FROM e WHERE clicks > 0) u
       ORDER BY clicks DESC, value COLLATE "C" LIMIT $6`,
      [r.scope, r.scope_id, from, to, dim, limit],
    );
  }

  async statsSketches(r: StatsRange): Promise<Uint8Array[]> {
    const rows = await this.q<{ sketch: Buffer }>(
      `SELECT sketch FROM visitor_sketches WHERE scope = $1 AND scope_id = $2 AND hour >= $3 AND hour < $4 ${r.includeBots ? "" : "AND NOT bot"}`,
      [r.scope, r.scope_id, r.from - (r.from % 3_600_000), r.to],
    );
    return rows.map((x) => x.sketch);
  }
}
