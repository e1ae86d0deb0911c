import type { FastifyInstance } from "fastify";
import { requireScope } from "../auth/hooks.js";
import type { AuthService } from "../auth/service.js";
import { badRequest } from "../errors.js";
import { errorResponses, idParams } from "../schemas.js";
import { publicDelivery, publicWebhook, type WebhookInput, type Webhooks } from "./service.js";

export interface WebhookRouteDeps {
  auth: AuthService;
  webhooks: Pick<Webhooks, "service">;
}

const webhookProps = {
  url: { type: "string", minLength: 1, maxLength: 2048, description: "http(s) URL; loopback, private and link-local addresses are refused" },
  events: {
    type: "array",
    minItems: 1,
    maxItems: 100,
    items: { type: "string", minLength: 1, maxLength: 64 },
    description: 'event names delivered (click, open, pageview, session_start, …), or ["*"] for every event (default)',
  },
  format: {
    type: "string",
    enum: ["standard", "pytracking"],
    description: "standard: {type, timestamp, data}; pytracking: the body pytracking's send_webhook posts (default standard)",
  },
  active: { type: "boolean", description: "inactive subscriptions get no new deliveries (default true)" },
  description: { type: ["string", "null"], maxLength: 1024 },
} as const;

const webhookSchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    url: { type: "string" },
    events: { type: "array", items: { type: "string" } },
    format: { type: "string" },
    active: { type: "boolean" },
    description: { type: ["string", "null"] },
    secret: { type: "string", description: "Standard Webhooks signing secret (whsec_…): shown on creation and rotation only" },
    created_at: { type: "string" },
    updated_at: { type: "string" },
  },
} as const;

const attemptSchema = {
  type: "object",
  properties: {
    attempt: { type: "integer" },
    at: { type: "string" },
    status_code: { type: ["integer", "null"], description: "the receiver's HTTP status (null: no response)" },
    error: { type: ["string", "null"] },
    duration_ms: { type: "integer" },
  },
} as const;

const deliverySchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    msg_id: { type: "string", description: "the webhook-id header, the same on every attempt" },
    type: { type: "string", description: "event.<name> or webhook.test" },
    event_id: { type: ["integer", "null"] },
    status: { type: "string", enum: ["pending", "delivered", "failed"] },
    attempts: { type: "integer" },
    last_status: { type: ["integer", "null"] },
    last_error: { type: ["string", "null"] },
    next_attempt_at: { type: ["string", "null"] },
    created_at: { type: "string" },
    delivered_at: { type: ["string", "null"] },
    attempt_log: { type: "array", items: attemptSchema },
  },
} as const;

type IdParams = { Params: { id: string } };

function intParam(v: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw badRequest(`${name} must be an integer from ${min} to ${max}`, { field: name });
  return n;
}

export async function webhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps) {
  const { auth } = deps;
  const svc = deps.webhooks.service;
  const admin = requireScope(auth, "admin");
  const security = [{ bearer: [] }];
  const tags = ["webhooks"];

  app.post<{ Body: WebhookInput }>(
    "/api/v1/webhooks",
    {
      schema: {
        tags,
        summary: "Subscribe a URL to the project's events (signed per Standard Webhooks; the secret is shown this once)",
        security,
        body: { type: "object", additionalProperties: false, required: ["url"], properties: webhookProps },
        response: { 201: webhookSchema, ...errorResponses },
      },
      onRequest: admin,
    },
    async (req, reply) => reply.code(201).send(publicWebhook(await svc.create(req.principal.projectId, req.body), true)),
  );

  app.get(
    "/api/v1/webhooks",
    {
      schema: {
        tags,
        summary: "List the project's webhook subscriptions (newest first)",
        security,
        response: { 200: { type: "object", properties: { webhooks: { type: "array", items: webhookSchema } } }, ...errorResponses },
      },
      onRequest: admin,
    },
    async (req) => ({ webhooks: (await svc.list(req.principal.projectId)).map((w) => publicWebhook(w)) }),
  );

  app.get<IdParams>(
    "/api/v1/webhooks/:id",
    {
      schema: { tags, summary: "Get one webhook subscription", security, params: idParams, response: { 200: webhookSchema, ...errorResponses } },
      onRequest: admin,
    },
    async (req) => publicWebhook(await svc.get(req.principal.projectId, Number(req.params.id))),
  );

  app.patch<IdParams & { Body: WebhookInput }>(
    "/api/v1/webhooks/:id",
    {
      schema: {
        tags,
        summary: "Change a webhook subscription (a new URL applies to pending retries too)",
        security,
        params: idParams,
        body: { type: "object", additionalProperties: false, minProperties: 1, properties: webhookProps },
        response: { 200: webhookSchema, ...errorResponses },
      },
      onRequest: admin,
    },
    async (req) => publicWebhook(await svc.update(req.principal.projectId, Number(req.params.id), req.body)),
  );

  app.delete<IdParams>(
    "/api/v1/webhooks/:id",
    {
      schema: { tags, summary: "Delete a webhook subscription and its deliveries", security, params: idParams, response: errorResponses },
      onRequest: admin,
    },
    async (req, reply) => {
      await svc.delete(req.principal.projectId, Number(req.params.id));
      return reply.code(204).send();
    },
  );

  app.post<IdParams>(
    "/api/v1/webhooks/:id/rotate-secret",
    {
      schema: {
        tags,
        summary: "Replace the signing secret (the new one is shown this once; attempts from now on are signed with it)",
        security,
        params: idParams,
        response: { 200: webhookSchema, ...errorResponses },
      },
      onRequest: admin,
    },
    async (req) => publicWebhook(await svc.rotateSecret(req.principal.projectId, Number(req.params.id)), true),
  );

  app.get<IdParams & { Querystring: { limit?: string; before?: string } }>(
    "/api/v1/webhooks/:id/deliveries",
    {
      schema: {
        tags,
        summary: "The subscription's deliveries, newest first, each with its attempts (status codes, errors, times)",
        security,
        params: idParams,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            limit: { type: "string", pattern: "^[0-9]{1,4}$", description: "1-500 (default 50)" },
            before: { type: "string", pattern: "^[0-9]{1,15}$", description: "deliveries with an id below this (the next page)" },
          },
        },
        response: {
          200: { type: "object", properties: { deliveries: { type: "array", items: deliverySchema }, next_before: { type: ["integer", "null"] } } },
          ...errorResponses,
        },
      },
      onRequest: admin,
    },
    async (req) => {
      const limit = intParam(req.query.limit, "limit", 1, 500, 50);
      const before = req.query.before === undefined ? undefined : Number(req.query.before);
      const ds = await svc.deliveries(req.principal.projectId, Number(req.params.id), limit, before);
      return { deliveries: ds.map(publicDelivery), next_before: ds.length === limit ? ds[ds.length - 1]!.id : null };
    },
  );

  app.post<IdParams>(
    "/api/v1/webhooks/:id/test",
    {
      schema: {
        tags,
        summary: "Queue a webhook.test message to the subscription (see its deliveries for the outcome)",
        security,
        params: idParams,
        response: { 202: { type: "object", properties: { msg_id: { type: "string" } } }, ...errorResponses },
      },
      onRequest: admin,
    },
    async (req, reply) => reply.code(202).send(await svc.test(req.principal.projectId, Number(req.params.id))),
  );
}
