import type { FastifyInstance } from "fastify";
import QRCode from "qrcode";
import { Ajv } from "ajv";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import { AppError, problem } from "../errors.js";
import type { StatsQuery, StatsService } from "../events/stats.js";
import { errorResponses, idParams, intParam, statsQuerySchema, statsResponse } from "../schemas.js";
import type { Domain } from "../store/port.js";
import { iso } from "../util/time.js";
import type { DomainInput, DomainService } from "./domains.js";
import { publicLink, type LinkInput, type LinkService, type ListQuery } from "./links.js";
import { bulkBody, domainBody, domainSchema, linkCreateBody, linkListQuery, linkPatchBody, linkSchema } from "./schemas.js";

/**
 * How many items of a bulk request are created at once. On PostgreSQL each link is a transaction of its own, whose commit
 * waits for the disk; several under way share those waits (PostgreSQL flushes their commits together). Measured, 5,000
 * links in requests of 1,000: one at a time 448 links a second, four at once 1,013–1,108 (eight: 1,211–1,326, but eight
 * of the pool's ten connections). SQLite's commits are in-process: unchanged, 2,950–3,262.
 */
const BULK_CONCURRENCY = 4;

export interface LinkRouteDeps {
  auth: AuthService;
  domains: DomainService;
  links: LinkService;
  stats: StatsService;
}

export const publicDomain = (d: Domain) => ({
  id: d.id,
  hostname: d.hostname,
  fallback_url: d.fallback_url,
  created_at: iso(d.created_at),
  updated_at: iso(d.updated_at),
});

type IdParams = { Params: { id: string } };

export async function linkRoutes(app: FastifyInstance, deps: LinkRouteDeps) {
  const { auth, domains, links, stats } = deps;
  const read = requireScope(auth, "links:read");
  const write = requireScope(auth, "links:write");
  const statsRead = requireScope(auth, "stats:read");
  const security = [{ bearer: [] }];

  // ---- domains
  app.post<{ Body: DomainInput }>(
    "/api/v1/domains",
    {
      schema: {
        tags: ["domains"],
        summary: "Register a hostname to serve links on",
        security,
        body: domainBody,
        response: { 201: domainSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req, reply) => reply.code(201).send(publicDomain(await domains.create(req.principal.projectId, req.body))),
  );

  app.get(
    "/api/v1/domains",
    {
      schema: {
        tags: ["domains"],
        summary: "List the project's domains",
        security,
        response: { 200: { type: "object", properties: { domains: { type: "array", items: domainSchema } } } },
      },
      onRequest: read,
    },
    async (req) => ({ domains: (await domains.list(req.principal.projectId)).map(publicDomain) }),
  );

  app.get<IdParams>(
    "/api/v1/domains/:id",
    {
      schema: { tags: ["domains"], summary: "Get one domain", security, params: idParams, response: { 200: domainSchema, ...errorResponses } },
      onRequest: read,
    },
    async (req) => publicDomain(await domains.get(req.principal.projectId, Number(req.params.id))),
  );

  app.patch<IdParams & { Body: DomainInput }>(
    "/api/v1/domains/:id",
    {
      schema: {
        tags: ["domains"],
        summary: "Change a domain's hostname or fallback",
        security,
        params: idParams,
        body: { ...domainBody, minProperties: 1 },
        response: { 200: domainSchema, ...errorResponses },
      },
      onRequest: write,
    },
    async (req) => publicDomain(await domains.update(req.principal.projectId, Number(req.params.id), req.body)),
  );

  app.delete<IdParams>(
    "/api/v1/domains/:id",
    {
      schema: { tags: ["domains"], summary: "Delete a domain that has no links", security, params: idParams },
      onRequest: write,
    },
    async (req, reply) => {
      await domains.delete(req.principal.projectId, Number(req.params.id));
      return reply.code(204).send();
    },
  );

  app.get<IdParams & { Querystring: StatsQuery }>(
    "/api/v1/domains/:id/stats",
    {
      schema: {
        tags: ["stats"],
        summary: "Clicks, visitors, series and breakdowns of a domain (plus its orphan visits)",
        security,
        params: idParams,
        querystring: statsQuerySchema,
        response: { 200: statsResponse },
      },
      onRequest: statsRead,
    },
    async (req) => {
      const d = await domains.get(req.principal.projectId, Number(req.params.id));
      return stats.stats("domain", d.id, req.query, "orphan_domain");
    },
  );

  // ---- links
  app.post<{ Body: LinkInput }>(
    "/api/v1/links",
    {
      schema: {
        tags: ["links"],
        summary: "Create a link",
        security,
        body: linkCreateBody,
        response: { 201: linkSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req, reply) => reply.code(201).send(publicLink(await links.create(req.principal.projectId, req.body))),
  );

  /** one item of a bulk request's answer */
  type BulkResult = { index: number; status: number; link?: ReturnType<typeof publicLink>; error?: ReturnType<typeof problem> };
  const validateItem = new Ajv({ allErrors: false, strict: false, allowUnionTypes: true }).compile(linkCreateBody);
  app.post<{ Body: { links: LinkInput[] } }>(
    "/api/v1/links/bulk",
    {
      schema: {
        tags: ["links"],
        summary: "Create up to 1,000 links; one result per item, in order",
        security,
        body: bulkBody,
        response: {
          200: {
            type: "object",
            properties: {
              created: { type: "integer" },
              failed: { type: "integer" },
              results: {
                type: "array",
                items: {
                  type: "object",
                  properties: { index: { type: "integer" }, status: { type: "integer" }, link: linkSchema, error: { $ref: "Problem#" } },
                },
              },
            },
          },
        },
      },
      onRequest: write,
    },
    async (req) => {
      const items = req.body.links;
      const results: BulkResult[] = new Array(items.length);
      let created = 0;
      const invalid = (index: number): BulkResult => {
        const e = validateItem.errors![0]!;
        const params = e.params as { missingProperty?: string; additionalProperty?: string };
        const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, ".") : (params.missingProperty ?? params.additionalProperty ?? "");
        const detail =
          e.keyword === "additionalProperties"
            ? `links[${index}] has an unknown field ${JSON.stringify(where)}`
            : `links[${index}]${where ? "." + where : ""} ${e.message}`;
        return { index, status: 400, error: problem(400, "validation", detail, { field: where }) };
      };
      const create = async (index: number, item: LinkInput) => {
        try {
          results[index] = { index, status: 201, link: publicLink(await links.create(req.principal.projectId, item)) };
          created++;
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          results[index] = { index, status: err.status, error: problem(err.status, err.type, `links[${index}]: ${err.message}`, err.extra) };
        }
      };
      // A few items under way at once, taken in order (see BULK_CONCURRENCY). Items naming the same slug are created one
      // after the other, in their order, so the first one gets it, as when every item waited for the one before.
      const lastOfSlug = new Map<string, Promise<void>>();
      let next = 0;
      let failure: { err: unknown } | null = null;
      const worker = async () => {
        while (next < items.length && failure === null) {
          const index = next++;
          const item: LinkInput = items[index]!;
          if (!validateItem(items[index])) {
            results[index] = invalid(index);
            continue;
          }
          // (compared without case: two slugs that differ only in case wait too, which costs nothing but a moment)
          const slug = typeof item.slug === "string" ? item.slug.toLowerCase() : null;
          const before = slug === null ? undefined : lastOfSlug.get(slug);
          const done = before ? before.then(() => create(index, item)) : create(index, item);
          // (the next item naming this slug waits for this one to be done, whatever became of it)
          const settled = done.catch(() => {});
          if (slug !== null) lastOfSlug.set(slug, settled);
          try {
            await done;
          } catch (err) {
            // (not a refusal of the item: the request fails, once the items under way are done, and takes no more)
            failure ??= { err };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(BULK_CONCURRENCY, items.length) }, worker));
      if (failure !== null) throw (failure as { err: unknown }).err;
      return { created, failed: items.length - created, results };
    },
  );

  app.get<{ Querystring: Omit<ListQuery, "limit" | "campaign_id"> & { limit?: string; campaign_id?: string } }>(
    "/api/v1/links",
    {
      schema: {
        tags: ["links"],
        summary: "List links (newest first) with filters and cursor pagination",
        security,
        querystring: linkListQuery,
        response: { 200: { type: "object", properties: { links: { type: "array", items: linkSchema }, next_cursor: { type: ["string", "null"] } } } },
      },
      onRequest: read,
    },
    async (req) => {
      const r = await links.list(req.principal.projectId, {
        ...req.query,
        limit: intParam(req.query.limit, "limit", 1, 1000),
        campaign_id: intParam(req.query.campaign_id, "campaign_id", 1, Number.MAX_SAFE_INTEGER),
      });
      return { links: r.links.map(publicLink), next_cursor: r.next_cursor };
    },
  );

  app.get<IdParams>(
    "/api/v1/links/:id",
    {
      schema: { tags: ["links"], summary: "Get one link", security, params: idParams, response: { 200: linkSchema, ...errorResponses } },
      onRequest: read,
    },
    async (req) => publicLink(await links.get(req.principal.projectId, Number(req.params.id))),
  );

  app.patch<IdParams & { Body: LinkInput }>(
    "/api/v1/links/:id",
    {
      schema: {
        tags: ["links"],
        summary: "Change a link",
        security,
        params: idParams,
        body: linkPatchBody,
        response: { 200: linkSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req) => publicLink(await links.update(req.principal.projectId, Number(req.params.id), req.body)),
  );

  app.delete<IdParams>(
    "/api/v1/links/:id",
    {
      schema: { tags: ["links"], summary: "Delete a link (its clicks stay in the event log)", security, params: idParams },
      onRequest: write,
    },
    async (req, reply) => {
      await links.delete(req.principal.projectId, Number(req.params.id));
      return reply.code(204).send();
    },
  );

  app.get<IdParams & { Querystring: { format?: "svg" | "png"; size?: string; download?: string } }>(
    "/api/v1/links/:id/qr",
    {
      schema: {
        tags: ["links"],
        summary: "A QR code of the link's short URL, as SVG or PNG",
        security,
        params: idParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            format: { type: "string", enum: ["svg", "png"], description: "default svg" },
            size: { type: "string", pattern: "^[0-9]{1,4}$", description: "width in pixels, 64-2048 (default 512)" },
            download: { type: "string", enum: ["0", "1", "true", "false"], description: "as an attachment" },
          },
        },
      },
      onRequest: read,
    },
    async (req, reply) => {
      const l = await links.get(req.principal.projectId, Number(req.params.id));
      const size = intParam(req.query.size, "size", 64, 2048) ?? 512;
      const url = publicLink(l).short_url;
      const format = req.query.format ?? "svg";
      const opts = { width: size, margin: 2, errorCorrectionLevel: "M" as const };
      if (req.query.download === "1" || req.query.download === "true")
        reply.header("content-disposition", `attachment; filename="${l.slug}.${format}"`);
      reply.header("cache-control", "private, max-age=300");
      if (format === "png") return reply.type("image/png").send(await QRCode.toBuffer(url, { ...opts, type: "png" }));
      return reply.type("image/svg+xml").send(await QRCode.toString(url, { ...opts, type: "svg" }));
    },
  );

  app.get<IdParams & { Querystring: StatsQuery }>(
    "/api/v1/links/:id/stats",
    {
      schema: {
        tags: ["stats"],
        summary: "Clicks, unique visitors, a time series and breakdowns of a link",
        security,
        params: idParams,
        querystring: statsQuerySchema,
        response: { 200: statsResponse },
      },
      onRequest: statsRead,
    },
    async (req) => {
      const l = await links.get(req.principal.projectId, Number(req.params.id));
      return stats.stats("link", l.id, req.query);
    },
  );
}
