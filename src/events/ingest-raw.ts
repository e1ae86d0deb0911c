import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config.js";
import { AppError, problem } from "../errors.js";
import type { TrustFn } from "../util/net.js";
import type { GeoIp } from "./geoip.js";
import { requestFacts, type IncomingEvent, type IngestService } from "./ingest.js";
import type { App } from "../store/port.js";

export interface RawIngestDeps {
  config: Config;
  ingest: IngestService;
  trust: TrustFn;
  geoip: GeoIp | null;
  log: { error(obj: object, msg: string): void };
}

/**
 * POST /api/v1/events outside the web framework: the ingest hot path, like redirects and tracking links. It does what
 * the framework route did (body limit, JSON or sendBeacon's text/plain JSON, CORS, problem+json errors naming the
 * field) with less per request. The OpenAPI document still describes the route (registered in ingest-routes.ts).
 */
export function createRawIngest(deps: RawIngestDeps) {
  const { config, ingest } = deps;

  function send(res: ServerResponse, req: IncomingMessage, status: number, text: string, extra?: Record<string, string>) {
    const h: Record<string, string | number> = {
      "content-type": status >= 400 ? "application/problem+json" : "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "x-content-type-options": "nosniff",
    };
    if (extra) Object.assign(h, extra);
    // CORS headers for browsers only (a request from a page carries Origin): fewer bytes per answer for servers
    const origin = req.headers.origin;
    if (origin) {
      h["access-control-allow-origin"] = origin;
      h["access-control-expose-headers"] = "Retry-After";
      h.vary = "Origin";
    }
    try {
      res.writeHead(status, h);
      res.end(text);
    } catch (err) {
      // (a header node:http refuses): never thrown into a promise's callback, where it would stop the process
      deps.log.error({ err }, "an answer to POST /api/v1/events could not be sent");
      res.destroy();
    }
  }

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown) {
    if (err instanceof AppError) {
      const retry = err.status === 429 || err.status === 503 ? "1" : err.status === 507 ? "10" : null;
      const extra: Record<string, string> | undefined = retry ? { "retry-after": retry } : err.status === 413 ? { connection: "close" } : undefined;
      return send(res, req, err.status, JSON.stringify(problem(err.status, err.type, err.message, err.extra)), extra);
    }
    deps.log.error({ err }, "events not stored; answered 503");
    send(res, req, 503, JSON.stringify(problem(503, "storage-unavailable", "the events could not be recorded; try again in a moment")), {
      "retry-after": "1",
    });
  }

  /** Calls `callback` once: with the body as text, or with a 413 once it passes the body limit (and reads no more). */
  function readBody(req: IncomingMessage, callback: (err: Error | null, text?: string) => void) {
    const chunks: Buffer[] = [];
    let size = 0;
    let called = false;
    const done = (err: Error | null, text?: string) => {
      if (called) return;
      called = true;
      callback(err, text);
    };
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > config.bodyLimit) {
        // read no more, but answer the 413 before the connection closes (destroying the request here dropped it unanswered)
        req.removeAllListeners("data");
        req.pause();
        done(new AppError(413, "body-too-large", `the body is larger than ${config.bodyLimit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => done(null, (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8")));
    req.on("error", done);
  }

  /** The body read: its events validated and recorded, then the answer (callbacks, not awaits: this is per event). */
  function accept(req: IncomingMessage, res: ServerResponse, text: string) {
    let body: (IncomingEvent & { key?: unknown; events?: unknown }) | null;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new AppError(400, "invalid-request", `the body is not valid JSON: ${(e as Error).message}`);
    }
    if (!body || typeof body !== "object" || Array.isArray(body))
      throw new AppError(400, "validation", "the body must be a JSON object", { field: "" });
    // (how deep event data nests is checked by ingest() itself, for every caller)
    if (body.events !== undefined && !Array.isArray(body.events))
      throw new AppError(400, "validation", "events must be a list of events", { field: "events" });
    const key = body.key ?? req.headers["x-clicktrail-key"];
    const cached = ingest.cachedApp(key);
    if (cached) record(req, res, body, cached);
    else
      ingest.appOf(key).then(
        (a) => record(req, res, body, a),
        (err) => fail(req, res, err),
      );
  }

  function record(req: IncomingMessage, res: ServerResponse, body: IncomingEvent & { events?: unknown }, a: App) {
    try {
      const facts = requestFacts(req, config.ipMode, deps.trust, deps.geoip);
      const batch = body.events as IncomingEvent[] | undefined;
      ingest.ingest(a, batch ?? [body], facts, batch ? { visitor: body.visitor, session: body.session } : {}, !batch).then(
        (n) => send(res, req, 201, `{"accepted":${n}}`),
        (err) => fail(req, res, err),
      );
    } catch (err) {
      fail(req, res, err);
    }
  }

  return function handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      const header = req.headers["content-type"];
      const type = header === "application/json" ? header : (header ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json" && type !== "text/plain")
        throw new AppError(
          415,
          "unsupported-media-type",
          `send the events as application/json (or text/plain JSON from sendBeacon), not ${type || "no content type"}`,
        );
      readBody(req, (err, text) => {
        try {
          if (err) throw err;
          accept(req, res, text!);
        } catch (e) {
          fail(req, res, e);
        }
      });
    } catch (err) {
      fail(req, res, err);
    }
  };
}
