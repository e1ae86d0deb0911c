import { PreparedHead, writePrepared, type HotRequest, type HotResponse } from "../../http/fast-lane.js";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { requireScope } from "../../auth/hooks.js";
import type { AuthService } from "../../auth/service.js";
import type { Config } from "../../config.js";
import { AppError, badRequest, notFound, problem } from "../../errors.js";
import { hashedVisitor, parseUa } from "../../events/enrich.js";
import type { GeoIp } from "../../events/geoip.js";
import type { DailySalt } from "../../events/salt.js";
import type { EventLog } from "../../events/writer.js";
import { idParams } from "../../schemas.js";
import type { EventRow, Store, TrackingKey } from "../../store/port.js";
import { clientIp, storedIp, type TrustFn } from "../../util/net.js";
import { parseTime } from "../../util/time.js";
import { getOpenTrackingPixel, type TrackingResult } from "../index.js";
import { newSecret, type DecodedToken, type TrackingKeyring } from "./keyring.js";
import { randomBytes } from "node:crypto";
import { machineOf } from "./machines.js";

export interface TrackingRouteDeps {
  config: Config;
  auth: AuthService;
  store: Store;
  writer: EventLog;
  salt: DailySalt;
  trust: TrustFn;
  geoip: GeoIp | null;
  keyring: TrackingKeyring;
  /** a token that carries a webhook URL: the event goes there too (durably), in pytracking's body */
  onTracked?: (projectId: number, webhookUrl: string, payload: Record<string, unknown>) => Promise<unknown>;
  log: { error(obj: object, msg: string): void };
}

interface LinkBody {
  url?: string;
  open?: boolean;
  metadata?: Record<string, unknown>;
  webhook_url?: string;
  format?: "clicktrail" | "pytracking";
  encrypt?: boolean;
  expires_in?: number;
  case_insensitive?: boolean;
}

const PIXEL = getOpenTrackingPixel();
/** The pixel as a latin1 string: node:http writes a string body with the headers at once, a Buffer apart (writev). */
const PIXEL_LATIN1 = PIXEL.bytes.toString("latin1");

/**
 * A verified token's answer headers (its Location), made once per decoded token: the keyring keeps verified tokens, so a
 * link clicked again comes with the same result object, and these live as long as that does.
 */
const clickHeads = new WeakMap<TrackingResult, PreparedHead>();

/** An event's data: the token's metadata, the click's URL, the machine that made the request if one did. */
function eventData(kind: "click" | "open", r: TrackingResult, machine: string | null): string {
  return JSON.stringify({ metadata: r.metadata ?? {}, ...(kind === "click" ? { url: r.trackedUrl } : {}), ...(machine ? { machine } : {}) });
}

/** eventData of a request no machine made, once per verified token and kind (a token is mostly hit again and again). */
const plainData = { click: new WeakMap<TrackingResult, string>(), open: new WeakMap<TrackingResult, string>() };
function plainEventData(kind: "click" | "open", r: TrackingResult): string {
  const cache = plainData[kind];
  let data = cache.get(r);
  if (data === undefined) cache.set(r, (data = eventData(kind, r, null)));
  return data;
}

/** A URL fit for a Location header: non-ASCII percent-encoded (an IRI becomes a URI). */
function asciiUrl(url: string): string {
  try {
    return new URL(url).href;
  } catch {
    return encodeURI(url);
  }
}

/** A click's answer headers (its Location), checked and written out once per decoded token (see PreparedHead). */
function clickHead(r: TrackingResult): PreparedHead {
  let head = clickHeads.get(r);
  if (head === undefined)
    clickHeads.set(r, (head = new PreparedHead(["location", asciiUrl(String(r.trackedUrl)), ...NO_CACHE_LIST, "content-length", "0"])));
  return head;
}
const NO_CACHE_LIST = ["cache-control", "no-store, no-cache, must-revalidate, max-age=0", "pragma", "no-cache", "expires", "0"];
/** the pixel's headers, for GET and for HEAD (whose body is empty): built once, the same for every answer */
const pixelHeaders = (length: number) =>
  new PreparedHead([...NO_CACHE_LIST, "content-type", PIXEL.mimeType, "x-content-type-options", "nosniff", "content-length", String(length)]);
const PIXEL_GET_HEADERS = pixelHeaders(PIXEL_LATIN1.length);
const PIXEL_HEAD_HEADERS = pixelHeaders(0);

const linkProps = {
  url: { type: "string", minLength: 1, maxLength: 4096, description: "the URL a click tracking link redirects to" },
  open: { type: "boolean", description: "also (or, without url, only) an open tracking pixel URL" },
  metadata: { type: "object", description: "carried in the token and into each event's data (campaign id, customer id, …)" },
  webhook_url: { type: "string", maxLength: 2048, description: "notified (durably, pytracking's body) on each click/open" },
  format: { type: "string", enum: ["clicktrail", "pytracking"], description: "clicktrail (signed, compact; default) or pytracking (Fernet)" },
  encrypt: { type: "boolean", description: "clicktrail format: encrypt the content (authenticated)" },
  expires_in: { type: "integer", minimum: 60, maximum: 10 * 365 * 86400, description: "seconds until the link stops working" },
  case_insensitive: { type: "boolean", description: "a token that survives mail clients lower-casing URLs" },
} as const;

function publicKey(k: TrackingKey) {
  return {
    id: k.id,
    kid: k.kid,
    kind: k.kind,
    created_at: new Date(k.created_at).toISOString(),
    revoked_at: k.revoked_at ? new Date(k.revoked_at).toISOString() : null,
  };
}

/** The /t/c/ and /t/o/ requests, outside the web framework (like the redirect hot path); false when the path is not one. */
export function createTrackingHandler(deps: TrackingRouteDeps) {
  const { config, writer, keyring } = deps;

  function send(res: HotResponse, status: number, headers: Record<string, string | number>, body = "", encoding: "utf8" | "latin1" = "utf8") {
    headers["content-length"] = Buffer.byteLength(body, encoding);
    if (body !== "") headers["x-content-type-options"] = "nosniff";
    res.writeHead(status, headers);
    res.end(body, encoding);
  }

  function invalidToken(res: HotResponse) {
    send(
      res,
      404,
      { "cache-control": "no-store", "content-type": "application/problem+json" },
      JSON.stringify(problem(404, "not-found", "this tracking link is not valid (tampered, expired, or signed with a key that was revoked)")),
    );
  }

  /** The click or open recorded, then answered (callbacks, not awaits: each await costs every request). */
  function record(req: HotRequest, res: HotResponse, kind: "click" | "open", decoded: DecodedToken, salt: string): Promise<void> {
    const now = Date.now();
    const ua = req.headers["user-agent"]?.slice(0, 512);
    const info = parseUa(ua);
    const ip = clientIp(req, deps.trust);
    const machine = machineOf(kind, ua, ip, req.headers, ua ? info : undefined);
    const r = decoded.result;
    const event: EventRow = {
      project_id: decoded.projectId,
      ts: now,
      client_ts: null,
      name: kind,
      // a token may name its recipient (metadata.visitor, e.g. the user id an email went to): then the open and the click
      // are that visitor's, and a funnel can follow them to what the same id does in the product
      visitor: visitorOfMetadata(decoded.result.metadata) ?? hashedVisitor(salt, decoded.projectId, ip, ua ?? ""),
      session: null,
      link_id: null,
      domain_id: null,
      campaign_id: null,
      source: "tracking",
      channel: decoded.format,
      platform: info.platform || null,
      ip: storedIp(ip, config.ipMode),
      ua: ua === undefined ? null : info.ua,
      referrer: req.headers.referer?.slice(0, 2048) ?? null,
      browser: info.browser || null,
      os: info.os || null,
      device: info.device || null,
      is_bot: info.bot || machine !== null || req.method === "HEAD",
      country: deps.geoip?.country(ip) ?? null,
      rule: null,
      data: machine ? eventData(kind, r, machine) : plainEventData(kind, r),
    };
    // (headers prepared once per token and for the pixel, see PreparedHead)
    const answer = () => {
      if (kind === "click") {
        writePrepared(res, 302, clickHead(r));
        res.end();
      } else {
        const head = req.method === "HEAD";
        writePrepared(res, 200, head ? PIXEL_HEAD_HEADERS : PIXEL_GET_HEADERS);
        res.end(head ? "" : PIXEL_LATIN1, "latin1");
      }
    };
    return writer.write(event).then(
      () => {
        if (!r.webhookUrl || !deps.onTracked) return answer();
        const payload: Record<string, unknown> = {
          is_open_tracking: kind === "open",
          is_click_tracking: kind === "click",
          metadata: r.metadata ?? {},
          request_data: { user_agent: ua ?? null, user_ip: ip },
          timestamp: Math.floor(now / 1000),
        };
        if (r.trackedUrl) payload.tracked_url = r.trackedUrl;
        return deps
          .onTracked(decoded.projectId, String(r.webhookUrl), payload)
          .catch((err) => deps.log.error({ err }, "tracking webhook not queued"))
          .then(answer);
      },
      (err) => {
        // a known cause (a full disk: 507 storage-full) is named; the rest is a 503
        const known = err instanceof AppError && err.status >= 500 ? err : null;
        deps.log.error({ err: known ? known.message : err }, `tracking event not stored; answered ${known?.status ?? 503}`);
        send(
          res,
          known?.status ?? 503,
          { "retry-after": known?.status === 507 ? 10 : 1, "content-type": "application/problem+json" },
          JSON.stringify(
            known
              ? problem(known.status, known.type, `the ${kind} could not be recorded: ${known.message}`)
              : problem(503, "storage-unavailable", `the ${kind} could not be recorded; try again in a moment`),
          ),
        );
      },
    );
  }

  /**
   * false when the path is not a tracking link's (nothing answered); else it is answered, at once or by the promise
   * returned, which rejects only on a failure no answer was sent for (a throw has sent none either).
   */
  return function handle(req: HotRequest, res: HotResponse): boolean | Promise<void> {
    const url = req.url ?? "";
    const kind = url.startsWith("/t/c/") ? "click" : url.startsWith("/t/o/") ? "open" : null;
    if (!kind) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(
        res,
        405,
        { allow: "GET, HEAD", "content-type": "application/problem+json" },
        JSON.stringify(problem(405, "method-not-allowed", "use GET")),
      );
      return true;
    }
    const q = url.indexOf("?");
    let token = url.slice(5, q >= 0 ? q : undefined);
    // (decoded even without a %: the copy is a flat string, which the keyring's cache hashes and compares faster than a
    // slice of the URL; skipping it measured 0.58–0.59 against 0.62 of bare node:http on /t/c)
    try {
      token = decodeURIComponent(token);
    } catch {
      /* left as it is: it will not verify */
    }
    const decoded = (d: DecodedToken | null): true | Promise<void> => {
      if (!d || (kind === "click" && typeof d.result.trackedUrl !== "string")) {
        invalidToken(res);
        return true;
      }
      const s = deps.salt.get(Date.now());
      return typeof s === "string" ? record(req, res, kind, d, s) : s.then((salt) => record(req, res, kind, d, salt));
    };
    if (token.length > 8192) return decoded(null);
    const cached = keyring.cachedDecode(kind, token);
    if (cached !== undefined) return decoded(cached);
    return keyring.decode(kind, token).then((d) => {
      const r = decoded(d);
      return r === true ? undefined : r;
    });
  };
}

/**
 * Stateless tracking: /t/c/{token} (302 to the tracked URL) and /t/o/{token} (the pixel), each recorded as an event of
 * source "tracking" with the token's metadata (served by createTrackingHandler, before the web framework); here the
 * API that mints the URLs, the project's keys, and stats per metadata field.
 */
export async function trackingRoutes(app: FastifyInstance, deps: TrackingRouteDeps) {
  const { config, keyring } = deps;
  const write = requireScope(deps.auth, "links:write");
  const admin = requireScope(deps.auth, "admin");
  const statsRead = requireScope(deps.auth, "stats:read");
  const security = [{ bearer: [] }];
  const tags = ["tracking"];

  function baseUrl(req: FastifyRequest): string {
    return config.publicUrl?.replace(/\/+$/, "") ?? `${req.protocol}://${req.host}`;
  }

  app.post<{ Body: LinkBody & { items?: LinkBody[] } }>(
    "/api/v1/tracking/links",
    {
      schema: {
        tags,
        summary: "Mint click and open tracking URLs (stateless: everything is in the signed token)",
        security,
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            ...linkProps,
            items: { type: "array", maxItems: 1000, items: { type: "object", additionalProperties: false, properties: linkProps } },
          },
        },
      },
      onRequest: write,
    },
    async (req) => {
      const base = baseUrl(req);
      const one = async (b: LinkBody, where: string) => {
        if (b.url !== undefined) {
          try {
            const u = new URL(b.url);
            if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
          } catch {
            throw badRequest(`${where}url must be an absolute http(s) URL`, { field: `${where}url` });
          }
        }
        if (b.url === undefined && b.open === false)
          throw badRequest(`${where}: give a url (click link), open: true (pixel), or both`, { field: `${where}url` });
        const opts = {
          format: b.format,
          encrypt: b.encrypt,
          expiresInSeconds: b.expires_in,
          caseInsensitive: b.case_insensitive,
          webhookUrl: b.webhook_url,
        };
        if (b.format === "pytracking" && (b.expires_in || b.case_insensitive))
          throw badRequest(`${where}expires_in and case_insensitive need the clicktrail format`, { field: `${where}format` });
        const meta = b.metadata ?? {};
        const pid = req.principal.projectId;
        return {
          ...(b.url !== undefined ? { click_url: await keyring.encode(pid, "click", base, b.url, meta, opts) } : {}),
          ...(b.open || b.url === undefined ? { open_url: await keyring.encode(pid, "open", base, undefined, meta, opts) } : {}),
        };
      };
      if (req.body.items) return { items: await Promise.all(req.body.items.map((b, i) => one(b, `items[${i}].`))) };
      return one(req.body, "");
    },
  );

  app.get(
    "/api/v1/tracking/keys",
    { schema: { tags, summary: "The project's tracking keys (never their secrets)", security }, onRequest: admin },
    async (req) => ({
      keys: (await deps.store.listTrackingKeys(req.principal.projectId)).map(publicKey),
    }),
  );

  app.post<{ Body: { kind?: "clicktrail" | "fernet"; secret?: string } }>(
    "/api/v1/tracking/keys",
    {
      schema: {
        tags,
        summary: "Add a tracking key (rotation: the newest writes, every unrevoked key still reads). A Fernet secret imports a pytracking key.",
        security,
        body: {
          type: "object",
          additionalProperties: false,
          properties: { kind: { type: "string", enum: ["clicktrail", "fernet"] }, secret: { type: "string", minLength: 32, maxLength: 256 } },
        },
      },
      onRequest: admin,
    },
    async (req, reply) => {
      const kind = req.body.kind ?? "clicktrail";
      if (req.body.secret && kind === "fernet" && Buffer.from(req.body.secret, "base64url").length !== 32)
        throw badRequest("a Fernet key is 32 bytes in URL-safe base64 (44 characters), as Fernet.generate_key() makes", { field: "secret" });
      const k = await deps.store.createTrackingKey({
        project_id: req.principal.projectId,
        kid: randomBytes(4).toString("hex"),
        kind,
        secret: req.body.secret ?? newSecret(kind),
      });
      keyring.invalidate();
      return reply.code(201).send(publicKey(k));
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/api/v1/tracking/keys/:id",
    { schema: { tags, summary: "Revoke a tracking key: links it signed stop working", security, params: idParams }, onRequest: admin },
    async (req, reply) => {
      if (!(await deps.store.revokeTrackingKey(req.principal.projectId, Number(req.params.id))))
        // like every other object: an id that is not (or no longer) this project's is a 404
        throw notFound(`active tracking key ${req.params.id}`);
      keyring.invalidate();
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { field?: string; from?: string; to?: string } }>(
    "/api/v1/tracking/stats",
    {
      schema: {
        tags: ["stats"],
        summary: "Opens and clicks of tracking links per value of a metadata field (e.g. campaign_id), people and machines apart",
        security,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { field: { type: "string", maxLength: 128 }, from: { type: "string" }, to: { type: "string" } },
        },
      },
      onRequest: statsRead,
    },
    async (req) => {
      const to = parseTime(req.query.to, "to") ?? Date.now();
      const from = parseTime(req.query.from, "from") ?? to - 30 * 86_400_000;
      const field = req.query.field;
      type Row = { opens: number; clicks: number; machine_opens: number; machine_clicks: number; openers: Set<string>; clickers: Set<string> };
      const groups = new Map<string, Row>();
      const row = (k: string) => {
        let g = groups.get(k);
        if (!g) groups.set(k, (g = { opens: 0, clicks: 0, machine_opens: 0, machine_clicks: 0, openers: new Set(), clickers: new Set() }));
        return g;
      };
      // the tracking events of the range, page by page (they are not rolled up: their metadata is free-form)
      for (let after = 0; ;) {
        const page = await deps.store.listEvents({ project_id: req.principal.projectId, source: "tracking", from, to, after_id: after, limit: 5000 });
        for (const e of page) {
          const data = e.data ? (JSON.parse(e.data) as { metadata?: Record<string, unknown> }) : {};
          const v = field ? data.metadata?.[field] : "";
          const g = row(v === undefined || v === null ? "(none)" : typeof v === "string" ? v : JSON.stringify(v));
          const open = e.name === "open";
          if (e.is_bot) {
            if (open) g.machine_opens++;
            else g.machine_clicks++;
          } else if (open) {
            g.opens++;
            if (e.visitor) g.openers.add(e.visitor);
          } else {
            g.clicks++;
            if (e.visitor) g.clickers.add(e.visitor);
          }
        }
        if (page.length < 5000) break;
        after = page[page.length - 1]!.id;
      }
      const values = [...groups.entries()]
        .map(([value, g]) => ({
          value,
          opens: g.opens,
          unique_opens: g.openers.size,
          clicks: g.clicks,
          unique_clicks: g.clickers.size,
          machine_opens: g.machine_opens,
          machine_clicks: g.machine_clicks,
        }))
        .sort((a, b) => b.opens + b.clicks - (a.opens + a.clicks));
      return { field: field ?? null, from: new Date(from).toISOString(), to: new Date(to).toISOString(), values };
    },
  );
}

/** The visitor id a token's metadata names (`visitor`: a string of 1 to 200 characters, or a number), if any. */
function visitorOfMetadata(metadata: unknown): string | null {
  const v = metadata && typeof metadata === "object" ? (metadata as { visitor?: unknown }).visitor : undefined;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return typeof v === "string" && v.length > 0 && v.length <= 200 ? v : null;
}
