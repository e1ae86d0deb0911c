import { isIP } from "node:net";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { WriterScheduling } from "./util/sched.js";

export type IpMode = "anonymize" | "full" | "none";
export type SqliteSync = "FULL" | "NORMAL";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** proxy-addr trust list: IPs, CIDRs or the names loopback / linklocal / uniquelocal. Empty = trust nobody. */
  trustedProxies: string[];
  adminKey: string | undefined;
  ipMode: IpMode;
  visitorCookie: boolean;
  logLevel: string;
  bodyLimit: number;
  sqliteSynchronous: SqliteSync;
  /** SQLite: the event log's writer on a thread of its own (off: on the HTTP thread) */
  sqliteWriterThread: boolean;
  /** how the writer and WAL checkpointer threads are scheduled (src/util/sched.ts) */
  writerScheduling: WriterScheduling;
  /** redirects, tracking links and pixels answered on the fast lane before node:http (src/http/fast-lane.ts) */
  httpFastLane: boolean;
  /** PostgreSQL with its journal: the event log's writer on a thread of its own (off: on the HTTP thread) */
  postgresWriterThread: boolean;
  /** how often each instance writes its aggregated rollups (a stats read writes its own instance's at once) */
  rollupIntervalMs: number;
  geoipDb: string | undefined;
  /** Public base URL of the API host, used in generated links of the docs; optional. */
  publicUrl: string | undefined;
  /** postgres:// URL: PostgreSQL instead of the embedded SQLite. */
  databaseUrl: string | undefined;
  databasePool: number;
  /**
   * PostgreSQL: the instance's event journal (in the data directory). NORMAL: events no counter depends on are answered
   * once written to it, before the database's commit (survives a crash of the process); FULL: each record is synced
   * too (survives power loss); OFF: answers wait for the database's commit.
   */
  postgresJournal: "NORMAL" | "FULL" | "OFF";
  /** redis:// URL: cache invalidation between instances over Redis pub/sub. */
  redisUrl: string | undefined;
  /** The source systems' HTTP surfaces to serve, each at a mount path ("" is the root). */
  dialects: { name: DialectName; mount: string }[];
  o7tracker: O7Config;
  /** hosts that unsigned (pytracking plain) click links may redirect to; empty = such links are refused */
  trackingUnsignedHosts: string[];
  /** Microticks' MICROTICKS_KEY: when set, its GET /sessions and GET /events want ?key= */
  microticksKey: string | undefined;
}

/** The dialects Clicktrail can serve (CLICKTRAIL_DIALECTS). */
export const DIALECTS = ["o7tracker", "microticks", "hiitrack"] as const;
export type DialectName = (typeof DIALECTS)[number];

/** o7tracker's own variables (AUTH_USER, AUTH_PASSWORD, FALLBACK_URL), read unchanged, plus where its campaigns live. */
export interface O7Config {
  /** HTTP Basic credentials of /admin; when either is unset the admin API refuses every request */
  authUser: string | undefined;
  authPassword: string | undefined;
  fallbackUrl: string;
  /** the link domain campaigns created through the dialect are put on */
  domain: string;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

type Env = Record<string, string | undefined>;

/** The variables Clicktrail reads; the README's configuration table is written from this list. */
export const CONFIG_VARIABLES = [
  ["CLICKTRAIL_PORT", "8080", "TCP port to listen on"],
  ["CLICKTRAIL_HOST", "127.0.0.1", "Address to bind (0.0.0.0 for all interfaces)"],
  ["CLICKTRAIL_DATA_DIR", "./data", "Directory of the SQLite database"],
  [
    "CLICKTRAIL_TRUSTED_PROXIES",
    "(none)",
    "Comma-separated IPs/CIDRs (or loopback, linklocal, uniquelocal) whose X-Forwarded-For / X-Forwarded-Host are honoured",
  ],
  [
    "CLICKTRAIL_ADMIN_KEY",
    "(generated)",
    "Bootstrap admin API key of the default project; when unset the first start generates one and prints it once",
  ],
  ["CLICKTRAIL_IP_MODE", "anonymize", "How client IPs are stored: anonymize (IPv4 /24, IPv6 /48), full, none"],
  ["CLICKTRAIL_VISITOR_COOKIE", "true", "Set a first-party visitor cookie on link domains; false = daily-salted hash of IP + user agent"],
  ["CLICKTRAIL_LOG_LEVEL", "info", "pino log level (fatal, error, warn, info, debug, trace, silent)"],
  ["CLICKTRAIL_BODY_LIMIT", "1048576", "Largest accepted request body in bytes"],
  [
    "CLICKTRAIL_SQLITE_SYNCHRONOUS",
    "NORMAL",
    "SQLite synchronous mode: NORMAL (WAL; survives a crash of the process, fsync at checkpoints) or FULL (fsync every group commit: survives power loss too)",
  ],
  ["CLICKTRAIL_SQLITE_WRITER_THREAD", "true", "SQLite: the event log's writer on a thread of its own (false: on the HTTP thread)"],
  [
    "CLICKTRAIL_WRITER_SCHEDULING",
    "background",
    "background: the writer and WAL checkpointer threads at nice 10 under Linux's SCHED_BATCH (when they want the HTTP thread's core, it has it); normal: normal threads",
  ],
  ["CLICKTRAIL_HTTP_FAST_LANE", "true", "Redirects, tracking links and pixels answered before node:http builds its request objects"],
  ["CLICKTRAIL_GEOIP_DB", "(none)", "Path to a MaxMind/DB-IP country .mmdb file; enables the country dimension"],
  [
    "CLICKTRAIL_DATABASE_URL",
    "(SQLite)",
    "postgres://user:password@host:5432/db — store everything in PostgreSQL, so several instances can share it (docs/deploy.md)",
  ],
  ["CLICKTRAIL_DATABASE_POOL", "10", "PostgreSQL connections per instance"],
  [
    "CLICKTRAIL_POSTGRES_JOURNAL",
    "NORMAL",
    "PostgreSQL: redirects and events are answered once in the instance's event journal (data directory), committed a moment later: NORMAL (survives a crash of the process), FULL (fsync each record: survives power loss too) or OFF (answers wait for the database's commit)",
  ],
  [
    "CLICKTRAIL_POSTGRES_WRITER_THREAD",
    "true",
    "PostgreSQL with its journal: the event log's writer on a thread of its own (false: on the HTTP thread)",
  ],
  [
    "CLICKTRAIL_REDIS_URL",
    "(none)",
    "redis://host:6379 — cache invalidation between instances over Redis pub/sub (without it: PostgreSQL LISTEN/NOTIFY)",
  ],
  [
    "CLICKTRAIL_DIALECTS",
    "(none)",
    "Source systems' APIs to serve, comma-separated, each optionally at a mount path: o7tracker or o7tracker:/o7 (docs/dialects.md)",
  ],
  [
    "CLICKTRAIL_O7TRACKER_DOMAIN",
    "o7tracker.invalid",
    "Link domain of campaigns created through the o7tracker dialect (created when missing); the dialect also reads AUTH_USER, AUTH_PASSWORD and FALLBACK_URL",
  ],
  [
    "CLICKTRAIL_TRACKING_UNSIGNED_HOSTS",
    "(none)",
    "Comma-separated hosts that unsigned pytracking click links may redirect to (unsigned links are open redirects; without this they get 404)",
  ],
  [
    "CLICKTRAIL_WEBHOOK_ALLOW",
    "(none)",
    "Hostnames, IPs or CIDRs webhooks may be sent to although private, loopback or link-local (server-side request forgery guard)",
  ],
  ["CLICKTRAIL_WEBHOOK_TIMEOUT_MS", "10000", "Time limit of one webhook delivery attempt"],
  ["CLICKTRAIL_WEBHOOK_RETRY_BASE_MS", "5000", "First retry delay of a failed delivery (then 30 s, 2 min, 10 min, 30 min, 1 h, every 3 h, ±20 %)"],
  ["CLICKTRAIL_WEBHOOK_MAX_AGE_MS", "86400000", "How long a delivery is retried before it is marked failed"],
  ["CLICKTRAIL_WEBHOOK_POLL_MS", "1000", "How often the delivery queue and the event log are read"],
  ["CLICKTRAIL_INGEST_RATE_LIMIT", "1000", "Requests per second per ingest key on /api/v1/events and /api/v1/sessions (beyond: 429)"],
  ["CLICKTRAIL_CONFIG_FILE", "(none)", "Optional JSON file with the same keys (without the prefix, lower case); the environment wins"],
] as const;

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return def;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(env[name])}`);
}

function oneOf<T extends string>(env: Env, name: string, def: T, allowed: readonly T[], upper = false): T {
  let raw = env[name]?.trim();
  if (raw === undefined || raw === "") return def;
  raw = upper ? raw.toUpperCase() : raw.toLowerCase();
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got ${JSON.stringify(env[name])}`);
  }
  return raw as T;
}

const PROXY_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);

function proxies(env: Env): string[] {
  const raw = env.CLICKTRAIL_TRUSTED_PROXIES?.trim();
  if (!raw) return [];
  return raw.split(",").map((p) => {
    const v = p.trim();
    const [addr, bits] = v.split("/");
    const ok =
      PROXY_NAMES.has(v) ||
      (isIP(addr ?? "") !== 0 && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (isIP(addr ?? "") === 4 ? 32 : 128))));
    if (!ok)
      throw new ConfigError(
        "CLICKTRAIL_TRUSTED_PROXIES",
        `${JSON.stringify(v)} is not an IP address, a CIDR or one of loopback, linklocal, uniquelocal`,
      );
    return v;
  });
}

/** Reads the optional config file and merges it under the environment (the environment wins). */
function withFile(env: Env): Env {
  const file = env.CLICKTRAIL_CONFIG_FILE;
  if (!file) return env;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError("CLICKTRAIL_CONFIG_FILE", `cannot read ${file}: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError("CLICKTRAIL_CONFIG_FILE", `${file} must hold a JSON object`);
  }
  const merged: Env = {};
  for (const [k, v] of Object.entries(parsed)) {
    const name = `CLICKTRAIL_${k.toUpperCase()}`;
    if (!CONFIG_VARIABLES.some(([n]) => n === name)) {
      throw new ConfigError("CLICKTRAIL_CONFIG_FILE", `unknown key ${JSON.stringify(k)} in ${file}`);
    }
    merged[name] = Array.isArray(v) ? v.join(",") : String(v);
  }
  return { ...merged, ...env };
}

export function loadConfig(rawEnv: Env = process.env): Config {
  const env = withFile(rawEnv);
  const adminKey = env.CLICKTRAIL_ADMIN_KEY?.trim() || undefined;
  if (adminKey !== undefined && adminKey.length < 16) {
    throw new ConfigError("CLICKTRAIL_ADMIN_KEY", "must be at least 16 characters long");
  }
  const host = env.CLICKTRAIL_HOST?.trim() || "127.0.0.1";
  if (isIP(host) === 0 && host !== "localhost") throw new ConfigError("CLICKTRAIL_HOST", `must be an IP address, got ${JSON.stringify(host)}`);
  const publicUrl = env.CLICKTRAIL_PUBLIC_URL?.trim() || undefined;
  if (publicUrl !== undefined && !/^https?:\/\/[^/]+/.test(publicUrl)) {
    throw new ConfigError("CLICKTRAIL_PUBLIC_URL", "must be an absolute http(s) URL");
  }
  const databaseUrl = url(env, "CLICKTRAIL_DATABASE_URL", ["postgres:", "postgresql:"]);
  const redisUrl = url(env, "CLICKTRAIL_REDIS_URL", ["redis:", "rediss:"]);
  return {
    port: int(env, "CLICKTRAIL_PORT", 8080, 0, 65535),
    host,
    dataDir: path.resolve(env.CLICKTRAIL_DATA_DIR?.trim() || "./data"),
    trustedProxies: proxies(env),
    adminKey,
    ipMode: oneOf(env, "CLICKTRAIL_IP_MODE", "anonymize", ["anonymize", "full", "none"] as const),
    visitorCookie: bool(env, "CLICKTRAIL_VISITOR_COOKIE", true),
    logLevel: oneOf(env, "CLICKTRAIL_LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
    bodyLimit: int(env, "CLICKTRAIL_BODY_LIMIT", 1_048_576, 1024, 100 * 1_048_576),
    sqliteSynchronous: oneOf(env, "CLICKTRAIL_SQLITE_SYNCHRONOUS", "NORMAL", ["FULL", "NORMAL"] as const, true),
    sqliteWriterThread: bool(env, "CLICKTRAIL_SQLITE_WRITER_THREAD", true),
    writerScheduling: oneOf(env, "CLICKTRAIL_WRITER_SCHEDULING", "background", ["background", "normal"] as const),
    httpFastLane: bool(env, "CLICKTRAIL_HTTP_FAST_LANE", true),
    geoipDb: env.CLICKTRAIL_GEOIP_DB?.trim() || undefined,
    publicUrl,
    databaseUrl,
    databasePool: int(env, "CLICKTRAIL_DATABASE_POOL", 10, 1, 1000),
    postgresJournal: oneOf(env, "CLICKTRAIL_POSTGRES_JOURNAL", "NORMAL", ["NORMAL", "FULL", "OFF"] as const, true),
    postgresWriterThread: bool(env, "CLICKTRAIL_POSTGRES_WRITER_THREAD", true),
    rollupIntervalMs: int(env, "CLICKTRAIL_ROLLUP_INTERVAL_MS", 10_000, 500, 3_600_000),
    redisUrl,
    dialects: dialects(env),
    microticksKey: env.MICROTICKS_KEY || undefined,
    trackingUnsignedHosts: (env.CLICKTRAIL_TRACKING_UNSIGNED_HOSTS ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean)
      .map((h) => {
        if (!/^[a-z0-9.-]+$/.test(h)) throw new ConfigError("CLICKTRAIL_TRACKING_UNSIGNED_HOSTS", `${JSON.stringify(h)} is not a host name`);
        return h;
      }),
    o7tracker: {
      authUser: env.AUTH_USER || undefined,
      authPassword: env.AUTH_PASSWORD || undefined,
      fallbackUrl: url(env, "FALLBACK_URL", ["http:", "https:"]) ?? "http://outfit7.com",
      domain: env.CLICKTRAIL_O7TRACKER_DOMAIN?.trim().toLowerCase() || "o7tracker.invalid",
    },
  };
}

/** "o7tracker" (at the root) or "o7tracker:/o7", comma-separated; a name twice or a mount path twice is an error. */
function dialects(env: Env): Config["dialects"] {
  const raw = env.CLICKTRAIL_DIALECTS?.trim();
  if (!raw) return [];
  const out: Config["dialects"] = [];
  for (const part of raw.split(",")) {
    const [name, mount = "/", ...rest] = part.trim().split(":");
    if (!(DIALECTS as readonly string[]).includes(name!) || rest.length)
      throw new ConfigError(
        "CLICKTRAIL_DIALECTS",
        `${JSON.stringify(part.trim())} is not a dialect; use one of ${DIALECTS.join(", ")}, optionally as name:/path`,
      );
    if (!/^\/([A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*)?$/.test(mount))
      throw new ConfigError("CLICKTRAIL_DIALECTS", `mount path ${JSON.stringify(mount)} of ${name} must be / or like /o7 (letters, digits, ._~-)`);
    const m = mount === "/" ? "" : mount;
    if (/^\/(api|docs|openapi\.json|healthz|metrics)(\/|$)/.test(m))
      throw new ConfigError("CLICKTRAIL_DIALECTS", `mount path ${mount} of ${name} would hide Clicktrail's own ${m.split("/")[1]}`);
    if (out.some((d) => d.name === name)) throw new ConfigError("CLICKTRAIL_DIALECTS", `${name} is listed twice`);
    if (out.some((d) => d.mount === m)) throw new ConfigError("CLICKTRAIL_DIALECTS", `two dialects share the mount path ${mount}`);
    out.push({ name: name as DialectName, mount: m });
  }
  return out;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a URL (expected ${protocols[0]}//host:port/…)`);
  }
  if (!protocols.includes(u.protocol))
    throw new ConfigError(name, `must start with ${protocols.map((p) => p + "//").join(" or ")}, got ${u.protocol}//`);
  return raw;
}
