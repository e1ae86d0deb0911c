import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import type { IngestService } from "../events/ingest.js";
import { publicEvent, publicPosts } from "../events/ingest-routes.js";
import { errorResponses, intParam } from "../schemas.js";
import { parseTime } from "../util/time.js";
import { checkVisitorId, MAX_VISITOR_ID, type PropertyInput, type VisitorService } from "./service.js";

export interface VisitorRouteDeps {
  auth: AuthService;
  ingest: IngestService;
  visitors: VisitorService;
}

const visitorParams = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: MAX_VISITOR_ID } } } as const;
const summarySchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    first_seen: { type: ["string", "null"] },
    last_seen: { type: ["string", "null"] },
    events: { type: "integer" },
  },
} as const;

export async function visitorRoutes(app: FastifyInstance, deps: VisitorRouteDeps) {
  const { auth, ingest, visitors } = deps;
  const read = requireScope(auth, "stats:read");
  const writeByKey = requireScope(auth, "events:write");
  const security = [{ bearer: [] }];
  const tags = ["visitors"];

  /**
   * Writes come from servers (an API key with events:write) or from the browser tracker (the app's public ingest key,
   * in `key` or X-Clicktrail-Key), like events.
   */
  const writer = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.headers.authorization || /(?:^|;\s*)ct_session=/.test(req.headers.cookie ?? "")) return writeByKey(req, reply);
    const key = req.headers["x-clicktrail-key"];
    const a = await ingest.appOf(Array.isArray(key) ? key[0] : key);
    req.principal = { keyId: 0, projectId: a.project_id, scopes: new Set(["events:write"]) };
  };
  // the ingest key may also come in the body (sendBeacon cannot set headers): checked once the body is parsed
  const writerWithBody = async (req: FastifyRequest, reply: FastifyReply) => {
    const bodyKey = (req.body as { key?: unknown } | undefined)?.key;
    if (!req.headers.authorization && !req.headers["x-clicktrail-key"] && bodyKey !== undefined) {
      const a = await ingest.appOf(bodyKey);
      req.principal = { keyId: 0, projectId: a.project_id, scopes: new Set(["events:write"]) };
      return;
    }
    return writer(req, reply);
  };

  await app.register(async (pub) => {
    publicPosts(pub, ["/api/v1/identify", "/api/v1/visitors/:id/properties"]);

    pub.post<{ Body: { anonymous: string; visitor: string; key?: string } }>(
      "/api/v1/identify",
      {
        schema: {
          tags,
          summary: "Merge an anonymous visitor into a known one: both ids' events and properties are one visitor's from now on (and backwards)",
          description: "Authenticated by an API key with events:write, or an app's public ingest key (key in the body or X-Clicktrail-Key).",
          security,
          body: {
            type: "object",
            additionalProperties: false,
            required: ["anonymous", "visitor"],
            properties: {
              anonymous: { type: "string", minLength: 1, maxLength: MAX_VISITOR_ID, description: "the id used so far (e.g. the tracker's)" },
              visitor: { type: "string", minLength: 1, maxLength: MAX_VISITOR_ID, description: "the known id (e.g. the application's user id)" },
              key: { type: "string", description: "an ingest key" },
            },
          },
          response: {
            200: { type: "object", properties: { visitor: { type: "string" }, merged: { type: "boolean" } } },
            409: { $ref: "Problem#" },
            ...errorResponses,
          },
        },
        preHandler: writerWithBody,
      },
      async (req) => visitors.identify(req.principal.projectId, req.body.anonymous, req.body.visitor),
    );

    pub.post<{ Params: { id: string }; Body: PropertyInput & { key?: string; ts?: string | number } }>(
      "/api/v1/visitors/:id/properties",
      {
        schema: {
          tags,
          summary: "Set, add or unset a visitor's properties (typed JSON values, kept with their history)",
          description:
            "set replaces every value of a property, add gives the visitor one more value (a visitor may hold several), unset removes them (a list of names) or one value ({name: value}). Authenticated like identify.",
          security,
          params: visitorParams,
          body: {
            type: "object",
            additionalProperties: false,
            minProperties: 1,
            properties: {
              set: { type: "object", maxProperties: 100 },
              add: { type: "object", maxProperties: 100 },
              unset: { type: ["array", "object"], maxItems: 100, maxProperties: 100 },
              ts: { type: ["string", "number"], description: "when the change happened (default now): ISO 8601 or epoch ms" },
              key: { type: "string", description: "an ingest key" },
            },
          },
          response: { 200: { type: "object", properties: { visitor: { type: "string" }, changes: { type: "integer" } } }, ...errorResponses },
        },
        preHandler: writerWithBody,
      },
      async (req) => {
        const id = checkVisitorId(req.params.id, "id");
        const ts = parseTime(req.body.ts, "ts");
        return visitors.setProperties(req.principal.projectId, id, { set: req.body.set, add: req.body.add, unset: req.body.unset, ts });
      },
    );
  });

  app.get<{ Querystring: { q?: string; limit?: string } }>(
    "/api/v1/visitors",
    {
      schema: {
        tags,
        summary: "Visitors, most recently active first",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            q: { type: "string", maxLength: MAX_VISITOR_ID, description: "ids containing this" },
            limit: { type: "string", pattern: "^[0-9]{1,3}$" },
          },
        },
        response: { 200: { type: "object", properties: { visitors: { type: "array", items: summarySchema } } }, ...errorResponses },
      },
      onRequest: read,
    },
    async (req) => ({
      visitors: await visitors.list(req.principal.projectId, {
        q: req.query.q || undefined,
        limit: intParam(req.query.limit, "limit", 1, 500) ?? 50,
      }),
    }),
  );

  app.get<{ Params: { id: string } }>(
    "/api/v1/visitors/:id",
    {
      schema: {
        tags,
        summary: "One visitor: merged ids, activity, properties now and their history, event counts",
        security,
        params: visitorParams,
        response: {
          200: {
            type: "object",
            properties: {
              ...summarySchema.properties,
              requested: { type: "string" },
              aliases: { type: "array", items: { type: "string" } },
              properties: { type: "object", additionalProperties: { type: "array" } },
              property_history: {
                type: "array",
                items: { type: "object", properties: { name: { type: "string" }, op: { type: "string" }, value: {}, ts: { type: "string" } } },
              },
              event_counts: { type: "object", additionalProperties: { type: "integer" } },
            },
          },
          ...errorResponses,
        },
      },
      onRequest: read,
    },
    async (req) => visitors.profile(req.principal.projectId, req.params.id),
  );

  app.get<{ Params: { id: string }; Querystring: { before?: string; limit?: string } }>(
    "/api/v1/visitors/:id/events",
    {
      schema: {
        tags,
        summary: "A visitor's events (its merged ids' too), newest first",
        security,
        params: visitorParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            before: { type: "string", description: "events before this time (the previous page's next_before)" },
            limit: { type: "string", pattern: "^[0-9]{1,3}$" },
          },
        },
        response: {
          200: {
            type: "object",
            properties: {
              events: { type: "array", items: { type: "object", additionalProperties: true } },
              next_before: { type: ["string", "null"] },
            },
          },
          ...errorResponses,
        },
      },
      onRequest: read,
    },
    async (req) => {
      // the previous page's next_before ("<ms>.<event id>"), or a time
      const cursor = /^(\d{1,15})\.(\d{1,15})$/.exec(req.query.before ?? "");
      const before = cursor
        ? { ts: Number(cursor[1]), id: Number(cursor[2]) }
        : req.query.before
          ? { ts: parseTime(req.query.before, "before")! }
          : undefined;
      const r = await visitors.timeline(req.principal.projectId, req.params.id, { before, limit: intParam(req.query.limit, "limit", 1, 500) ?? 50 });
      return { events: r.events.map(publicEvent), next_before: r.next_before };
    },
  );
}
