import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import fastifyStatic from "@fastify/static";
import { problem } from "../errors.js";

/** Where `npm run build` puts the dashboard (Vite's output): dist/web beside dist/src. */
export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web");

/** The browser tracker (plain JavaScript, no build step) and the example pages, from the package's own folders. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const TRACKER_FILE = path.join(ROOT, "src/web/tracker.js");
export const EXAMPLES_DIR = path.join(ROOT, "examples");

/** No inline scripts or styles anywhere; the dashboard only talks to its own origin. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

/** The dashboard at /dashboard/: static files built by Vite, with a strict Content-Security-Policy. */
export async function dashboardRoutes(app: FastifyInstance, dir = DASHBOARD_DIR) {
  // the tracker is embedded by other sites' pages: any origin may load it
  app.get("/tracker.js", { schema: { hide: true } }, async (_req, reply) => {
    if (!existsSync(TRACKER_FILE))
      return reply
        .code(404)
        .type("application/problem+json")
        .send(problem(404, "not-found", "tracker.js is missing"));
    return reply
      .type("application/javascript; charset=utf-8")
      .header("cache-control", "public, max-age=3600")
      .header("access-control-allow-origin", "*")
      .header("cross-origin-resource-policy", "cross-origin")
      .send(readFileSync(TRACKER_FILE));
  });
  if (existsSync(EXAMPLES_DIR))
    await app.register(async (scope) => {
      scope.addHook("onSend", async (_req, reply, payload) => {
        reply.header("content-security-policy", DASHBOARD_CSP);
        return payload;
      });
      await scope.register(fastifyStatic, { root: EXAMPLES_DIR, prefix: "/examples/", decorateReply: false, schemaHide: true });
    });

  app.get("/dashboard", { schema: { hide: true } }, (_req, reply) => reply.redirect("/dashboard/", 301));
  if (!existsSync(path.join(dir, "index.html"))) {
    app.get("/dashboard/*", { schema: { hide: true } }, (_req, reply) =>
      reply
        .code(503)
        .type("application/problem+json")
        .send(problem(503, "dashboard-not-built", `the dashboard is not built (no ${dir}/index.html); run npm run build`)),
    );
    return;
  }
  await app.register(async (scope) => {
    scope.addHook("onSend", async (req, reply, payload) => {
      reply.header("content-security-policy", DASHBOARD_CSP);
      reply.header("referrer-policy", "same-origin");
      reply.header("x-frame-options", "DENY");
      // hashed assets never change; the page itself is always revalidated
      reply.header("cache-control", req.url.startsWith("/dashboard/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      return payload;
    });
    await scope.register(fastifyStatic, {
      root: dir,
      prefix: "/dashboard/",
      index: ["index.html"],
      wildcard: true,
      schemaHide: true,
      decorateReply: false,
    });
  });
}
