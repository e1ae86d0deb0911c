import type { FastifyInstance } from "fastify";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import type { StatsQuery, StatsService } from "../events/stats.js";
import { errorResponses, idParams, statsQuerySchema, statsResponse } from "../schemas.js";
import { publicCampaign, type CampaignInput, type CampaignService } from "./service.js";

export interface CampaignRouteDeps {
  auth: AuthService;
  campaigns: CampaignService;
  stats: StatsService;
}

const utm = {
  type: "object",
  additionalProperties: false,
  properties: Object.fromEntries(["source", "medium", "campaign", "term", "content"].map((k) => [k, { type: "string", maxLength: 256 }])),
} as const;

const campaignProps = {
  name: { type: "string", minLength: 1, maxLength: 128, description: "unique within the project" },
  utm: { ...utm, description: "UTM parameters added to every link of the campaign (a link's own win)" },
  notes: { type: ["string", "null"], maxLength: 4096 },
} as const;

const campaignSchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    utm: { type: "object", additionalProperties: { type: "string" } },
    notes: { type: ["string", "null"] },
    created_at: { type: "string" },
    updated_at: { type: "string" },
  },
} as const;

const campaignStatsResponse = {
  ...statsResponse,
  properties: {
    ...statsResponse.properties,
    platforms: {
      type: "array",
      description: "clicks and unique visitors per platform (android, ios, windows-phone, windows, macos, linux, chromeos, other)",
      items: { type: "object", properties: { platform: { type: "string" }, clicks: { type: "integer" }, visitors: { type: "integer" } } },
    },
  },
} as const;

type IdParams = { Params: { id: string } };

export async function campaignRoutes(app: FastifyInstance, deps: CampaignRouteDeps) {
  const { auth, campaigns, stats } = deps;
  const read = requireScope(auth, "links:read");
  const write = requireScope(auth, "links:write");
  const statsRead = requireScope(auth, "stats:read");
  const security = [{ bearer: [] }];
  const tags = ["campaigns"];

  app.post<{ Body: CampaignInput }>(
    "/api/v1/campaigns",
    {
      schema: {
        tags,
        summary: "Create a campaign: a named group of links sharing UTM parameters",
        security,
        body: { type: "object", additionalProperties: false, required: ["name"], properties: campaignProps },
        response: { 201: campaignSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req, reply) => reply.code(201).send(publicCampaign(await campaigns.create(req.principal.projectId, req.body))),
  );

  app.get(
    "/api/v1/campaigns",
    {
      schema: {
        tags,
        summary: "List the project's campaigns (newest first)",
        security,
        response: { 200: { type: "object", properties: { campaigns: { type: "array", items: campaignSchema } } } },
      },
      onRequest: read,
    },
    async (req) => ({ campaigns: (await campaigns.list(req.principal.projectId)).map(publicCampaign) }),
  );

  app.get<IdParams>(
    "/api/v1/campaigns/:id",
    {
      schema: { tags, summary: "Get one campaign", security, params: idParams, response: { 200: campaignSchema, ...errorResponses } },
      onRequest: read,
    },
    async (req) => publicCampaign(await campaigns.get(req.principal.projectId, Number(req.params.id))),
  );

  app.patch<IdParams & { Body: CampaignInput }>(
    "/api/v1/campaigns/:id",
    {
      schema: {
        tags,
        summary: "Change a campaign (its links follow new UTM parameters at once)",
        security,
        params: idParams,
        body: { type: "object", additionalProperties: false, minProperties: 1, properties: campaignProps },
        response: { 200: campaignSchema, 409: { $ref: "Problem#" }, ...errorResponses },
      },
      onRequest: write,
    },
    async (req) => publicCampaign(await campaigns.update(req.principal.projectId, Number(req.params.id), req.body)),
  );

  app.delete<IdParams>(
    "/api/v1/campaigns/:id",
    {
      schema: { tags, summary: "Delete a campaign (its links stay, without a campaign)", security, params: idParams },
      onRequest: write,
    },
    async (req, reply) => {
      await campaigns.delete(req.principal.projectId, Number(req.params.id));
      return reply.code(204).send();
    },
  );

  app.get<IdParams & { Querystring: StatsQuery }>(
    "/api/v1/campaigns/:id/stats",
    {
      schema: {
        tags: ["stats"],
        summary: "Clicks and visitors of a campaign's links: in total, per platform, as a series and in breakdowns",
        security,
        params: idParams,
        querystring: statsQuerySchema,
        response: { 200: campaignStatsResponse },
      },
      onRequest: statsRead,
    },
    async (req) => {
      const c = await campaigns.get(req.principal.projectId, Number(req.params.id));
      return stats.campaign(c.id, req.query);
    },
  );
}
