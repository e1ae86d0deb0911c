import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../errors.js";
import type { Scope } from "../store/port.js";
import type { AuthService, Principal } from "./service.js";
import { cookieValue, SESSION_COOKIE } from "./sessions.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** An onRequest hook (so authentication comes before validation) that requires a bearer API key holding `scope` (admin holds every scope). */
export function requireScope(auth: AuthService, scope: Scope) {
  return async function (req: FastifyRequest, reply: FastifyReply) {
    const h = req.headers.authorization;
    const sessionToken = !h && auth.sessions ? cookieValue(req.headers.cookie, SESSION_COOKIE) : undefined;
    if (sessionToken) {
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      // an EventSource cannot send headers: on GET the project may come in the query (?project=)
      const queryProject = req.method === "GET" ? (req.query as { project?: unknown } | undefined)?.project : undefined;
      const project = header("x-project-id") ?? (typeof queryProject === "string" ? queryProject : undefined);
      const p = await auth.sessions!.principal(sessionToken, req.method, header("x-csrf-token"), project);
      if (p) {
        if (!p.scopes.has(scope) && !p.scopes.has("admin"))
          throw new AppError(403, "forbidden", `your role in this project does not allow ${scope}`, { required_scope: scope });
        req.principal = p;
        return;
      }
      throw new AppError(401, "unauthorized", "your session has expired; sign in again");
    }
    if (!h) {
      reply.header("WWW-Authenticate", 'Bearer realm="clicktrail"');
      throw new AppError(401, "unauthorized", "an API key is required: send Authorization: Bearer <key>");
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) {
      reply.header("WWW-Authenticate", 'Bearer realm="clicktrail", error="invalid_request"');
      throw new AppError(401, "unauthorized", "the Authorization header must be 'Bearer <key>'");
    }
    const p = await auth.verify(m[1]!);
    if (!p) {
      reply.header("WWW-Authenticate", 'Bearer realm="clicktrail", error="invalid_token"');
      throw new AppError(401, "unauthorized", "this API key is unknown or revoked");
    }
    if (!p.scopes.has(scope) && !p.scopes.has("admin")) {
      throw new AppError(403, "forbidden", `this API key lacks the ${scope} scope`, { required_scope: scope });
    }
    req.principal = p;
  };
}
