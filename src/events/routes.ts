import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import type { DomainService } from "../links/domains.js";
import { intParam, statsQuerySchema, statsResponse } from "../schemas.js";
import type { Store } from "../store/port.js";
import { parseTime } from "../util/time.js";
import { exportEvents } from "./export.js";
import type { StatsQuery, StatsService } from "./stats.js";

export interface EventRouteDeps {
  auth: AuthService;
  store: Store;
  stats: StatsService;
  domains: DomainService;
}

interface ExportQuery {
  format?: "csv" | "ndjson";
  link_id?: string;
  domain?: string;
  from?: string;
  to?: string;
  name?: string;
}

export async function eventRoutes(app: FastifyInstance, deps: EventRouteDeps) {
  const statsRead = requireScope(deps.auth, "stats:read");
  const security = [{ bearer: [] }];

  app.get<{ Querystring: StatsQuery }>(
    "/api/v1/stats",
    {
      schema: {
        tags: ["stats"],
        summary: "Clicks, visitors, series and breakdowns of the whole project (plus orphan visits)",
        security,
        querystring: statsQuerySchema,
        response: { 200: statsResponse },
      },
      onRequest: statsRead,
    },
    async (req) => deps.stats.stats("project", req.principal.projectId, req.query, "orphan_project"),
  );

  app.get<{ Querystring: ExportQuery }>(
    "/api/v1/clicks/export",
    {
      schema: {
        tags: ["stats"],
        summary: "Raw clicks (and orphan visits) of the project, streamed as CSV or NDJSON",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            format: { type: "string", enum: ["csv", "ndjson"] },
            link_id: { type: "string", pattern: "^[0-9]{1,15}$" },
            domain: { type: "string", maxLength: 253 },
            name: { type: "string", maxLength: 64, description: "event name (default: every link event: click, click_refused)" },
            from: { type: "string" },
            to: { type: "string" },
          },
        },
      },
      onRequest: statsRead,
    },
    async (req, reply) => {
      const q = req.query;
      const format = q.format ?? "csv";
      const from = parseTime(q.from, "from");
      const to = parseTime(q.to, "to");
      const filter = {
        project_id: req.principal.projectId,
        link_id: intParam(q.link_id, "link_id", 1, Number.MAX_SAFE_INTEGER),
        domain_id: q.domain ? (await deps.domains.byName(req.principal.projectId, q.domain)).id : undefined,
        name: q.name,
        from,
        to,
      };
      reply
        .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson")
        .header("Content-Disposition", `attachment; filename="clicks.${format === "csv" ? "csv" : "ndjson"}"`);
      return reply.send(Readable.from(exportEvents(deps.store, filter, format)));
    },
  );
}
