import type { FastifyInstance } from "fastify";
import { idParams } from "../schemas.js";
import { SCOPES, type Scope, type Store } from "../store/port.js";
import { requireScope } from "./hooks.js";
import { publicKey, type AuthService } from "./service.js";
import { cookieValue, SESSION_COOKIE, SESSION_TTL_MS, type SignedIn } from "./sessions.js";
import { AppError } from "../errors.js";
import type { FastifyReply, FastifyRequest } from "fastify";

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

const sessionSchema = {
  type: "object",
  properties: {
    user: { type: "object", properties: { id: { type: "integer" }, email: { type: "string" } } },
    projects: {
      type: "array",
      items: { type: "object", properties: { id: { type: "integer" }, name: { type: "string" }, role: { type: "string" } } },
    },
    project_id: { type: "integer" },
    csrf_token: { type: "string", description: "send it back in X-CSRF-Token on every POST, PATCH, PUT and DELETE" },
  },
} as const;

function publicSession(s: SignedIn) {
  return {
    user: { id: s.user.id, email: s.user.email },
    projects: s.memberships.map((m) => ({ id: m.project_id, name: m.name, role: m.role })),
    project_id: s.memberships[0]!.project_id,
    csrf_token: s.csrf,
  };
}

function sessionCookie(req: FastifyRequest, value: string, maxAgeS: number) {
  const secure = req.protocol === "https" ? "; Secure" : "";
  return `${SESSION_COOKIE}=${value}; Max-Age=${maxAgeS}; Path=/; HttpOnly; SameSite=Strict${secure}`;
}

export async function authRoutes(app: FastifyInstance, deps: { auth: AuthService; store: Store }) {
  const admin = requireScope(deps.auth, "admin");
  const security = [{ bearer: [] }];
  const sessions = deps.auth.sessions!;
  const tags = ["session"];

  app.post<{ Body: { email: string; password: string } }>(
    "/api/v1/auth/session",
    {
      schema: {
        tags,
        summary: "Sign in to the dashboard: a session cookie (HttpOnly, SameSite=Strict) and its CSRF token",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["email", "password"],
          properties: { email: { type: "string", minLength: 1, maxLength: 320 }, password: { type: "string", minLength: 1, maxLength: 1024 } },
        },
        response: { 200: sessionSchema },
      },
    },
    async (req, reply) => {
      try {
        const s = await sessions.signIn(req.body.email, req.body.password, req.ip);
        reply.header("set-cookie", sessionCookie(req, s.token, SESSION_TTL_MS / 1000));
        return publicSession(s);
      } catch (e) {
        if (e instanceof AppError && e.status === 429) reply.header("retry-after", String(e.extra.retry_after ?? 60));
        throw e;
      }
    },
  );

  const current = async (req: FastifyRequest, reply: FastifyReply) => {
    const token = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const s = token ? await sessions.lookup(token) : null;
    if (!s || !s.memberships.length) {
      if (token) reply.header("set-cookie", sessionCookie(req, "", 0));
      throw new AppError(401, "unauthorized", "not signed in");
    }
    return { token: token!, s };
  };

  app.get(
    "/api/v1/auth/session",
    { schema: { tags, summary: "The signed-in user, their projects and the CSRF token (401 when signed out)", response: { 200: sessionSchema } } },
    async (req, reply) => publicSession((await current(req, reply)).s),
  );

  app.delete("/api/v1/auth/session", { schema: { tags, summary: "Sign out (send X-CSRF-Token)" } }, async (req, reply) => {
    const { token } = await current(req, reply);
    // a sign-out is an unsafe request too
    await sessions.principal(token, "DELETE", req.headers["x-csrf-token"] as string | undefined, undefined);
    await sessions.signOut(token);
    return reply
      .header("set-cookie", sessionCookie(req, "", 0))
      .code(204)
      .send();
  });

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
