import { randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
import { AppError, badRequest, conflict, notFound } from "../errors.js";
import { UniqueViolation, type App, type EventRow, type IngestSession, type Store } from "../store/port.js";
import { parseTime } from "../util/time.js";
import { MAX_JSON_DEPTH, tooDeep } from "../util/json.js";
import type { IncomingMessage } from "node:http";
import type { IpMode } from "../config.js";
import { clientIp, storedIp, type TrustFn } from "../util/net.js";
import { parseUa, type UaInfo } from "./enrich.js";
import type { GeoIp } from "./geoip.js";
import type { EventLog } from "./writer.js";

export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;
export const MAX_BATCH = 1000;
export const MAX_DATA_BYTES = 8192;
const NAME_RE = /^[\p{L}\p{N}_][\p{L}\p{N} _.:/-]{0,63}$/u;

/** What the request adds to every event: the client as the server saw it. */
export interface RequestFacts {
  ip: string | null;
  ua: string | null;
  referrer: string | null;
  info: UaInfo;
  country: string | null;
}

/** The facts of a request (user agent and referrer bounded as for clicks, the address as configured to be kept). */
export function requestFacts(req: IncomingMessage, ipMode: IpMode, trust: TrustFn, geoip: GeoIp | null): RequestFacts {
  const ua = req.headers["user-agent"]?.slice(0, 512) ?? null;
  const ip = clientIp(req, trust);
  const info = parseUa(ua ?? undefined);
  return {
    ip: storedIp(ip, ipMode),
    ua: ua === null ? null : info.ua,
    referrer: req.headers.referer?.slice(0, 2048) ?? null,
    info,
    country: geoip?.country(ip) ?? null,
  };
}

export interface IncomingEvent {
  name?: unknown;
  data?: unknown;
  ts?: unknown;
  visitor?: unknown;
  session?: unknown;
}

export const sessionStopped = (how: string) =>
  new AppError(410, "session-stopped", `this session ${how}; start a new one (POST /api/v1/sessions)`, { field: "session" });

/** A fixed-window request counter per ingest key: a 429 beyond `perSecond` (bursts to twice that within the second). */
class RateLimiter {
  private windows = new Map<string, { second: number; n: number }>();
  constructor(private readonly perSecond: number) {}
  take(key: string, n = 1): number {
    const second = Math.floor(Date.now() / 1000);
    let w = this.windows.get(key);
    if (!w || w.second !== second) {
      if (this.windows.size > 100_000) this.windows.clear();
      this.windows.set(key, (w = { second, n: 0 }));
    }
    w.n += n;
    return w.n > this.perSecond ? 1 : 0;
  }
}

/**
 * Apps (public ingest keys), their sessions and their events. A session stops when its front end says so or after the
 * app's idle time-out; events of a stopped session are refused (410). Activity is counted in memory and written to
 * the sessions every second, so ingest costs one group commit, not a session update per request.
 */
export class IngestService {
  private readonly apps = new LRUCache<string, { app: App | null }>({ max: 10_000, ttl: 5_000 });
  private readonly sessions = new LRUCache<string, IngestSession>({ max: 100_000 });
  private pending = new Map<string, { last_event_at: number; events: number }>();
  private readonly limiter: RateLimiter;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly writer: EventLog,
    opts: { requestsPerSecondPerKey?: number } = {},
  ) {
    this.limiter = new RateLimiter(opts.requestsPerSecondPerKey ?? Number(process.env.CLICKTRAIL_INGEST_RATE_LIMIT ?? 1000));
    this.timer = setInterval(() => void this.flush().catch(() => {}), 1000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Resolves once the events acknowledged so far are in the event log (see EventLog.settled), where reads find them. */
  async settled(): Promise<void> {
    await this.writer.settled?.();
  }

  /** Writes the sessions' activity counted since the last flush. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    await this.store.touchIngestSessions([...batch.entries()].map(([token, v]) => ({ token, ...v })));
  }

  // ---------------------------------------------------------------- apps

  async createApp(projectId: number, name: string, idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS): Promise<App> {
    const n = name.trim();
    if (!/^[\p{L}\p{N}][\p{L}\p{N} _.:()&+-]{0,127}$/u.test(n))
      throw badRequest("name must be 1-128 letters, digits, spaces or _.:()&+- starting with a letter or digit", { field: "name" });
    if (!Number.isInteger(idleTimeoutMs) || idleTimeoutMs < 1000 || idleTimeoutMs > 7 * 86_400_000)
      throw badRequest("idle_timeout_ms must be between 1000 (1 s) and 604800000 (7 days)", { field: "idle_timeout_ms" });
    try {
      return await this.store.createApp({
        project_id: projectId,
        name: n,
        key: "ik_" + randomBytes(18).toString("base64url"),
        idle_timeout_ms: idleTimeoutMs,
      });
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`an app named ${JSON.stringify(n)} already exists`, { field: "name" });
      throw e;
    }
  }

  async setDisabled(projectId: number, id: number, disabled: boolean): Promise<App> {
    const a = await this.store.disableApp(projectId, id, disabled);
    if (!a) throw notFound(`app ${id}`);
    this.apps.clear();
    return a;
  }

  /** The app of an ingest key, enabled or not (null when unknown). */
  async appByKey(key: string): Promise<App | null> {
    let hit = this.apps.get(key);
    if (!hit) this.apps.set(key, (hit = { app: await this.store.getAppByKey(key) }));
    return hit.app;
  }

  /** The enabled app of an ingest key (and a rate-limit check), or a 401/403/429. */
  async appOf(key: unknown, cost = 1): Promise<App> {
    const cached = this.cachedApp(key, cost);
    if (cached) return cached;
    const hit = { app: await this.store.getAppByKey(key as string) };
    this.apps.set(key as string, hit);
    return this.enabled(key as string, hit.app, cost);
  }

  /**
   * appOf without waiting, for the ingest hot path: the app when its key was read lately, undefined when it must be read
   * from the store (then appOf), or the same 401/403/429.
   */
  cachedApp(key: unknown, cost = 1): App | undefined {
    if (typeof key !== "string" || key === "")
      throw new AppError(401, "unauthorized", "an ingest key is required: send key in the body or an X-Clicktrail-Key header", { field: "key" });
    const hit = this.apps.get(key);
    return hit && this.enabled(key, hit.app, cost);
  }

  private enabled(key: string, app: App | null, cost: number): App {
    if (!app) throw new AppError(401, "unauthorized", "this ingest key is unknown", { field: "key" });
    if (app.disabled_at !== null) throw new AppError(403, "forbidden", "this ingest key is disabled", { field: "key" });
    if (this.limiter.take(key, cost)) throw new AppError(429, "rate-limited", "too many requests for this ingest key; slow down", { retry_after: 1 });
    return app;
  }

  // ---------------------------------------------------------------- sessions

  async startSession(
    app: App,
    body: { ts?: unknown; visitor?: unknown },
    facts: RequestFacts,
    tokenFormat: "base64url" | "hex" = "base64url",
  ): Promise<IngestSession> {
    const now = Date.now();
    const s = await this.store.createIngestSession({
      project_id: app.project_id,
      app_id: app.id,
      // hex: 32 characters, as Microticks' uuid4().hex tokens
      token: randomBytes(16).toString(tokenFormat),
      visitor: visitorOf(body.visitor, "visitor"),
      started_at: now,
      client_started_at: clientTime(body.ts, "ts"),
      last_event_at: now,
      ip: facts.ip,
      ua: facts.ua,
    });
    this.sessions.set(s.token, s);
    return s;
  }

  /** The live session of a token, or a 410 when it stopped (by its front end or by the idle time-out). */
  async liveSession(app: App, token: unknown, now: number): Promise<IngestSession> {
    if (typeof token !== "string" || token.length === 0 || token.length > 64)
      throw badRequest("session must be a session token", { field: "session" });
    let s = this.sessions.get(token);
    if (!s) {
      const found = await this.store.getIngestSession(token);
      if (!found || found.app_id !== app.id)
        throw new AppError(404, "not-found", "no session with this token for this ingest key", { field: "session" });
      this.sessions.set(token, (s = found));
    }
    if (s.stopped_at !== null) throw sessionStopped("was stopped");
    const last = Math.max(s.last_event_at, this.pending.get(token)?.last_event_at ?? 0);
    if (now - last > this.idleOf(app)) {
      await this.store.stopIngestSession(token, last + this.idleOf(app), "idle");
      s.stopped_at = last + this.idleOf(app);
      s.stop_reason = "idle";
      throw sessionStopped("timed out (no events for longer than the app's idle time-out)");
    }
    return s;
  }

  /** The app a session token belongs to (Microticks' clients send only the token), or null. */
  async appOfSession(token: string): Promise<App | null> {
    const s = this.sessions.get(token) ?? (await this.store.getIngestSession(token));
    if (!s) return null;
    this.sessions.set(token, s);
    const apps = await this.store.listApps(s.project_id);
    return apps.find((a) => a.id === s.app_id) ?? null;
  }

  private idleOf(app: App): number {
    return app.idle_timeout_ms;
  }

  async stopSession(app: App, token: string): Promise<IngestSession> {
    const s = await this.liveSession(app, token, Date.now());
    if (!(await this.store.stopIngestSession(token, Date.now(), "client"))) throw conflict("this session was stopped already", { field: "session" });
    s.stopped_at = Date.now();
    s.stop_reason = "client";
    return s;
  }

  // ---------------------------------------------------------------- events

  /**
   * Validates and records events; resolves once every one is stored (committed, or in the writer's journal). Events
   * that name no session are validated at once, without waiting for anything but the write (the ingest hot path).
   */
  ingest(
    app: App,
    items: IncomingEvent[],
    facts: RequestFacts,
    base: { visitor?: unknown; session?: unknown } = {},
    /** one event sent as the body itself: errors name its fields without an events[i] prefix */
    single = false,
  ): Promise<number> {
    try {
      if (items.length === 0) throw badRequest("events must hold at least one event", { field: "events" });
      if (items.length > MAX_BATCH) throw badRequest(`at most ${MAX_BATCH} events per request`, { field: "events" });
      const now = Date.now();
      if (!isSet(base.session) && items.every((e) => !isSet(e?.session))) {
        const rows: EventRow[] = [];
        for (let i = 0; i < items.length; i++) {
          const data = this.checked(items[i], i, single);
          rows.push(this.row(app, items[i]!, i, single, facts, now, data, null, base.visitor));
        }
        return (rows.length === 1 ? this.writer.write(rows[0]!) : this.writer.writeMany(rows)).then(() => rows.length);
      }
      return this.ingestInSessions(app, items, facts, base, single, now);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** ingest() of events that name sessions: each session looked up (and checked live) in the events' order. */
  private async ingestInSessions(
    app: App,
    items: IncomingEvent[],
    facts: RequestFacts,
    base: { visitor?: unknown; session?: unknown },
    single: boolean,
    now: number,
  ): Promise<number> {
    const rows: EventRow[] = [];
    const live = new Map<string, IngestSession>();
    for (let i = 0; i < items.length; i++) {
      const data = this.checked(items[i], i, single);
      const e = items[i]!;
      const token = e.session ?? base.session;
      let session: IngestSession | null = null;
      if (isSet(token)) {
        session = live.get(token as string) ?? (await this.liveSession(app, token, now));
        live.set(session.token, session);
      }
      rows.push(this.row(app, e, i, single, facts, now, data, session, base.visitor));
    }
    await (rows.length === 1 ? this.writer.write(rows[0]!) : this.writer.writeMany(rows));
    for (const r of rows) {
      if (!r.session) continue;
      const p = this.pending.get(r.session);
      if (p) {
        p.events++;
        p.last_event_at = now;
      } else this.pending.set(r.session, { last_event_at: now, events: 1 });
    }
    return rows.length;
  }

  /** An event's object, name and data checked (a 400 naming the field); its data as stored (JSON text) or null. */
  private checked(e: IncomingEvent | undefined, i: number, single: boolean): string | null {
    const at = (field: string) => fieldAt(single, i, field);
    if (!e || typeof e !== "object" || Array.isArray(e))
      throw badRequest(`${single ? "event " : `events[${i}].`}must be an object`, { field: `events[${i}]` });
    if (typeof e.name !== "string" || !NAME_RE.test(e.name))
      throw badRequest(`${at("name")} must be 1-64 letters, digits, spaces or _.:/- (e.g. "click", "signup")`, { field: at("name") });
    if (e.data === undefined || e.data === null) return null;
    let v = e.data;
    if (typeof v === "string") {
      // Microticks sent data as a JSON string
      try {
        v = JSON.parse(v);
      } catch {
        throw badRequest(`${at("data")} must be a JSON object (or a string holding one)`, { field: at("data") });
      }
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) throw badRequest(`${at("data")} must be a JSON object`, { field: at("data") });
    if (tooDeep(v) !== null) throw badRequest(`${at("data")} nests deeper than ${MAX_JSON_DEPTH} levels`, { field: at("data") });
    const data = JSON.stringify(v);
    if (Buffer.byteLength(data) > MAX_DATA_BYTES) throw badRequest(`${at("data")} is larger than ${MAX_DATA_BYTES} bytes`, { field: at("data") });
    return data;
  }

  /** The event row of a checked event (its time and visitor checked here). */
  private row(
    app: App,
    e: IncomingEvent,
    i: number,
    single: boolean,
    facts: RequestFacts,
    now: number,
    data: string | null,
    session: IngestSession | null,
    baseVisitor: unknown,
  ): EventRow {
    const visitor = e.visitor ?? baseVisitor;
    return {
      project_id: app.project_id,
      ts: now,
      client_ts: e.ts === undefined ? null : clientTime(e.ts, fieldAt(single, i, "ts")),
      name: e.name as string,
      visitor: (visitor === undefined ? null : visitorOf(visitor, fieldAt(single, i, "visitor"))) ?? session?.visitor ?? null,
      session: session?.token ?? null,
      link_id: null,
      domain_id: null,
      campaign_id: null,
      source: "api",
      channel: null,
      platform: facts.info.platform || null,
      ip: facts.ip,
      ua: facts.ua,
      referrer: facts.referrer,
      browser: facts.info.browser || null,
      os: facts.info.os || null,
      device: facts.info.device || null,
      is_bot: facts.info.bot && facts.ua !== null,
      country: facts.country,
      rule: null,
      data,
      app_id: app.id,
    };
  }
}

const isSet = (v: unknown) => v !== undefined && v !== null;

/** A field's name in errors: "name" for an event sent as the body itself, "events[3].name" in a batch (built only for an error). */
const fieldAt = (single: boolean, i: number, field: string) => (single ? field : `events[${i}].${field}`);

function clientTime(v: unknown, field: string): number | null {
  if (v === undefined || v === null || v === "") return null;
  return parseTime(v, field) ?? null;
}

function visitorOf(v: unknown, field: string): string | null {
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "string" || v.length > 128 || v.includes("\u0000"))
    throw badRequest(`${field} must be a string of at most 128 characters (no NUL)`, { field });
  return v;
}
