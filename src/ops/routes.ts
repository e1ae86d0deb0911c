import type { FastifyInstance } from "fastify";
import type { Store } from "../store/port.js";
import type { EventLog } from "../events/writer.js";
import type { Metrics } from "./metrics.js";

export const VERSION = "0.1.0";

export async function opsRoutes(app: FastifyInstance, deps: { store: Store; writer: EventLog; metrics: Metrics }) {
  app.get("/healthz", { schema: { tags: ["operations"], summary: "Liveness and what is down" } }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      await deps.store.ping();
      checks.database = "up";
    } catch (e) {
      ok = false;
      checks.database = `down: ${(e as Error).message}`;
    }
    // the change channel (Redis or LISTEN): while down, caches are bypassed, so this instance is slower but correct
    const extra = { ...deps.store.status?.(), ...deps.writer.status?.() };
    Object.assign(checks, extra);
    // "down", "down: why", "full: why" (SQLite: the disk is full, writes are refused with 507 until space is freed)
    const degraded = !ok || Object.values(extra).some((v) => /^(down|full)\b/.test(v)) || deps.writer.spooled > 0;
    return reply.code(ok ? 200 : 503).send({
      status: degraded ? "degraded" : "ok",
      version: VERSION,
      engine: deps.store.engine,
      queue_depth: deps.writer.depth,
      spooled_batches: deps.writer.spooled,
      checks,
    });
  });

  app.get("/metrics", { schema: { tags: ["operations"], summary: "Prometheus metrics" } }, async (_req, reply) => {
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}
