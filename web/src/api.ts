/**
 * The native API, same origin, authenticated by the session cookie the back end sets.
 * Unsafe methods carry X-CSRF-Token; every call carries X-Project-Id (the project switcher's choice).
 * Errors are RFC 9457 problem+json and surface as ApiError.
 */

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail: string;
  field?: string;
}

export class ApiError extends Error {
  constructor(
    readonly problem: Problem,
    /** seconds, from Retry-After (429/503) */
    readonly retryAfter?: number,
  ) {
    super(problem.detail);
  }
  get status() {
    return this.problem.status;
  }
  get field() {
    return this.problem.field || undefined;
  }
}

export type Id = number | string;

export interface Project {
  id: Id;
  name: string;
  role: string;
}

export interface Session {
  user: { id: Id; email: string };
  projects: Project[];
  project_id: Id;
  csrf_token: string;
}

export interface Utm {
  source?: string;
  medium?: string;
  campaign?: string;
  term?: string;
  content?: string;
}

export interface Link {
  id: number;
  domain: string;
  slug: string;
  short_url: string;
  target: string;
  redirect_status: number;
  expires_at: string | null;
  max_clicks: number | null;
  tags: string[];
  utm: Utm;
  forward_query: boolean;
  title: string | null;
  notes: string | null;
  clicks: number;
  rules: Record<string, unknown>[];
  allowed_platforms: string[] | null;
  campaign_id: number | null;
  created_at: string;
  updated_at: string;
}

export type LinkInput = Partial<
  Pick<Link, "domain" | "slug" | "target" | "redirect_status" | "max_clicks" | "tags" | "utm" | "forward_query" | "title" | "notes" | "campaign_id">
> & { expires_at?: string | null };

export interface Domain {
  id: number;
  hostname: string;
  fallback_url: string | null;
  created_at: string;
  updated_at: string;
}

export interface Campaign {
  id: number;
  name: string;
  utm: Utm;
  notes: string | null;
  created_at: string;
  updated_at: string;
}

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: string;
  revoked_at: string | null;
  key?: string;
}

export type Interval = "hour" | "day" | "week";

export interface Stats {
  from: string;
  to: string;
  interval: Interval;
  tz: string;
  bots: string;
  clicks: number;
  bot_clicks: number | null;
  visitors: number;
  orphan_visits?: number;
  series: { t: string; clicks: number }[];
  breakdowns: Record<string, { value: string; clicks: number }[]>;
  platforms?: { platform: string; clicks: number; visitors: number }[];
}

export interface BulkResult {
  created: number;
  failed: number;
  results: { index: number; status: number; link?: Link; error?: Problem }[];
}

/** A front end that sends events with its public ingest key. */
export interface TrackedApp {
  id: number;
  name: string;
  key: string;
  idle_timeout_ms: number;
  created_at: string;
  disabled_at: string | null;
}

export interface TrackedEvent {
  id: number;
  ts: string;
  client_ts: string | null;
  name: string;
  app_id: number | null;
  session: string | null;
  visitor: string | null;
  source: string | null;
  data: unknown;
  ip: string | null;
  user_agent: string | null;
  referrer?: string | null;
  browser: string | null;
  os: string | null;
  device: string | null;
  is_bot: boolean | number;
  country: string | null;
}

export interface TrackedSession {
  id: number;
  app_id: number;
  token: string;
  visitor: string | null;
  started_at: string;
  client_started_at: string | null;
  last_event_at: string;
  stopped_at: string | null;
  /** "client" (stopped by the front end), "idle" (its idle time-out), null while open */
  stop_reason: string | null;
  duration_ms: number;
  event_count: number;
}

export interface Health {
  status: string;
  version: string;
  engine?: string;
}

// ---- state shared by every call

let csrfToken = "";
let projectId: string | null = null;
let unauthorized: () => void = () => {};

export function setCsrfToken(token: string) {
  csrfToken = token;
}
export function setProjectId(id: Id | null) {
  projectId = id === null ? null : String(id);
}
/** Called when an API call answers 401: the session ended (expired, signed out elsewhere). */
export function onUnauthorized(fn: () => void) {
  unauthorized = fn;
}

export type Query = Record<string, string | number | undefined | null>;

export function url(path: string, query?: Query): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

function retryAfterSeconds(h: string | null): number | undefined {
  if (!h) return undefined;
  if (/^\d+$/.test(h.trim())) return Number(h.trim());
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

async function problemOf(res: Response): Promise<ApiError> {
  let p: Partial<Problem> = {};
  const type = res.headers.get("content-type") ?? "";
  try {
    if (type.includes("json")) p = (await res.json()) as Partial<Problem>;
    else {
      const text = (await res.text()).trim();
      if (text && text.length < 300) p.detail = text;
    }
  } catch {
    // an unreadable body: fall back to the status line
  }
  const status = typeof p.status === "number" ? p.status : res.status;
  return new ApiError(
    {
      ...p,
      status,
      title: p.title ?? res.statusText,
      detail: p.detail || p.title || `The server answered ${res.status}${res.statusText ? " " + res.statusText : ""}.`,
    },
    retryAfterSeconds(res.headers.get("retry-after")),
  );
}

interface CallOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** don't treat a 401 as "the session ended" (the session routes themselves) */
  quiet401?: boolean;
}

async function send(method: string, path: string, opts: CallOptions, accept: string): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  if (projectId) headers["X-Project-Id"] = projectId;
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(url(path, opts.query), { method, headers, body, signal: opts.signal, credentials: "same-origin" });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError({ status: 0, title: "Network error", detail: "The server can't be reached. Check your connection and try again." });
  }
  if (!res.ok) {
    const err = await problemOf(res);
    if (res.status === 401 && !opts.quiet401) unauthorized();
    throw err;
  }
  return res;
}

export async function api<T>(method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE", path: string, opts: CallOptions = {}): Promise<T> {
  const res = await send(method, path, opts, "application/json, application/problem+json");
  if (res.status === 204 || res.status === 205) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function apiBlob(path: string, query?: Query, signal?: AbortSignal): Promise<Blob> {
  const res = await send("GET", path, { query, signal }, "*/*");
  return res.blob();
}

export const isAbort = (e: unknown) => (e as Error | undefined)?.name === "AbortError";

// ---- session

function asSession(v: unknown): Session | null {
  const s = v as Session | undefined;
  return s && typeof s === "object" && s.user && Array.isArray(s.projects) ? s : null;
}

/** The current session, or null when signed out. */
export async function getSession(): Promise<Session | null> {
  try {
    return asSession(await api<unknown>("GET", "/api/v1/auth/session", { quiet401: true }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function signIn(email: string, password: string): Promise<Session> {
  const s = asSession(await api<unknown>("POST", "/api/v1/auth/session", { body: { email, password }, quiet401: true }));
  if (!s) throw new ApiError({ status: 500, detail: "The server's answer to the sign-in was not understood." });
  return s;
}

export async function signOut(): Promise<void> {
  await api<void>("DELETE", "/api/v1/auth/session", { quiet401: true });
}

export async function health(): Promise<Health> {
  // /healthz answers 503 with the same body when something is down: still worth showing
  const res = await fetch("/healthz", { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = (await res.json().catch(() => null)) as Health | null;
  if (!body) throw new ApiError({ status: res.status, detail: `/healthz answered ${res.status}` });
  return body;
}

// ---- visitors, event reports, funnels

export type Scalar = string | number | boolean;

/** A funnel step: an event name, or one with filters on the event's data. */
export type FunnelStepQuery = string | { name: string; where?: Record<string, Scalar> };

/** The body of POST /api/v1/funnels/query, and the `query` of a saved funnel. */
export interface FunnelQuery {
  steps: FunnelStepQuery[];
  /** "30m", "12h", "7d", "2w", seconds, or null for none (default 14d) */
  window?: string | number | null;
  step_window?: string | number | null;
  order?: "ordered" | "strict" | "any";
  exclusions?: { name: string; between?: [number, number] }[];
  from?: string | number;
  to?: string | number;
  breakdown?: { event_field: string } | { property: string; at?: "event" | "now" | "ever" };
  attribution?: "first" | "last";
  dropoff_sample?: number;
}

export interface FunnelStepResult {
  name: string;
  visitors: number;
  conversion_from_previous: number;
  conversion_from_first: number;
  median_ms_to_convert: number | null;
  p90_ms_to_convert: number | null;
  dropped_off_sample: string[];
}

export interface FunnelResult {
  steps: FunnelStepResult[];
  breakdown?: { value: unknown; steps: FunnelStepResult[] }[];
  meta: { events: number; visitors: number; took_ms: number; from?: string | null; to?: string | null; window_ms?: number | null };
  funnel?: SavedFunnel;
}

export interface SavedFunnel {
  id: number;
  name: string;
  description: string | null;
  query: FunnelQuery;
  created_at: string;
  updated_at: string;
}

export interface EventNames {
  events: { name: string; total: number; visitors: number }[];
  properties: string[];
}

export interface EventCounts {
  name: string;
  total: number;
  visitors: number;
}

export interface EventReport {
  name: string;
  total: number;
  visitors: number;
  interval: Interval;
  tz: string;
  series: { t: string; total: number; visitors: number }[];
  preceded_by: EventCounts[];
  property?: { name: string; at: string; values: { value: unknown; total: number; visitors: number; preceded_by: EventCounts[] }[] };
}

export interface VisitorSummary {
  id: string;
  first_seen: string | null;
  last_seen: string | null;
  events: number;
}

export interface VisitorProfile extends VisitorSummary {
  requested: string;
  aliases: string[];
  properties: Record<string, unknown[]>;
  property_history: { name: string; op: string; value: unknown; ts: string }[];
  event_counts: Record<string, number>;
}

/** An event of a visitor's timeline: every field of the log. */
export interface LoggedEvent {
  id: number | string;
  ts: string;
  name: string;
  source?: string | null;
  data?: unknown;
  link_id?: number | null;
  app_id?: number | null;
  session?: string | null;
  visitor?: string | null;
  platform?: string | null;
  browser?: string | null;
  os?: string | null;
  device?: string | null;
  country?: string | null;
  referrer?: string | null;
  is_bot?: boolean | number;
  [field: string]: unknown;
}
