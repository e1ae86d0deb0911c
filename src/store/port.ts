/**
 * The storage port: everything Clicktrail keeps goes through this one interface, with one adapter per engine
 * (sqlite/ now, postgres/ next). Methods are async so every engine fits; SQL lives only in the adapters.
 * Times are UTC epoch milliseconds.
 */

export interface Project {
  id: number;
  name: string;
  created_at: number;
}

export interface User {
  id: number;
  email: string;
  password_hash: string;
  created_at: number;
}

/** A signed-in dashboard session; the cookie's token is stored as its SHA-256 hash. */
export interface Session {
  id_hash: string;
  user_id: number;
  /** sent back by the dashboard in X-CSRF-Token on every unsafe request */
  csrf: string;
  created_at: number;
  expires_at: number;
}

export interface Membership {
  project_id: number;
  name: string;
  role: string;
}

/** A key that signs (or encrypts) a project's tracking tokens; its kid is written into every token it makes. */
export interface TrackingKey {
  id: number;
  project_id: number;
  /** short public id, unique across projects: a token names its key, and so its project */
  kid: string;
  /** "clicktrail": HMAC / AES-GCM secret of the compact format; "fernet": a pytracking Fernet key */
  kind: "clicktrail" | "fernet";
  secret: string;
  created_at: number;
  revoked_at: number | null;
}

/** A front end that sends events: its public ingest key is safe to embed in a page. */
export interface App {
  id: number;
  project_id: number;
  name: string;
  key: string;
  idle_timeout_ms: number;
  created_at: number;
  disabled_at: number | null;
}

/** A session of an app's front end (Microticks' sessions): events carry its token. */
export interface IngestSession {
  id: number;
  project_id: number;
  app_id: number;
  token: string;
  visitor: string | null;
  started_at: number;
  client_started_at: number | null;
  last_event_at: number;
  stopped_at: number | null;
  stop_reason: string | null;
  event_count: number;
  ip: string | null;
  ua: string | null;
}

export interface SessionFilter {
  project_id: number;
  app_id?: number;
  visitor?: string;
  from?: number;
  to?: number;
  before_id?: number;
  limit: number;
}

export const SCOPES = ["links:read", "links:write", "stats:read", "events:write", "funnels:write", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  id: number;
  project_id: number;
  name: string;
  prefix: string;
  hash: string;
  scopes: Scope[];
  created_at: number;
  revoked_at: number | null;
}

export interface Domain {
  id: number;
  project_id: number;
  hostname: string;
  fallback_url: string | null;
  created_at: number;
  updated_at: number;
}

export interface Utm {
  source?: string;
  medium?: string;
  campaign?: string;
  term?: string;
  content?: string;
}

/** The platforms targeting knows: what a click's user agent (or an explicit `?platform=`) is resolved to. */
export const PLATFORMS = ["android", "ios", "windows-phone", "windows", "macos", "linux", "chromeos", "other"] as const;
export type Platform = (typeof PLATFORMS)[number];
/** What a platform condition may name: a platform, or a class of them. */
export const PLATFORM_CONDITIONS = [...PLATFORMS, "mobile", "desktop"] as const;
export type PlatformCondition = (typeof PLATFORM_CONDITIONS)[number];

/**
 * One targeting rule of a link: every condition given must hold (AND); the first matching rule of the list wins, and
 * without one the link's own target is used. Stored as validated and normalised by links/targeting.ts.
 */
export interface TargetRule {
  /** shown in stats ("which rule matched"); unique within the link */
  name: string;
  target: string;
  platform?: PlatformCondition[];
  /** preferred browser language (Accept-Language), "de" also matches "de-AT" */
  language?: string[];
  /** ISO 3166-1 alpha-2 country (needs GeoIP) */
  country?: string[];
  /** query parameters: true = present, a string = equal to */
  query?: Record<string, string | true>;
  /** epoch ms: the rule applies from (after) and until (before) */
  after?: number;
  before?: number;
}

/** A named group of links that share UTM parameters and are counted together. */
export interface Campaign {
  id: number;
  project_id: number;
  name: string;
  utm: Utm;
  notes: string | null;
  created_at: number;
  updated_at: number;
}

export interface Link {
  id: number;
  project_id: number;
  domain_id: number;
  hostname: string;
  slug: string;
  target: string;
  redirect_status: 301 | 302 | 307 | 308;
  expires_at: number | null;
  max_clicks: number | null;
  tags: string[];
  utm: Utm;
  forward_query: boolean;
  title: string | null;
  notes: string | null;
  created_at: number;
  updated_at: number;
  /** Non-bot clicks recorded so far (maintained by the writer; max_clicks counts these). */
  clicks: number;
  /** ordered targeting rules, first match wins */
  rules: TargetRule[];
  /** when set, clicks from other platforms are refused (404 or the domain's fallback) */
  allowed_platforms: PlatformCondition[] | null;
  campaign_id: number | null;
}

export type NewLink = Omit<Link, "id" | "hostname" | "created_at" | "updated_at" | "clicks">;
export type LinkPatch = Partial<Omit<NewLink, "project_id">>;

export const LINK_SORTS = ["-created", "created", "slug", "-slug", "clicks", "-clicks"] as const;
export type LinkSort = (typeof LINK_SORTS)[number];

export interface LinkFilter {
  project_id: number;
  domain_id?: number;
  tag?: string;
  q?: string;
  created_after?: number;
  created_before?: number;
  /** Links with an id below this (cursor pagination, newest first). */
  before_id?: number;
  /** Other orders (default: newest first): by slug or by clicks, with a keyset cursor after (value, id). */
  sort?: LinkSort;
  after?: { value: string | number; id: number };
  campaign_id?: number;
  /** only links with targeting rules or allowed platforms */
  targeted?: boolean;
  limit: number;
}

/** One row of the event log, as the writer hands it to the store. */
export interface EventRow {
  project_id: number;
  ts: number;
  client_ts: number | null;
  name: string;
  visitor: string | null;
  session: string | null;
  link_id: number | null;
  domain_id: number | null;
  campaign_id: number | null;
  source: string;
  channel: string | null;
  platform: string | null;
  ip: string | null;
  ua: string | null;
  referrer: string | null;
  browser: string | null;
  os: string | null;
  device: string | null;
  is_bot: boolean;
  country: string | null;
  /** the name of the targeting rule that chose the target (null: the link's own target) */
  rule: string | null;
  /** the app (ingest key) that sent the event; null for clicks */
  app_id?: number | null;
  data: string | null;
  /**
   * Not a column: where the event stands in the SQLite writer thread's journal (events/journal.ts), so the transaction
   * that commits it records how far the journal is committed.
   */
  journal?: number;
}

export interface StoredEvent extends EventRow {
  id: number;
}

/**
 * A rollup scope: link, domain, project, campaign, the orphan-visit counters of a domain / project, and a campaign's
 * clicks on one platform (scope id: see campaignPlatformScope), which gives per-platform series and visitors.
 */
export type ScopeKind = "link" | "domain" | "project" | "campaign" | "campaign_platform" | "orphan_domain" | "orphan_project" | "app";

/** The scope id of (campaign, platform): campaign id × 16 + the platform's index ("" is 15). */
export function campaignPlatformScope(campaignId: number, platform: string): number {
  const i = (PLATFORMS as readonly string[]).indexOf(platform);
  return campaignId * 16 + (i < 0 ? 15 : i);
}

export const DIMENSIONS = ["referrer_host", "browser", "os", "device", "platform", "channel", "country", "rule", "name"] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/**
 * Total clicks are kept per 15-minute slot (so series in every time zone, :30 and :45 ones too, bucket exactly);
 * per-dimension counts per hour (breakdowns read four times fewer rows; their range is widened to whole hours).
 */
export const SLOT_MS = 15 * 60_000;
export const DIM_SLOT_MS = 60 * 60_000;

/** The hours a breakdown of a range counts (dimensions are kept per hour): each hour the range touches. */
export function breakdownHours(r: { from: number; to: number }): [from: number, to: number] {
  return [r.from - (r.from % DIM_SLOT_MS), Math.ceil(r.to / DIM_SLOT_MS) * DIM_SLOT_MS];
}

/** Visitor sketches are kept per hour. */
export const SKETCH_MS = 60 * 60_000;

/** One rollup change. `dim` "total" counts every click; the others count clicks per value of that dimension. */
export type RollupOp =
  | { kind: "count"; scope: ScopeKind; scope_id: number; dim: Dimension | "total"; slot: number; bot: boolean; value: string; clicks: number }
  | {
      kind: "sketch";
      scope: ScopeKind;
      scope_id: number;
      hour: number;
      bot: boolean;
      /** Returns the stored sketch merged with this change (merging is idempotent). */
      merge: (stored: Uint8Array | null) => Buffer;
    };

/** Row changes per chunk of rollup flushes whose marker does not say (written before the chunk size was recorded). */
export const LEGACY_CHUNK_SIZE = 1000;

/**
 * Which row changes a rollup flush makes of its counts (a flush interrupted by a crash is resumed with the list its own
 * version made: its chunks are cut by position in that list).
 * - 1 (a marker that does not say): a row per dimension value, the empty value too.
 * - 2: no row for an empty value (a breakdown reads it as the total less the other values), nor for the name of a scope
 *   that counts clicks only (read as its total: see namedByTotal). In a deployment without a GeoIP database or rules,
 *   three of a click's ten rows per scope.
 */
export const ROLLUP_FORMAT = 2;

/** Scopes that count link clicks only: every event's name is "click", so their name breakdown is their total. */
export function namedByTotal(scope: ScopeKind): boolean {
  return scope !== "app";
}

export interface RollupState {
  /** Every event with an id up to here is in the rollups. */
  watermark: number;
  /**
   * A flush that started and did not finish: its event range, the row changes per chunk it was cut into (a marker
   * written before that was recorded: 1,000), the format of its row changes (see ROLLUP_FORMAT; a marker that does not
   * say: 1), and the chunks already applied.
   */
  pending: { from: number; to: number; chunkSize: number; format: number; done: number[] } | null;
}

export interface StatsRange {
  scope: ScopeKind;
  scope_id: number;
  /** inclusive, a multiple of SLOT_MS */
  from: number;
  /** exclusive */
  to: number;
  includeBots: boolean;
}

export interface EventFilter {
  project_id: number;
  link_id?: number;
  domain_id?: number;
  name?: string;
  source?: string;
  app_id?: number;
  session?: string;
  visitor?: string;
  ip?: string;
  /** newest first (with before_id) instead of oldest first (with after_id) */
  desc?: boolean;
  before_id?: number;
  from?: number;
  to?: number;
  after_id?: number;
  limit: number;
}

/** A group commit with an id, for engines where a batch may be replayed (from an instance's spool). */
export interface EventBatch {
  /** unique per batch: a batch replayed after an outage is applied at most once */
  id: string;
  events: EventRow[];
}

/** Another instance's writer that died with events not yet in the rollups, claimed by this instance to finish. */
export interface OrphanWriter {
  /** the store as that writer: rollupState, scanEvents and the flush methods act on its watermark */
  store: Store;
  /** Retires the orphan (its rollups are complete) and releases the claim. */
  done(): Promise<void>;
  /** Releases the claim without retiring it (someone will try again). */
  release(): Promise<void>;
}

export interface Store {
  readonly engine: "sqlite" | "postgres";
  /**
   * Appends batches in one transaction, skipping those whose id was applied before (`duplicates`); `lastId` is the
   * highest id given out (null when nothing was appended).
   */
  appendBatches?(batches: EventBatch[]): Promise<{ lastId: number | null; duplicates: number }>;
  /**
   * Grants one click against the link's max_clicks atomically across every instance; false when exhausted. Engines
   * without it (one process per database) count in memory.
   */
  claimClick?(linkId: number): Promise<boolean>;
  /**
   * Several writers (instances) on one database: each has its own rollup watermark. Claims one writer that stopped
   * without finishing its rollups (FOR UPDATE SKIP LOCKED: each orphan is adopted by one instance), or null.
   */
  claimOrphanWriter?(): Promise<OrphanWriter | null>;
  /** This instance's writer stops: its rollups are complete, its watermark is no longer needed. */
  retireWriter?(): Promise<void>;
  /** Starts periodic upkeep (PostgreSQL: next months' partitions); errors go to onError. */
  startMaintenance?(onError: (e: unknown) => void): void;
  /** What this engine's connections look like, for /healthz (e.g. { redis: "up" }). */
  status?(): Record<string, string>;
  migrate(): Promise<number>;
  close(): Promise<void>;
  /** True when someone else (another process) changed the data since the last call: caches must be dropped. */
  externalChange(): Promise<boolean>;
  ping(): Promise<void>;

  getMeta(key: string): Promise<string | null>;
  setMetaIfAbsent(key: string, value: string): Promise<string>;

  createProject(name: string): Promise<Project>;
  getProject(idOrName: number | string): Promise<Project | null>;
  listProjects(): Promise<Project[]>;

  createUser(email: string, passwordHash: string): Promise<User>;
  getUserByEmail(email: string): Promise<User | null>;
  addMember(userId: number, projectId: number, role: string): Promise<void>;
  getUser(id: number): Promise<User | null>;
  /** the projects a user belongs to, oldest first */
  listMemberships(userId: number): Promise<Membership[]>;

  createTrackingKey(k: Omit<TrackingKey, "id" | "created_at" | "revoked_at">): Promise<TrackingKey>;
  listTrackingKeys(projectId: number): Promise<TrackingKey[]>;
  /** every key not revoked, of every project (the tracking routes' decoder) */
  activeTrackingKeys(): Promise<TrackingKey[]>;
  revokeTrackingKey(projectId: number, id: number): Promise<boolean>;
  setMeta(key: string, value: string): Promise<void>;

  createApp(a: Omit<App, "id" | "created_at" | "disabled_at">): Promise<App>;
  getApp(projectId: number, id: number): Promise<App | null>;
  getAppByKey(key: string): Promise<App | null>;
  listApps(projectId: number): Promise<App[]>;
  disableApp(projectId: number, id: number, disabled: boolean): Promise<App | null>;

  createIngestSession(s: Omit<IngestSession, "id" | "stopped_at" | "stop_reason" | "event_count">): Promise<IngestSession>;
  getIngestSession(token: string): Promise<IngestSession | null>;
  /** false when it was stopped already */
  stopIngestSession(token: string, at: number, reason: string): Promise<boolean>;
  /** activity since the last call: the newest event time and how many events, per session token */
  touchIngestSessions(updates: { token: string; last_event_at: number; events: number }[]): Promise<void>;
  listIngestSessions(f: SessionFilter): Promise<IngestSession[]>;

  createSession(s: Session): Promise<void>;
  /** a session that has not expired, or null */
  getSession(idHash: string, now: number): Promise<Session | null>;
  deleteSession(idHash: string): Promise<void>;

  createApiKey(k: Omit<ApiKey, "id" | "created_at" | "revoked_at">): Promise<ApiKey>;
  getApiKeyByHash(hash: string): Promise<ApiKey | null>;
  listApiKeys(projectId: number): Promise<ApiKey[]>;
  revokeApiKey(projectId: number, id: number): Promise<boolean>;
  countApiKeys(): Promise<number>;

  createDomain(d: Omit<Domain, "id" | "created_at" | "updated_at">): Promise<Domain>;
  getDomain(projectId: number, id: number): Promise<Domain | null>;
  getDomainByHostname(hostname: string): Promise<Domain | null>;
  listDomains(projectId: number): Promise<Domain[]>;
  updateDomain(projectId: number, id: number, patch: Partial<Pick<Domain, "hostname" | "fallback_url">>): Promise<Domain | null>;
  deleteDomain(projectId: number, id: number): Promise<boolean>;
  countLinksOnDomain(domainId: number): Promise<number>;

  createCampaign(c: Omit<Campaign, "id" | "created_at" | "updated_at">): Promise<Campaign>;
  getCampaign(projectId: number, id: number): Promise<Campaign | null>;
  /** any project's campaign by id (the redirect path's cache fill) */
  getCampaignById(id: number): Promise<Campaign | null>;
  listCampaigns(projectId: number): Promise<Campaign[]>;
  updateCampaign(projectId: number, id: number, patch: Partial<Pick<Campaign, "name" | "utm" | "notes">>): Promise<Campaign | null>;
  /** Deletes the campaign; its links stay, without a campaign. */
  deleteCampaign(projectId: number, id: number): Promise<boolean>;

  createLink(l: NewLink): Promise<Link>;
  getLink(projectId: number, id: number): Promise<Link | null>;
  getLinkBySlug(domainId: number, slug: string): Promise<Link | null>;
  findLinkByTarget(domainId: number, target: string): Promise<Link | null>;
  listLinks(f: LinkFilter): Promise<Link[]>;
  updateLink(projectId: number, id: number, patch: LinkPatch): Promise<Link | null>;
  deleteLink(projectId: number, id: number): Promise<boolean>;

  /** Appends events in one transaction and returns the id of the last one. Ids of one call are consecutive. */
  appendEvents(events: EventRow[]): Promise<number>;
  /** This writer's events with ids in (afterId, uptoId], in id order: the rollup replay after a crash. */
  scanEvents(afterId: number, uptoId: number | null, limit: number): Promise<StoredEvent[]>;
  listEvents(f: EventFilter): Promise<StoredEvent[]>;
  countEvents(projectId: number): Promise<number>;

  /** Rollups are flushed in chunks: begin (records the event range), apply each chunk atomically, end (watermark). */
  rollupState(): Promise<RollupState>;
  /** Records the flush's range and chunk size, and that its row changes are in ROLLUP_FORMAT. */
  beginRollupFlush(from: number, to: number, chunkSize: number): Promise<void>;
  applyRollupChunk(ops: RollupOp[], chunk: number): Promise<void>;
  /** Sets the watermark and adds the links' non-bot clicks (link id → clicks) in one transaction. */
  endRollupFlush(to: number, linkClicks: Map<number, number>): Promise<void>;

  statsSeries(r: StatsRange): Promise<{ slot: number; clicks: number }[]>;
  /**
   * The top values of a dimension over the hours of the range, the empty value counted as the total of those hours less
   * the other values (see ROLLUP_FORMAT), a click scope's name as its total.
   */
  statsBreakdown(r: StatsRange, dim: Dimension, limit: number): Promise<{ value: string; clicks: number }[]>;
  /** The stored visitor sketches of the hours in range. */
  statsSketches(r: StatsRange): Promise<Uint8Array[]>;
}

/** Thrown by adapters when the database cannot be reached: the API answers 503 and the client retries. */
export class StoreUnavailable extends Error {}

/**
 * Thrown by a multi-writer store when another instance adopted this instance's writer (it was cut off from the
 * database too long): nothing was written; the store continues as a new writer and the rollup buffer must be rebuilt.
 */
export class WriterRetired extends Error {}

/** Thrown by adapters on a unique-constraint violation, so services can answer 409 without knowing the engine. */
export class UniqueViolation extends Error {}
