import type { FastifyInstance } from "fastify";
import { idParams } from "../schemas.js";
import { SCOPES, type Scope, type Store } from "../store/port.js";
import { requireScope } from "./hooks.js";
import { publicKey, type AuthService } from "./service.js";

const keySchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    prefix: { type: "string" },
    scopes: { type: "array", items: { type: "string" } },
    created_at: { type: "string" },
    revoked_at: { type: ["string", "null"] },
    key: { type: "string", description: "the secret; shown only in the answer to its creation" },
  },
} as const;

export async function authRoutes(app: FastifyInstance, deps: { auth: AuthService; store: Store }) {
  const admin = requireScope(deps.auth, "admin");
  const security = [{ bearer: [] }];

  app.get(
    "/api/v1/keys",
    {
      schema: {
        tags: ["keys"],
        summary: "List the project's API keys (never their secrets)",
        security,
        response: { 200: { type: "object", properties: { keys: { type: "array", items: keySchema } } } },
      },
      onRequest: admin,
    },
    async (req) => ({ keys: (await deps.store.listApiKeys(req.principal.projectId)).map(publicKey) }),
  );

  app.post<{ Body: { name?: string; scopes: Scope[] } }>(
    "/api/v1/keys",
    {
      schema: {
        tags: ["keys"],
        summary: "Create an API key for this project; the secret is in this answer only",
        security,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["scopes"],
          properties: {
            name: { type: "string", maxLength: 128 },
            scopes: { type: "array", minItems: 1, uniqueItems: true, items: { type: "string", enum: [...SCOPES] } },
          },
        },
        response: { 201: keySchema },
      },
      onRequest: admin,
    },
    async (req, reply) => {
      const { token, key } = await deps.auth.createKey(req.principal.projectId, req.body.name ?? "api", req.body.scopes);
      return reply.code(201).send({ ...publicKey(key), key: token });
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/api/v1/keys/:id",
    {
      schema: { tags: ["keys"], summary: "Revoke an API key", security, params: idParams },
      onRequest: admin,
    },
    async (req, reply) => {
      await deps.auth.revokeKey(req.principal.projectId, Number(req.params.id));
      return reply.code(204).send();
    },
  );
}
