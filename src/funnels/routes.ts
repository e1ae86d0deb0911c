import type { FastifyInstance } from "fastify";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import { badRequest } from "../errors.js";
import { errorResponses, idParams, intParam } from "../schemas.js";
import { isTimeZone, iso, parseTime, type Interval } from "../util/time.js";
import { eventNames, eventReport } from "./reports.js";
import type { FunnelQuery, FunnelService } from "./service.js";
import type { Analytics, PropertyAt } from "./source.js";
import type { SavedFunnel } from "./store.js";

export interface FunnelRouteDeps {
  auth: AuthService;
  funnels: FunnelService;
  analytics: Analytics;
}

const scalar = { type: ["string", "number", "boolean"] } as const;
const duration = {
  type: ["string", "number", "null"],
  description: 'a duration: "30m", "12h", "7d", "2w", a number of seconds, or null for none',
} as const;

export const funnelQuerySchema = {
  type: "object",
  additionalProperties: false,
  required: ["steps"],
  properties: {
    steps: {
      type: "array",
      minItems: 1,
      maxItems: 31,
      description: "event names in order (link clicks are `click`, tracking opens `open`), or {name, where: {data field: value}, source, link_id}",
      items: {
        anyOf: [
          { type: "string" },
          {
            type: "object",
            additionalProperties: false,
            required: ["name"],
            properties: {
              name: { type: "string" },
              where: { type: "object", additionalProperties: scalar },
              source: { type: "string", maxLength: 32, description: "only events from this source: link, campaign, tracking, api" },
              link_id: { type: "integer", minimum: 1, description: "only clicks on this link" },
            },
          },
        ],
      },
    },
    window: { ...duration, description: "conversion window measured from the first step (default 14d; null: none)" },
    step_window: { ...duration, description: "the longest time between two consecutive steps (default none)" },
    order: {
      type: "string",
      enum: ["ordered", "strict", "any"],
      description: "ordered (default): others may come between; strict: none may; any: order free",
    },
    exclusions: {
      type: "array",
      maxItems: 31,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name"],
        properties: { name: { type: "string" }, between: { type: "array", items: { type: "integer" }, description: "[a, b]: 0-based step indexes" } },
      },
    },
    from: { type: ["string", "number"], description: "attempts start from here (ISO 8601 or epoch ms)" },
    to: { type: ["string", "number"], description: "attempts start before here (exclusive)" },
    breakdown: {
      type: "object",
      additionalProperties: false,
      description: '{"event_field": "plan"} or {"property": "country", "at": "event" (its value then, default) | "now" | "ever"}',
      properties: { event_field: { type: "string" }, property: { type: "string" }, at: { type: "string", enum: ["event", "now", "ever"] } },
    },
    attribution: { type: "string", enum: ["first", "last"], description: "the breakdown reads the first step's event (default) or the last reached" },
    dropoff_sample: { type: "integer", minimum: 0, maximum: 100, description: "ids of visitors who dropped off, per step (default 10)" },
  },
} as const;

const stepSchema = {
  type: "object",
  properties: {
    name: { type: "string" },
    visitors: { type: "integer" },
    conversion_from_previous: { type: "number" },
    conversion_from_first: { type: "number" },
    median_ms_to_convert: { type: ["number", "null"] },
    p90_ms_to_convert: { type: ["number", "null"] },
    dropped_off_sample: { type: "array", items: { type: "string" } },
  },
} as const;

const resultSchema = {
  type: "object",
  properties: {
    funnel: { type: "object", additionalProperties: true },
    steps: { type: "array", items: stepSchema },
    breakdown: { type: "array", items: { type: "object", properties: { value: {}, steps: { type: "array", items: stepSchema } } } },
    meta: { type: "object", additionalProperties: true },
  },
} as const;

const savedSchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    description: { type: ["string", "null"] },
    query: { type: "object", additionalProperties: true },
    created_at: { type: "string" },
    updated_at: { type: "string" },
  },
} as const;

export const publicFunnel = (f: SavedFunnel) => ({ ...f, project_id: undefined, created_at: iso(f.created_at), updated_at: iso(f.updated_at) });

type IdParams = { Params: { id: string } };

interface ReportQuery {
  from?: string;
  to?: string;
  interval?: Interval;
  tz?: string;
  property?: string;
  at?: PropertyAt;
  where?: string;
  limit?: string;
}

export async function funnelRoutes(app: FastifyInstance, deps: FunnelRouteDeps) {
  const { auth, funnels, analytics } = deps;
  const read = requireScope(auth, "stats:read");
  const write = requireScope(auth, "funnels:write");
  const security = [{ bearer: [] }];
  const tags = ["funnels"];

  app.post<{ Body: FunnelQuery }>(
    "/api/v1/funnels/query",
    {
      schema: {
        tags,
        summary: "Run an ad-hoc funnel over every event of the project (link clicks, tracking opens and clicks, front-end events)",
        security,
        body: funnelQuerySchema,
        response: { 200: resultSchema, ...errorResponses },
      },
      onRequest: read,
    },
    async (req) => funnels.run(req.principal.projectId, req.body),
  );

  app.get(
    "/api/v1/funnels",
    {
      schema: {
        tags,
        summary: "List saved funnels",
        security,
        response: { 200: { type: "object", properties: { funnels: { type: "array", items: savedSchema } } } },
      },
      onRequest: read,
    },
    async (req) => ({ funnels: (await funnels.list(req.principal.projectId)).map(publicFunnel) }),
  );

  const savedBody = {
    name: { type: "string", minLength: 1, maxLength: 128, description: "unique within the project" },
    description: { type: ["string", "null"], maxLength: 4096 },
    query: funnelQuerySchema,
  } as const;

  app.post<{ Body: { name: string; description?: string | null; query: FunnelQuery } }>(
    "/api/v1/funnels",
    {
      schema: {
        tags,
        summary: "Save a funnel",
        security,
        body: { type: "object", additionalProperties: false, required: ["name", "query"], properties: savedBody },
        response: { 201: savedSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req, reply) => reply.code(201).send(publicFunnel(await funnels.create(req.principal.projectId, req.body))),
  );

  app.get<IdParams>(
    "/api/v1/funnels/:id",
    {
      schema: { tags, summary: "Get a saved funnel", security, params: idParams, response: { 200: savedSchema, ...errorResponses } },
      onRequest: read,
    },
    async (req) => publicFunnel(await funnels.get(req.principal.projectId, Number(req.params.id))),
  );

  app.patch<IdParams & { Body: { name?: string; description?: string | null; query?: FunnelQuery } }>(
    "/api/v1/funnels/:id",
    {
      schema: {
        tags,
        summary: "Change a saved funnel",
        security,
        params: idParams,
        body: { type: "object", additionalProperties: false, minProperties: 1, properties: savedBody },
        response: { 200: savedSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req) => publicFunnel(await funnels.update(req.principal.projectId, Number(req.params.id), req.body)),
  );

  app.delete<IdParams>(
    "/api/v1/funnels/:id",
    { schema: { tags, summary: "Delete a saved funnel", security, params: idParams }, onRequest: write },
    async (req, reply) => {
      await funnels.delete(req.principal.projectId, Number(req.params.id));
      return reply.code(204).send();
    },
  );

  app.get<IdParams & { Querystring: { from?: string; to?: string } }>(
    "/api/v1/funnels/:id/results",
    {
      schema: {
        tags,
        summary: "Run a saved funnel (optionally over another time range)",
        security,
        params: idParams,
        querystring: { type: "object", additionalProperties: false, properties: { from: { type: "string" }, to: { type: "string" } } },
        response: { 200: resultSchema, ...errorResponses },
      },
      onRequest: read,
    },
    async (req) => funnels.results(req.principal.projectId, Number(req.params.id), req.query),
  );

  // ---------------------------------------------------------------- event reports
  app.get(
    "/api/v1/reports/events",
    {
      schema: {
        tags,
        summary: "Every event name of the project with its count and unique visitors",
        security,
        response: {
          200: {
            type: "object",
            properties: {
              events: {
                type: "array",
                items: { type: "object", properties: { name: { type: "string" }, total: { type: "integer" }, visitors: { type: "integer" } } },
              },
              properties: { type: "array", items: { type: "string" } },
            },
          },
        },
      },
      onRequest: read,
    },
    async (req) => {
      const p = await analytics.project(req.principal.projectId);
      return { events: eventNames(p), properties: [...p.propertyNames.keys()].sort() };
    },
  );

  const counts = { total: { type: "integer" }, visitors: { type: "integer" } } as const;
  const preceded = { type: "array", items: { type: "object", properties: { name: { type: "string" }, ...counts } } } as const;
  app.get<{ Params: { name: string }; Querystring: ReportQuery }>(
    "/api/v1/reports/events/:name",
    {
      schema: {
        tags,
        summary: "One event: total, unique visitors, series, what preceded it, per value of a visitor property",
        security,
        params: { type: "object", properties: { name: { type: "string", maxLength: 200 } } },
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            from: { type: "string", description: "ISO 8601 or epoch ms" },
            to: { type: "string" },
            interval: { type: "string", enum: ["hour", "day", "week"], description: "series buckets (default day)" },
            tz: { type: "string", description: "IANA time zone of the buckets (default UTC)" },
            property: { type: "string", maxLength: 128, description: "segment by this visitor property" },
            at: {
              type: "string",
              enum: ["event", "now", "ever"],
              description: "the property's value at the event (default), now, or any value ever held",
            },
            where: { type: "string", maxLength: 2048, description: 'JSON object of data field → value, e.g. {"plan":"pro"}' },
            limit: { type: "string", pattern: "^[0-9]{1,3}$", description: "preceding events and property values listed (default 20)" },
          },
        },
        response: {
          200: {
            type: "object",
            properties: {
              name: { type: "string" },
              ...counts,
              interval: { type: "string" },
              tz: { type: "string" },
              series: { type: "array", items: { type: "object", properties: { t: { type: "string" }, ...counts } } },
              preceded_by: preceded,
              property: {
                type: "object",
                properties: {
                  name: { type: "string" },
                  at: { type: "string" },
                  values: { type: "array", items: { type: "object", properties: { value: {}, ...counts, preceded_by: preceded } } },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
      onRequest: read,
    },
    async (req) => {
      const q = req.query;
      const tz = q.tz ?? "UTC";
      if (!isTimeZone(tz)) throw badRequest(`tz: unknown time zone ${JSON.stringify(tz)} (an IANA name such as Europe/Berlin)`, { field: "tz" });
      let where: Record<string, string | number | boolean> | undefined;
      if (q.where !== undefined) {
        try {
          where = JSON.parse(q.where) as typeof where;
        } catch {
          throw badRequest("where: a JSON object of data field → value", { field: "where" });
        }
        if (
          !where ||
          typeof where !== "object" ||
          Array.isArray(where) ||
          Object.values(where).some((v) => !["string", "number", "boolean"].includes(typeof v))
        )
          throw badRequest("where: a JSON object of data field → string, number or boolean", { field: "where" });
      }
      const p = await analytics.project(req.principal.projectId);
      return eventReport(p, {
        name: req.params.name,
        where,
        from: parseTime(q.from, "from"),
        to: parseTime(q.to, "to"),
        interval: q.interval ?? "day",
        tz,
        property: q.property,
        at: q.at ?? "event",
        limit: intParam(q.limit, "limit", 1, 500) ?? 20,
      });
    },
  );
}
