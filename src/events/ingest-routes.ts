import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import type { Config } from "../config.js";
import { AppError, badRequest, notFound } from "../errors.js";
import { idParams, intParam, statsQuerySchema, statsResponse } from "../schemas.js";
import type { StatsQuery, StatsService } from "./stats.js";
import type { App, IngestSession, StoredEvent, Store } from "../store/port.js";
import type { TrustFn } from "../util/net.js";
import { iso, parseTime } from "../util/time.js";
import type { GeoIp } from "./geoip.js";
import { requestFacts, type IncomingEvent, type IngestService, type RequestFacts } from "./ingest.js";

export interface IngestRouteDeps {
  config: Config;
  auth: AuthService;
  store: Store;
  ingest: IngestService;
  stats: StatsService;
  trust: TrustFn;
  geoip: GeoIp | null;
}

export const publicApp = (a: App) => ({
  id: a.id,
  name: a.name,
  key: a.key,
  idle_timeout_ms: a.idle_timeout_ms,
  created_at: iso(a.created_at),
  disabled_at: iso(a.disabled_at),
});

const publicSession = (s: IngestSession) => ({
  id: s.id,
  app_id: s.app_id,
  token: s.token,
  visitor: s.visitor,
  started_at: iso(s.started_at),
  client_started_at: iso(s.client_started_at),
  last_event_at: iso(s.last_event_at),
  stopped_at: iso(s.stopped_at),
  stop_reason: s.stop_reason,
  duration_ms: (s.stopped_at ?? s.last_event_at) - s.started_at,
  event_count: s.event_count,
});

export const publicEvent = (e: StoredEvent) => ({
  id: e.id,
  ts: iso(e.ts),
  client_ts: iso(e.client_ts),
  name: e.name,
  app_id: e.app_id ?? null,
  session: e.session,
  visitor: e.visitor,
  source: e.source,
  data: e.data ? JSON.parse(e.data) : null,
  ip: e.ip,
  user_agent: e.ua,
  referrer: e.referrer,
  browser: e.browser,
  os: e.os,
  device: e.device,
  is_bot: e.is_bot,
  country: e.country,
});

const cursorOf = (id: number) => Buffer.from(`e:${id}`).toString("base64url");
function decodeCursor(c: string | undefined): number | undefined {
  if (c === undefined) return undefined;
  const m = /^e:(\d+)$/.exec(Buffer.from(c, "base64url").toString());
  if (!m) throw badRequest("cursor is not one this API returned", { field: "cursor" });
  return Number(m[1]);
}

/**
 * Front ends' sessions and events: ingest with a public key (CORS open, JSON or text/plain JSON for sendBeacon),
 * apps (their keys), and reading sessions and events back.
 */
/**
 * Makes an encapsulated context take POSTs from any web page (the public ingest key's routes): JSON sent as text/plain
 * (navigator.sendBeacon cannot set a type, and text/plain needs no CORS preflight), CORS headers on every answer, and
 * the preflight of each path.
 */
export function publicPosts(pub: FastifyInstance, paths: string[]): void {
  pub.addContentTypeParser("text/plain", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      done(Object.assign(new Error(`the body is not valid JSON: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
  pub.addHook("onSend", async (req, reply, payload) => {
    reply.header("access-control-allow-origin", req.headers.origin ?? "*");
    reply.header("access-control-expose-headers", "Retry-After");
    reply.header("vary", "Origin");
    reply.header("cache-control", "no-store");
    return payload;
  });
  for (const path of paths)
    pub.options(path, { schema: { hide: true } }, (_req, reply) =>
      reply
        .code(204)
        .header("access-control-allow-methods", "POST, OPTIONS")
        .header("access-control-allow-headers", "content-type, x-clicktrail-key")
        .header("access-control-max-age", "86400")
        .send(),
    );
}

export async function ingestRoutes(app: FastifyInstance, deps: IngestRouteDeps) {
  const { ingest, config } = deps;
  const admin = requireScope(deps.auth, "admin");
  const read = requireScope(deps.auth, "stats:read");
  const security = [{ bearer: [] }];

  const facts = (req: FastifyRequest): RequestFacts => requestFacts(req.raw, config.ipMode, deps.trust, deps.geoip);

  // ---------------------------------------------------------------- ingest (public keys, any origin)
  await app.register(async (pub) => {
    publicPosts(pub, ["/api/v1/sessions", "/api/v1/sessions/:token/stop", "/api/v1/events"]);

    const keyOf = (req: FastifyRequest) => (req.body as { key?: unknown } | undefined)?.key ?? req.headers["x-clicktrail-key"];
    const limited = (reply: FastifyReply, e: unknown) => {
      if (e instanceof AppError && e.status === 429) reply.header("retry-after", "1");
      throw e;
    };

    pub.post<{ Body: { key?: string; ts?: string; visitor?: string } }>(
      "/api/v1/sessions",
      {
        schema: {
          tags: ["events"],
          summary: "Start a session of an app's front end (ingest key): its token goes with the session's events",
          body: {
            type: "object",
            additionalProperties: false,
            properties: {
              key: { type: "string", maxLength: 128 },
              ts: { type: "string", maxLength: 64 },
              visitor: { type: "string", maxLength: 128 },
            },
          },
        },
      },
      async (req, reply) => {
        try {
          const a = await ingest.appOf(keyOf(req));
          const s = await ingest.startSession(a, req.body ?? {}, facts(req));
          return reply.code(201).send({ token: s.token, id: s.id, idle_timeout_ms: a.idle_timeout_ms });
        } catch (e) {
          return limited(reply, e);
        }
      },
    );

    pub.post<{ Params: { token: string }; Body: { key?: string; ts?: string } }>(
      "/api/v1/sessions/:token/stop",
      {
        schema: {
          tags: ["events"],
          summary: "Stop a session (410 when it stopped already by its idle time-out)",
          params: { type: "object", properties: { token: { type: "string", maxLength: 64 } } },
          body: {
            type: ["object", "null"],
            additionalProperties: false,
            properties: { key: { type: "string", maxLength: 128 }, ts: { type: "string", maxLength: 64 } },
          },
        },
      },
      async (req, reply) => {
        try {
          const a = await ingest.appOf(keyOf(req));
          const s = await ingest.stopSession(a, req.params.token);
          return { stopped: true, id: s.id };
        } catch (e) {
          return limited(reply, e);
        }
      },
    );

    pub.post<{ Body: IncomingEvent & { key?: string; events?: IncomingEvent[] } }>(
      "/api/v1/events",
      {
        schema: {
          tags: ["events"],
          summary: "Record one event or a batch (up to 1,000); 201 once every one is committed",
          body: {
            type: "object",
            properties: {
              key: { type: "string", maxLength: 128 },
              events: { type: "array", maxItems: 1000, items: { type: "object" } },
              name: { type: "string" },
              data: {},
              ts: { type: "string" },
              visitor: { type: "string" },
              session: { type: "string" },
            },
          },
        },
      },
      async (req, reply) => {
        try {
          const body = req.body ?? {};
          const items = body.events ?? [body];
          const a = await ingest.appOf(keyOf(req), 1);
          const n = await ingest.ingest(a, items, facts(req), body.events ? { visitor: body.visitor, session: body.session } : {}, !body.events);
          return reply.code(201).send({ accepted: n });
        } catch (e) {
          return limited(reply, e);
        }
      },
    );
  });

  // ---------------------------------------------------------------- apps (admin)
  app.post<{ Body: { name: string; idle_timeout_ms?: number } }>(
    "/api/v1/apps",
    {
      schema: {
        tags: ["events"],
        summary: "Create an app: a public ingest key for a front end",
        security,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name"],
          properties: {
            name: { type: "string", maxLength: 128 },
            idle_timeout_ms: { type: "integer", description: "sessions stop after this long without events (default 30 minutes)" },
          },
        },
      },
      onRequest: admin,
    },
    async (req, reply) => reply.code(201).send(publicApp(await ingest.createApp(req.principal.projectId, req.body.name, req.body.idle_timeout_ms))),
  );

  app.get("/api/v1/apps", { schema: { tags: ["events"], summary: "The project's apps", security }, onRequest: admin }, async (req) => ({
    apps: (await deps.store.listApps(req.principal.projectId)).map(publicApp),
  }));

  app.post<{ Params: { id: string }; Body: { disabled?: boolean } }>(
    "/api/v1/apps/:id/disable",
    {
      schema: { tags: ["events"], summary: "Disable an app's ingest key (its events are refused with 403)", security, params: idParams },
      onRequest: admin,
    },
    async (req) => publicApp(await ingest.setDisabled(req.principal.projectId, Number(req.params.id), true)),
  );

  app.post<{ Params: { id: string } }>(
    "/api/v1/apps/:id/enable",
    { schema: { tags: ["events"], summary: "Enable an app's ingest key again", security, params: idParams }, onRequest: admin },
    async (req) => publicApp(await ingest.setDisabled(req.principal.projectId, Number(req.params.id), false)),
  );

  app.get<{ Params: { id: string }; Querystring: StatsQuery }>(
    "/api/v1/apps/:id/stats",
    {
      schema: {
        tags: ["stats"],
        summary: "An app's events from the rollups: count (as clicks), visitors, series, and breakdowns (name: events by name)",
        security,
        params: idParams,
        querystring: statsQuerySchema,
        response: { 200: statsResponse },
      },
      onRequest: read,
    },
    async (req) => {
      const a = await deps.store.getApp(req.principal.projectId, Number(req.params.id));
      if (!a) throw notFound(`app ${req.params.id}`);
      await ingest.flush();
      return deps.stats.stats("app", a.id, req.query);
    },
  );

  // ---------------------------------------------------------------- reading
  /** open live tails: ended when the server stops, so a shutdown does not wait for their clients */
  const streams = new Set<() => void>();
  app.addHook("preClose", async () => {
    for (const end of [...streams]) end();
  });
  const listQuery = {
    type: "object",
    additionalProperties: false,
    properties: {
      app: { type: "string", pattern: "^[0-9]{1,15}$" },
      visitor: { type: "string", maxLength: 128 },
      name: { type: "string", maxLength: 64 },
      session: { type: "string", maxLength: 64 },
      ip: { type: "string", maxLength: 64 },
      from: { type: "string" },
      to: { type: "string" },
      order: { type: "string", enum: ["newest", "oldest"] },
      limit: { type: "string", pattern: "^[0-9]{1,4}$" },
      cursor: { type: "string", maxLength: 64 },
    },
  } as const;
  type ListQ = {
    app?: string;
    visitor?: string;
    name?: string;
    session?: string;
    ip?: string;
    from?: string;
    to?: string;
    order?: string;
    limit?: string;
    cursor?: string;
  };

  app.get<{ Querystring: ListQ }>(
    "/api/v1/events",
    {
      schema: { tags: ["events"], summary: "Events (newest first by default), filtered, with cursor pagination", security, querystring: listQuery },
      onRequest: read,
    },
    async (req) => {
      const q = req.query;
      const limit = intParam(q.limit, "limit", 1, 1000) ?? 100;
      const newest = q.order !== "oldest";
      const cursor = decodeCursor(q.cursor);
      const rows = await deps.store.listEvents({
        project_id: req.principal.projectId,
        app_id: intParam(q.app, "app", 1, Number.MAX_SAFE_INTEGER),
        visitor: q.visitor,
        name: q.name,
        session: q.session,
        ip: q.ip,
        from: parseTime(q.from, "from"),
        to: parseTime(q.to, "to"),
        desc: newest,
        ...(newest ? { before_id: cursor } : { after_id: cursor }),
        limit: limit + 1,
      });
      const more = rows.length > limit;
      if (more) rows.pop();
      return { events: rows.map(publicEvent), next_cursor: more ? cursorOf(rows[rows.length - 1]!.id) : null };
    },
  );

  app.get<{ Querystring: { app?: string; name?: string } }>(
    "/api/v1/events/stream",
    {
      schema: {
        tags: ["events"],
        summary: "Live tail of new events as Server-Sent Events (one `event` message per event; a comment every 15 s keeps it open)",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            app: { type: "string", pattern: "^[0-9]{1,15}$" },
            name: { type: "string", maxLength: 64 },
            project: {
              type: "string",
              pattern: "^[0-9]{1,15}$",
              description: "the project (dashboard sessions; an EventSource cannot send X-Project-Id)",
            },
          },
        },
      },
      onRequest: read,
    },
    async (req, reply) => {
      const projectId = req.principal.projectId;
      const appId = intParam(req.query.app, "app", 1, Number.MAX_SAFE_INTEGER);
      const name = req.query.name;
      let last = (await deps.store.listEvents({ project_id: projectId, desc: true, limit: 1 }))[0]?.id ?? 0;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      // HEAD: the headers and nothing more (node:http sends a HEAD answer's headers only when it ends)
      if (req.method === "HEAD") return void res.end();
      res.flushHeaders();
      res.write(": connected\n\n");
      let busy = false;
      let idle = 0;
      const tick = setInterval(async () => {
        if (busy) return;
        busy = true;
        try {
          const rows = await deps.store.listEvents({ project_id: projectId, app_id: appId, name, after_id: last, limit: 500 });
          for (const e of rows) res.write(`id: ${e.id}\nevent: event\ndata: ${JSON.stringify(publicEvent(e))}\n\n`);
          if (rows.length) {
            last = rows[rows.length - 1]!.id;
            idle = 0;
          } else if (++idle % 30 === 0) res.write(": keep-alive\n\n");
        } catch {
          res.write(": the database is not reachable; retrying\n\n");
        } finally {
          busy = false;
        }
      }, 500);
      tick.unref();
      const end = () => {
        clearInterval(tick);
        streams.delete(end);
        res.end();
      };
      streams.add(end);
      req.raw.on("close", () => {
        clearInterval(tick);
        streams.delete(end);
      });
    },
  );

  app.get<{ Querystring: ListQ }>(
    "/api/v1/sessions",
    {
      schema: { tags: ["events"], summary: "Sessions (newest first): duration, event count, how they stopped", security, querystring: listQuery },
      onRequest: read,
    },
    async (req) => {
      await ingest.flush();
      const q = req.query;
      const limit = intParam(q.limit, "limit", 1, 1000) ?? 100;
      const rows = await deps.store.listIngestSessions({
        project_id: req.principal.projectId,
        app_id: intParam(q.app, "app", 1, Number.MAX_SAFE_INTEGER),
        visitor: q.visitor,
        from: parseTime(q.from, "from"),
        to: parseTime(q.to, "to"),
        before_id: decodeCursor(q.cursor),
        limit: limit + 1,
      });
      const more = rows.length > limit;
      if (more) rows.pop();
      return { sessions: rows.map(publicSession), next_cursor: more ? cursorOf(rows[rows.length - 1]!.id) : null };
    },
  );
}
