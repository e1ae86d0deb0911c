import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { O7Config } from "../config.js";
import type { AuthService } from "../auth/service.js";
import { FailureThrottle } from "../auth/throttle.js";
import { AppError } from "../errors.js";
import type { EventLog } from "../events/writer.js";
import type { DomainService } from "../links/domains.js";
import type { LinkService } from "../links/links.js";
import type { LinkResolver, ResolvedLink } from "../links/resolver.js";
import { SLOT_MS, type Link, type Store, type TargetRule } from "../store/port.js";

/**
 * The o7tracker dialect: o7tracker's admin API (/admin/campaigns, HTTP Basic), its click endpoint
 * (/track/{id}?platform=…), /tasks/update_stats and its fallback redirect, over Clicktrail's links. A campaign is a
 * link with one targeting rule per platform (named Android, IPhone, WindowsPhone); its id is the link's id. Status
 * codes, bodies and messages follow the original (seed-apis.md §2); the deliberate differences are in docs/dialects.md.
 */

/** o7tracker's platforms, as its clients spell them, and Clicktrail's names for them. */
export const O7_PLATFORMS = { Android: "android", IPhone: "ios", WindowsPhone: "windows-phone" } as const;
type O7Platform = keyof typeof O7_PLATFORMS;
const O7_NAMES = Object.keys(O7_PLATFORMS) as O7Platform[];
const isO7 = (p: string): p is O7Platform => (O7_NAMES as string[]).includes(p);
const o7Of = (platform: string): O7Platform | null => O7_NAMES.find((n) => O7_PLATFORMS[n] === platform) ?? null;

/** Tag on the links this dialect creates, so a campaign without platforms is still listed. */
export const O7_TAG = "o7tracker";

export interface O7Deps {
  config: O7Config;
  /** the mount path ("" at the root) */
  mount: string;
  auth: AuthService;
  domains: DomainService;
  links: LinkService;
  resolver: LinkResolver;
  store: Store;
  writer: EventLog;
  track: (
    req: FastifyRequest["raw"],
    res: FastifyReply["raw"],
    resolved: ResolvedLink,
    opts: { query: string; status: number; channel: string; refuse: () => void; enforcePlatforms: boolean; explicitPlatform: boolean },
  ) => Promise<void>;
}

/** Basic-auth guessing: 20 wrong credentials from one address within 15 minutes, and that address waits (429). */
export const O7_MAX_FAILURES = 20;
const O7_WINDOW_MS = 15 * 60_000;

/** An error answered the o7tracker way: 500 {"msg": …, "status": "error"} (the original never answers 400 or 404). */
class O7Error extends Error {}

/** Go's encoding/json escapes <, > and & (and U+2028/9) in strings: so does this, byte for byte. */
function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** RFC 3339 with Go's RFC3339Nano trimming (no trailing zeros in the fraction). */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.?0+Z$/, "Z");
}

/** strconv.ParseInt(s, 10, 64), with Go's error texts. */
function parseInt64(s: string): bigint {
  if (!/^[+-]?\d+$/.test(s)) throw new O7Error(`strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`);
  const n = BigInt(s);
  if (n > 9223372036854775807n || n < -9223372036854775808n) throw new O7Error(`strconv.ParseInt: parsing ${goQuote(s)}: value out of range`);
  return n;
}

const goQuote = (s: string) => JSON.stringify(s);

/** A Go %s of a []string: [a b c]. */
const goSlice = (a: unknown[]) => `[${a.map(String).join(" ")}]`;

const JS_TO_GO: Record<string, string> = { string: "string", number: "number", boolean: "bool", object: "object" };

function goType(v: unknown): string {
  if (Array.isArray(v)) return "array";
  return JS_TO_GO[typeof v] ?? "value";
}

interface CampaignBody {
  redirect_url?: string;
  platforms?: string[] | null;
}

/** Decodes a body as Go's json.Unmarshal into the Campaign struct would: field names case-insensitive, the rest ignored. */
function decodeBody(raw: string): CampaignBody {
  if (raw.trim() === "") throw new O7Error("EOF");
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    const c = raw.trim()[0]!;
    throw new O7Error(/[[{"\d-tfn]/.test(c) ? "unexpected EOF" : `invalid character '${c}' looking for beginning of value`);
  }
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new O7Error(`json: cannot unmarshal ${goType(v)} into Go value of type main.Campaign`);
  const out: CampaignBody = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    const key = k.toLowerCase();
    if (key === "redirect_url") {
      if (val === null) continue;
      if (typeof val !== "string")
        throw new O7Error(`json: cannot unmarshal ${goType(val)} into Go struct field Campaign.redirect_url of type string`);
      out.redirect_url = val;
    } else if (key === "platforms") {
      if (val === null) {
        out.platforms = null;
        continue;
      }
      if (!Array.isArray(val)) throw new O7Error(`json: cannot unmarshal ${goType(val)} into Go struct field Campaign.platforms of type []string`);
      for (const p of val)
        if (typeof p !== "string") throw new O7Error(`json: cannot unmarshal ${goType(p)} into Go struct field Campaign.platforms of type string`);
      out.platforms = val as string[];
    }
    // id, created_at, updated_at and the counters are the server's: a client's values are ignored
  }
  return out;
}

/** The original's validation, messages verbatim (typo included); Clicktrail also needs an absolute http(s) URL. */
function validate(redirectUrl: string, platforms: string[]): void {
  if (redirectUrl === "") throw new O7Error(`"redirect_url" is required parameter`);
  let ok: boolean;
  try {
    const u = new URL(redirectUrl);
    ok = (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && redirectUrl.length <= 4096;
  } catch {
    ok = false;
  }
  if (!ok) throw new O7Error(`Invalid "redirect_url"`);
  if (!platforms.every(isO7)) throw new O7Error(`Submited platforms are invalid ${goSlice(platforms)}`);
}

/** A campaign's platforms as rules: one per platform, named as o7tracker spells it, all to the redirect URL. */
function platformRules(platforms: O7Platform[], target: string): TargetRule[] {
  return [...new Set(platforms)].map((p) => ({ name: p, target, platform: [O7_PLATFORMS[p]] }));
}

/** Whether a rule is one of a campaign's platform rules (a single o7tracker platform, nothing else). */
function isPlatformRule(r: TargetRule): boolean {
  return (
    isO7(r.name) &&
    r.platform?.length === 1 &&
    r.platform[0] === O7_PLATFORMS[r.name] &&
    !r.language &&
    !r.country &&
    !r.query &&
    r.after === undefined &&
    r.before === undefined
  );
}

/** The platforms o7tracker can show for a link: of its rules' single-platform conditions, then its allowed platforms. */
function platformsOf(link: Link): O7Platform[] {
  const out: O7Platform[] = [];
  const add = (p: string) => {
    const n = o7Of(p);
    if (n && !out.includes(n)) out.push(n);
  };
  for (const r of link.rules) if (r.platform?.length === 1) add(r.platform[0]!);
  for (const p of link.allowed_platforms ?? []) add(p);
  return out;
}

/** What Go's http.Redirect writes: Location, for GET and HEAD an HTML content type, for GET a one-line body. */
function goRedirectParts(method: string, location: string, code: 301 | 307) {
  const headers: Record<string, string> = { location };
  if (method === "GET" || method === "HEAD") headers["content-type"] = "text/html; charset=utf-8";
  const text = code === 301 ? "Moved Permanently" : "Temporary Redirect";
  const href = location.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&#34;").replace(/'/g, "&#39;");
  return { headers, body: method === "GET" ? `<a href="${href}">${text}</a>.\n\n` : "" };
}

export async function o7trackerRoutes(app: FastifyInstance, deps: O7Deps) {
  const { config, mount, auth, links, store, writer } = deps;
  let projectId: number | null = null;
  const project = async () => (projectId ??= (await auth.ensureDefaultProject()).id);
  const throttle = new FailureThrottle(O7_MAX_FAILURES, O7_WINDOW_MS);

  // the original reads its body whatever the content type says (curl -d sends form encoding)
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));

  /** Go's http.Redirect: the Location, and for GET a short HTML body. */
  function goRedirect(reply: FastifyReply, method: string, location: string, code: 301 | 307) {
    const r = goRedirectParts(method, location, code);
    return reply.code(code).headers(r.headers).send(r.body);
  }

  const fallback = (req: FastifyRequest, reply: FastifyReply) => goRedirect(reply, req.method, config.fallbackUrl, 307);

  function sendJson(reply: FastifyReply, status: number, body: unknown) {
    return reply.code(status).type("application/json; charset=utf-8").send(goJson(body));
  }

  function authorized(req: FastifyRequest): boolean {
    const { authUser, authPassword } = config;
    // unlike the original, an unconfigured dialect lets nobody in (the original let requests without credentials in)
    if (!authUser || !authPassword) return false;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i < 0) return false;
    const [user, pass] = [decoded.slice(0, i), decoded.slice(i + 1)];
    // as the original: user and password compared case-insensitively (strings.EqualFold), here in constant time
    const eq = (a: string, b: string) => {
      const x = Buffer.from(a.toLowerCase());
      const y = Buffer.from(b.toLowerCase());
      return x.length === y.length && timingSafeEqual(x, y);
    };
    return eq(user, authUser) && eq(pass, authPassword);
  }

  /** The link domain the dialect's campaigns are created on (created in the default project when missing). */
  async function campaignDomain(): Promise<string> {
    const d = await store.getDomainByHostname(config.domain);
    if (d) {
      if (d.project_id !== (await project()))
        throw new O7Error(`CLICKTRAIL_O7TRACKER_DOMAIN ${config.domain} belongs to another project; choose another hostname`);
      return d.hostname;
    }
    try {
      return (await deps.domains.create(await project(), { hostname: config.domain })).hostname;
    } catch (e) {
      // created meanwhile by a concurrent request or another instance
      if (e instanceof AppError && e.status === 409) return config.domain;
      throw e;
    }
  }

  /** Counts of each link from the rollups (bot clicks included: the original counted every click). */
  async function counts(link: Link) {
    const range = {
      scope: "link" as const,
      scope_id: link.id,
      from: link.created_at - (link.created_at % SLOT_MS),
      to: Date.now() + SLOT_MS,
      includeBots: true,
    };
    const [series, byPlatform] = await Promise.all([store.statsSeries(range), store.statsBreakdown(range, "platform", 100)]);
    const of = (p: string) => byPlatform.find((b) => b.value === p)?.clicks ?? 0;
    return {
      click_count: series.reduce((n, r) => n + r.clicks, 0),
      android_click_count: of("android"),
      iphone_click_count: of("ios"),
      windowsphone_click_count: of("windows-phone"),
    };
  }

  /** A link as o7tracker's Campaign JSON, fields in the original's order. */
  async function campaignJson(link: Link) {
    return {
      id: link.id,
      redirect_url: link.target,
      created_at: rfc3339(link.created_at),
      updated_at: rfc3339(link.updated_at),
      platforms: platformsOf(link),
      ...(await counts(link)),
    };
  }

  async function getLink(rawId: string): Promise<Link> {
    const id = parseInt64(rawId);
    if (id <= 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new O7Error("datastore: no such entity");
    try {
      return await links.get(await project(), Number(id));
    } catch (e) {
      if (e instanceof AppError && e.status === 404) throw new O7Error("datastore: no such entity");
      throw e;
    }
  }

  async function create(raw: string) {
    const body = decodeBody(raw);
    const url = body.redirect_url ?? "";
    const platforms = body.platforms ?? [];
    validate(url, platforms);
    const link = await links.create(await project(), {
      domain: await campaignDomain(),
      target: url,
      tags: [O7_TAG],
      rules: platformRules(platforms as O7Platform[], url),
    });
    return campaignJson(link);
  }

  async function update(rawId: string, raw: string) {
    const link = await getLink(rawId);
    const body = decodeBody(raw);
    // json.Unmarshal onto the stored campaign: absent fields keep their values, a given list replaces the old one
    const url = body.redirect_url ?? link.target;
    const platforms = body.platforms === undefined ? platformsOf(link) : (body.platforms ?? []);
    validate(url, platforms);
    // the campaign's own platform rules are replaced; rules added natively stay (first: they are more specific)
    const keep = link.rules.filter((r) => !isPlatformRule(r));
    const own = link.rules.filter(isPlatformRule);
    const targetOf = (p: O7Platform) => {
      const r = own.find((x) => x.name === p);
      // a platform rule that was sent elsewhere natively keeps its target; the others follow redirect_url
      return r && r.target !== link.target ? r.target : url;
    };
    const rules = [...keep, ...[...new Set(platforms as O7Platform[])].map((p) => ({ name: p, target: targetOf(p), platform: [O7_PLATFORMS[p]] }))];
    const updated = await links.update(await project(), link.id, { target: url, rules });
    return campaignJson(updated);
  }

  async function list(platformsParam: string | undefined) {
    const pid = await project();
    const all = new Map<number, Link>();
    for (const filter of [{ tag: O7_TAG }, { targeted: true }]) {
      for (let cursor: string | undefined; ;) {
        const page = await links.list(pid, { ...filter, cursor, limit: 1000 });
        for (const l of page.links) all.set(l.id, l);
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
    }
    // ?platforms=A,B: every supported name must be among the campaign's platforms; unsupported names are ignored
    const wanted = (platformsParam ?? "").split(",").filter(isO7);
    const found = [...all.values()]
      .filter((l) => wanted.every((p) => platformsOf(l).includes(p)))
      .sort((a, b) => b.created_at - a.created_at || b.id - a.id);
    await writer.flushRollups();
    // as the original: no campaigns is null, not []
    return found.length ? Promise.all(found.map(campaignJson)) : null;
  }

  async function admin(req: FastifyRequest<{ Querystring: Record<string, string | string[]> }>, reply: FastifyReply) {
    const client = `ip:${req.ip}`;
    const wait = throttle.wait(client);
    if (wait > 0) {
      // checked before the credentials: once throttled, even the right password waits, so guessing on is pointless
      return reply
        .code(429)
        .header("retry-after", String(Math.ceil(wait / 1000)))
        .type("text/plain; charset=utf-8")
        .send(`{"status":"error", "msg": "Too many wrong credentials; try again in ${Math.ceil(wait / 60_000)} minute(s)."}\n`);
    }
    if (!authorized(req)) {
      // a request without credentials guesses nothing: only wrong credentials count
      if (req.headers.authorization) throttle.fail(client);
      return reply.code(403).type("text/plain; charset=utf-8").send(`{"status":"error", "msg": "Missing or wrong credentials."}\n`);
    }
    const path = req.url.split("?")[0]!.slice(mount.length);
    const rest = path.replace(/^\/admin\/campaig?ns/, "");
    const hasSlash = rest.startsWith("/");
    const rawId = hasSlash ? rest.slice(1) : "";
    throttle.reset(client);
    const raw = typeof req.body === "string" ? req.body : "";
    try {
      switch (req.method) {
        case "POST":
          return sendJson(reply, 200, await create(raw));
        case "PUT":
          if (!hasSlash) throw new O7Error("a campaign id is required: PUT /admin/campaigns/{id}");
          return sendJson(reply, 200, await update(rawId, raw));
        case "DELETE": {
          if (!hasSlash) throw new O7Error("a campaign id is required: DELETE /admin/campaigns/{id}");
          const link = await getLink(rawId);
          await links.delete(await project(), link.id);
          return reply.code(204).type("application/json; charset=utf-8").send("");
        }
        default: {
          if (!hasSlash) {
            const p = req.query.platforms;
            return sendJson(reply, 200, await list(Array.isArray(p) ? p[0] : p));
          }
          const link = await getLink(rawId);
          await writer.flushRollups();
          return sendJson(reply, 200, await campaignJson(link));
        }
      }
    } catch (e) {
      const msg = e instanceof O7Error ? e.message : e instanceof AppError ? e.message : null;
      if (msg === null) throw e;
      return sendJson(reply, 500, { msg, status: "error" });
    }
  }

  for (const spelling of ["campaigns", "campains"]) {
    app.all(`/admin/${spelling}`, { schema: { hide: true } }, admin);
    app.all(`/admin/${spelling}/*`, { schema: { hide: true } }, admin);
  }

  app.all("/track", { schema: { hide: true } }, (req, reply) => goRedirect(reply, req.method, `${mount}/track/`, 301));

  app.all<{ Params: { "*": string } }>("/track/*", { schema: { hide: true } }, async (req, reply) => {
    const url = req.raw.url ?? "";
    const q = url.indexOf("?");
    const query = q >= 0 ? url.slice(q + 1) : "";
    const rawId = req.params["*"];
    let id: bigint;
    try {
      id = parseInt64(rawId);
    } catch {
      return fallback(req, reply);
    }
    const platform = new URLSearchParams(query).get("platform") ?? "";
    if (!isO7(platform) || id <= 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) return fallback(req, reply);
    const resolved = await deps.resolver.linkById(await project(), Number(id));
    if (!resolved) return fallback(req, reply);
    reply.hijack();
    await deps.track(req.raw, reply.raw, resolved, {
      query,
      // the click's platform is the one asked for, as the original counted it (also on a campaign without platforms)
      explicitPlatform: true,
      status: 307,
      channel: "o7tracker",
      // the original redirected every supported platform, listed or not (its integration test relies on it)
      enforcePlatforms: false,
      refuse: () => {
        const r = goRedirectParts(req.method, config.fallbackUrl, 307);
        reply.raw.writeHead(307, { ...r.headers, "Content-Length": Buffer.byteLength(r.body) });
        reply.raw.end(r.body);
      },
    });
  });

  app.all("/tasks/update_stats", { schema: { hide: true } }, async (_req, reply) => {
    // counts are live; this commits what is pending so that a client reading right after sees every click
    await writer.flushRollups();
    return reply.code(200).type("text/plain; charset=utf-8").send("Updated.");
  });

  // unmatched paths under a mount path go to the fallback; at the root, the app's own not-found handler asks `fallback`
  if (mount !== "") app.setNotFoundHandler(fallback);
  return { fallback };
}
