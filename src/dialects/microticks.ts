import { parse as parseQuery } from "node:querystring";
import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuthService } from "../auth/service.js";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import { requestFacts, type IngestService, type RequestFacts } from "../events/ingest.js";
import type { IngestSession, StoredEvent, Store } from "../store/port.js";
import { MAX_JSON_DEPTH, tooDeep } from "../util/json.js";
import type { TrustFn } from "../util/net.js";

/**
 * The Microticks dialect: its form-encoded POST /sessions, /sessions/stop and /events, and GET /sessions and /events
 * (MICROTICKS_KEY in ?key=), with its JSON bodies, messages, CORS and no-cache headers (seed-apis.md §3). Consumers
 * are Clicktrail apps, sessions and events are the native ones. Deliberate differences: docs/dialects.md.
 */

export interface MicroticksDeps {
  config: Config;
  auth: AuthService;
  store: Store;
  ingest: IngestService;
  trust: TrustFn;
}

/** Microticks' JsonError: a body with "status"; Clicktrail answers with that status (the original always sent 400). */
class MtError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly body: Record<string, unknown>,
  ) {
    super(JSON.stringify(body));
  }
}

const missing = (f: string) => new MtError(400, { error: `No "${f}" parameter provided`, status: 400 });

/** Flask's jsonify: keys sorted. */
function sortedJson(v: unknown): string {
  return JSON.stringify(v, (_k, val) =>
    val && typeof val === "object" && !Array.isArray(val)
      ? Object.fromEntries(
          Object.keys(val)
            .sort()
            .map((k) => [k, val[k]]),
        )
      : val,
  );
}

const SESSION_SORTS = new Set(["id", "consumer_id", "started_at", "stopped_at", "clicks", "last_action"]);
const EVENT_SORTS = new Set(["id", "session_id", "time", "action"]);

export async function microticksRoutes(app: FastifyInstance, deps: MicroticksDeps) {
  const { ingest, store } = deps;
  let projectId: number | null = null;
  const project = async () => (projectId ??= (await deps.auth.ensureDefaultProject()).id);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => done(null, parseQuery(body as string)));
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
    const text = body as string;
    try {
      done(null, text.trim().startsWith("{") ? JSON.parse(text) : parseQuery(text));
    } catch {
      done(null, parseQuery(text));
    }
  });
  app.addHook("onSend", async (_req, reply, payload) => {
    reply.header("cache-control", "public, max-age=0");
    reply.header("pragma", "no-cache");
    reply.header("expires", "0");
    reply.header("access-control-allow-origin", "*");
    return payload;
  });
  app.options("/*", { schema: { hide: true } }, (_req, reply) =>
    reply.code(200).header("access-control-allow-methods", "GET, HEAD, POST, OPTIONS").header("access-control-allow-headers", "content-type").send(),
  );

  const facts = (req: FastifyRequest): RequestFacts => requestFacts(req.raw, deps.config.ipMode, deps.trust, null);

  function field(req: FastifyRequest, name: string): string | undefined {
    const v = (req.body as Record<string, unknown> | undefined)?.[name];
    if (v === undefined || v === null) return undefined;
    return Array.isArray(v) ? String(v[0]) : String(v);
  }

  const send = (reply: FastifyReply, status: number, body: unknown) => reply.code(status).type("application/json").send(sortedJson(body));

  async function run(reply: FastifyReply, fn: () => Promise<unknown>) {
    try {
      return send(reply, 200, await fn());
    } catch (e) {
      if (e instanceof MtError) return send(reply, e.httpStatus, e.body);
      if (e instanceof AppError && e.type === "session-stopped")
        return send(reply, 400, { description: "Session was already stopped.", status: 400 });
      if (e instanceof AppError && e.status === 429) return send(reply.header("retry-after", "1"), 429, { error: e.message, status: 429 });
      throw e;
    }
  }

  async function session(
    token: string | undefined,
  ): Promise<{ token: string; app: NonNullable<Awaited<ReturnType<IngestService["appOfSession"]>>> }> {
    if (token === undefined) throw missing("token");
    const a = await ingest.appOfSession(token);
    if (!a) throw new MtError(400, { description: "Could not find session", status: 400 });
    return { token, app: a };
  }

  app.post("/sessions", { schema: { hide: true } }, (req, reply) =>
    run(reply, async () => {
      const key = field(req, "consumer_key");
      const a = key ? await ingest.appByKey(key) : null;
      if (!a) throw new MtError(400, { error: "Invalid consumer_key", status: 400 });
      if (a.disabled_at !== null) throw new MtError(400, { error: "Consumer is not active.", status: 400 });
      const ts = field(req, "ts");
      if (ts === undefined) throw missing("ts");
      await ingest.appOf(key);
      const s = await ingest.startSession(a, { ts: Number.isNaN(Date.parse(ts)) ? undefined : ts }, facts(req), "hex");
      return { status: 200, token: s.token };
    }),
  );

  app.post("/sessions/stop", { schema: { hide: true } }, (req, reply) =>
    run(reply, async () => {
      if (field(req, "ts") === undefined) throw missing("ts");
      const { token, app: a } = await session(field(req, "token"));
      try {
        await ingest.stopSession(a, token);
      } catch (e) {
        if (e instanceof AppError && (e.type === "session-stopped" || e.type === "conflict"))
          throw new MtError(400, { description: "Session was already stopped.", status: 400 });
        throw e;
      }
      return { status: 200 };
    }),
  );

  app.post("/events", { schema: { hide: true } }, (req, reply) =>
    run(reply, async () => {
      const token = field(req, "token");
      if (token === undefined) throw missing("token");
      const action = field(req, "action");
      if (action === undefined) throw missing("action");
      const data = field(req, "data");
      if (data === undefined) throw missing("data");
      const ts = field(req, "ts");
      if (ts === undefined) throw missing("ts");
      const { app: a } = await session(token);
      let parsed: unknown = data;
      try {
        parsed = JSON.parse(data);
      } catch {
        /* kept as a string */
      }
      // a value nested too deeply cannot be stored (serializing it would overflow the stack): refused like bad input
      if (tooDeep(parsed, MAX_JSON_DEPTH - 2) !== null)
        throw new MtError(400, { error: `"data" nests deeper than ${MAX_JSON_DEPTH - 2} levels`, status: 400 });
      const payload = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : { value: parsed };
      await ingest.ingest(
        a,
        [{ name: action || "(empty)", data: payload, ts: Number.isNaN(Date.parse(ts)) ? undefined : ts, session: token }],
        facts(req),
        {},
        true,
      );
      // the original answers the new event's id: it must be in the event log first
      await ingest.settled();
      const last = await store.listEvents({ project_id: a.project_id, session: token, desc: true, limit: 1 });
      return { event_id: last[0]?.id ?? null, status: 200 };
    }),
  );

  function keyCheck(req: FastifyRequest) {
    const want = deps.config.microticksKey;
    if (!want) return;
    const got = (req.query as Record<string, string | undefined>).key;
    if (got === undefined) throw new MtError(401, { description: 'Please specify an API key using the "key" query string parameter.', status: 401 });
    const a = Buffer.from(got);
    const b = Buffer.from(want);
    if (a.length !== b.length || !timingSafeEqual(a, b))
      throw new MtError(401, { description: "The key does not seem to be the right one.", status: 401 });
  }

  type Q = Record<string, string | undefined>;
  function paging(q: Q, sorts: Set<string>) {
    const num = (name: string) => {
      const v = q[name];
      if (v === undefined) return undefined;
      if (!/^\d{1,9}$/.test(v)) throw new MtError(400, { error: `"${name}" must be a whole number`, status: 400 });
      return Number(v);
    };
    const desc = q["sort.desc"];
    const asc = q.sort;
    if (desc !== undefined && asc !== undefined) throw new MtError(400, { error: 'give either "sort" or "sort.desc", not both', status: 400 });
    const col = desc ?? asc;
    if (col !== undefined && !sorts.has(col))
      throw new MtError(400, { error: `cannot sort by ${JSON.stringify(col)}; use one of ${[...sorts].join(", ")}`, status: 400 });
    return { limit: num("limit"), offset: num("offset") ?? 0, col, desc: desc !== undefined };
  }

  function order<T extends Record<string, unknown>>(rows: T[], col: string | undefined, desc: boolean): T[] {
    if (!col) return rows;
    return [...rows].sort((x, y) => {
      const a = x[col] as string | number | null;
      const b = y[col] as string | number | null;
      const c = a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1;
      return desc ? -c : c;
    });
  }

  /** The sessions the filters select: ip, date (YYYY-MM-DD prefix of the start, UTC), consumer. */
  async function sessionsOf(q: Q): Promise<IngestSession[]> {
    const pid = await project();
    let from: number | undefined, to: number | undefined;
    if (q.date !== undefined) {
      const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(q.date);
      if (!m) return [];
      const [y, mo, d] = [Number(m[1]), m[2] ? Number(m[2]) - 1 : 0, m[3] ? Number(m[3]) : 1];
      from = Date.UTC(y, mo, d);
      to = m[3] ? from + 86_400_000 : m[2] ? Date.UTC(y, mo + 1, 1) : Date.UTC(y + 1, 0, 1);
    }
    const consumer = q.consumer !== undefined ? Number(q.consumer) : undefined;
    if (consumer !== undefined && !Number.isInteger(consumer)) return [];
    const rows = await store.listIngestSessions({ project_id: pid, app_id: consumer, from, to, limit: 10_000 });
    return q.ip !== undefined ? rows.filter((s) => s.ip === q.ip) : rows;
  }

  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

  app.get<{ Querystring: Q }>("/sessions", { schema: { hide: true } }, (req, reply) =>
    run(reply, async () => {
      keyCheck(req);
      const p = paging(req.query, SESSION_SORTS);
      await ingest.flush();
      const out: Record<string, unknown>[] = [];
      for (const s of await sessionsOf(req.query)) {
        // as the original: the sessions with at least one "click" event, with their count and the last one's time
        const clicks = await store.listEvents({ project_id: s.project_id, session: s.token, name: "click", desc: true, limit: 100_000 });
        if (!clicks.length) continue;
        out.push({
          id: s.id,
          consumer_id: s.app_id,
          started_at: iso(s.client_started_at ?? s.started_at),
          stopped_at: iso(s.stopped_at),
          clicks: clicks.length,
          last_action: iso(clicks[0]!.client_ts ?? clicks[0]!.ts),
        });
      }
      const rows = order(out, p.col, p.desc).slice(p.offset, p.limit === undefined ? undefined : p.offset + p.limit);
      return { count: rows.length, sessions: rows, status: 200 };
    }),
  );

  app.get<{ Querystring: Q }>("/events", { schema: { hide: true } }, (req, reply) =>
    run(reply, async () => {
      keyCheck(req);
      const p = paging(req.query, EVENT_SORTS);
      const filtered = req.query.ip !== undefined || req.query.date !== undefined || req.query.consumer !== undefined;
      const sessions = await sessionsOf(req.query);
      const byToken = new Map(sessions.map((s) => [s.token, s]));
      const pid = await project();
      const events: StoredEvent[] = [];
      if (filtered) for (const s of sessions) events.push(...(await store.listEvents({ project_id: pid, session: s.token, limit: 100_000 })));
      else {
        for (let after = 0; ;) {
          const page = await store.listEvents({ project_id: pid, source: "api", after_id: after, limit: 5000 });
          events.push(...page.filter((e) => e.session !== null));
          if (page.length < 5000) break;
          after = page[page.length - 1]!.id;
        }
        for (const s of await store.listIngestSessions({ project_id: pid, limit: 10_000 })) byToken.set(s.token, s);
      }
      const out = events.map((e) => {
        const d = e.data ? (JSON.parse(e.data) as Record<string, unknown>) : null;
        return {
          id: e.id,
          session_id: byToken.get(e.session ?? "")?.id ?? null,
          time: iso(e.client_ts ?? e.ts),
          action: e.name,
          data: d && Object.keys(d).length === 1 && "value" in d ? d.value : d,
        };
      });
      const rows = order(out, p.col, p.desc).slice(p.offset, p.limit === undefined ? undefined : p.offset + p.limit);
      return { count: rows.length, events: rows, status: 200 };
    }),
  );

  app.get("/", { schema: { hide: true } }, (_req, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .send(
        `<!doctype html><meta charset="utf-8"><title>Microticks (Clicktrail)</title><h1>Microticks API</h1><p>POST /sessions (consumer_key, ts), POST /sessions/stop (token, ts), POST /events (token, action, data, ts), GET /sessions, GET /events — served by Clicktrail; see /docs for its native API.</p>\n`,
      ),
  );
}
