import { HeaderTemplate, PreparedHead, writePrepared, type HotRequest, type HotResponse } from "../http/fast-lane.js";
import type { Config } from "../config.js";
import { AppError, problem } from "../errors.js";
import type { EventLog, WriteOptions } from "../events/writer.js";
import { hashedVisitor, parseUa, type UaInfo } from "../events/enrich.js";
import type { DailySalt } from "../events/salt.js";
import type { GeoIp } from "../events/geoip.js";
import type { LinkOutcome, Metrics } from "../ops/metrics.js";
import type { Domain, EventRow, Platform } from "../store/port.js";
import { randomId } from "../util/ids.js";
import { clientIp, storedIp, type TrustFn } from "../util/net.js";
import type { LinkResolver, ResolvedLink } from "./resolver.js";
import { deviceOf, explicitPlatform, matchesPlatform, matchRule, type KeptTarget } from "./targeting.js";
import { forwardQuery } from "./validate.js";

export const VISITOR_COOKIE = "ct_vid";
const COOKIE_RE = new RegExp(`(?:^|;\\s*)${VISITOR_COOKIE}=([A-Za-z0-9_-]{8,64})`);
const TWO_YEARS = 2 * 365 * 86400;
/** a new visitor's cookie (its value: the visitor's id) */
const VISITOR_SET_COOKIE = new HeaderTemplate("Set-Cookie", `${VISITOR_COOKIE}=`, `; Max-Age=${TWO_YEARS}; Path=/; SameSite=Lax; HttpOnly`);

/**
 * A link path's non-empty segments, percent-decoded (`/summer/`, `/summer/ig` → `["summer"]`, `["summer", "ig"]`); a
 * path that is not valid percent-encoding is one segment, as it came. (By hand: `split`, `filter` and `map` cost a
 * redirect three arrays and a runtime call.)
 */
export function pathSegments(pathname: string): string[] {
  const segments: string[] = [];
  let from = 0;
  while (from < pathname.length) {
    let to = pathname.indexOf("/", from);
    if (to < 0) to = pathname.length;
    if (to > from) segments.push(pathname.slice(from, to));
    from = to + 1;
  }
  if (!pathname.includes("%")) return segments;
  try {
    return segments.map(decodeURIComponent);
  } catch {
    return [pathname];
  }
}

export interface RedirectDeps {
  config: Config;
  resolver: LinkResolver;
  writer: EventLog;
  salt: DailySalt;
  metrics: Metrics;
  trust: TrustFn;
  geoip: GeoIp | null;
  log: { error(obj: object, msg: string): void };
  /** Grants a click against max_clicks across instances (PostgreSQL); without it the cached count decides. */
  claimClick?: (linkId: number) => Promise<boolean>;
}

type Outcome = LinkOutcome;

/**
 * The redirect hot path, outside the web framework: Host + slug → cached link → record the click → 302.
 * The answer is sent only once the click is stored (committed in a group commit, or in the writer's journal, which
 * survives a crash as the database's log does), so an answered click is never lost.
 */
export function createRedirectHandler(deps: RedirectDeps) {
  const { config, resolver, writer, salt, metrics, trust } = deps;
  const outcomes = metrics.linkOutcomes;
  const counters: Record<Outcome, { inc(): void }> = {
    redirect: { inc: () => void outcomes.redirect++ },
    not_found: { inc: () => void outcomes.not_found++ },
    gone: { inc: () => void outcomes.gone++ },
    error: { inc: () => void outcomes.error++ },
  };

  function send(res: HotResponse, status: number, headers: Record<string, string | number>, body = "") {
    headers["Content-Length"] = Buffer.byteLength(body);
    // an answer with a body is read as the type it says, never sniffed (a redirect has none: no bytes spent there)
    if (body !== "") headers["X-Content-Type-Options"] = "nosniff";
    res.writeHead(status, headers);
    res.end(body);
  }

  /** A redirect's headers but the cookie: kept with a target kept (see KeptTarget), made anew for one made per request. */
  function redirectHead(status: number, target: KeptTarget | string): PreparedHead {
    const temporary = status === 302 || status === 307;
    if (typeof target === "string") return makeRedirectHead(temporary, target);
    const heads = (target.heads ??= { temporary: null, permanent: null });
    if (temporary) return (heads.temporary ??= makeRedirectHead(true, target.location));
    return (heads.permanent ??= makeRedirectHead(false, target.location));
  }

  function makeRedirectHead(temporary: boolean, location: string): PreparedHead {
    return new PreparedHead(
      temporary
        ? ["Location", location, "Content-Length", "0", "Cache-Control", "private, max-age=0"]
        : ["Location", location, "Content-Length", "0"],
    );
  }

  /** `newVisitor`: the id of a visitor seen for the first time, set in their cookie */
  function redirectTo(res: HotResponse, status: number, target: KeptTarget | string, newVisitor: string | null) {
    writePrepared(res, status, redirectHead(status, target), null, newVisitor !== null ? VISITOR_SET_COOKIE : null, newVisitor ?? "");
    res.end();
  }

  function unavailable(res: HotResponse, err: unknown) {
    counters.error.inc();
    // a known cause (a full disk: 507 storage-full) is named; the rest is a 503
    const known = err instanceof AppError && err.status >= 500 ? err : null;
    deps.log.error({ err: known ? known.message : err }, `click not stored; answered ${known?.status ?? 503}`);
    send(
      res,
      known?.status ?? 503,
      { "Content-Type": "application/problem+json", "Retry-After": known?.status === 507 ? 10 : 1 },
      JSON.stringify(
        known
          ? problem(known.status, known.type, `the click could not be recorded: ${known.message}`)
          : problem(503, "storage-unavailable", "the click could not be recorded; try again in a moment"),
      ),
    );
  }

  function page(res: HotResponse, status: 404 | 410, head: boolean) {
    const text = status === 404 ? "Not Found: there is no link here." : "Gone: this link has expired.";
    const body = `<!doctype html><meta charset="utf-8"><title>${status}</title><p>${text}</p>\n`;
    res.writeHead(status, {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Length": Buffer.byteLength(body),
      "Cache-Control": "private, max-age=0",
      "X-Content-Type-Options": "nosniff",
    });
    res.end(head ? undefined : body);
  }

  /**
   * What every click shares: the parsed user agent, the visitor, the base event. At once, except while the day's
   * visitor salt is read (the first click of a day).
   */
  function baseEvent(req: HotRequest, projectId: number, now: number): Base | Promise<Base> {
    const method = req.method ?? "GET";
    // bounded, so rotating huge headers can neither bloat the parsed-UA cache nor the log
    const ua = req.headers["user-agent"]?.slice(0, 512);
    const info = parseUa(ua);
    const isBot = info.bot || method === "HEAD";
    const ip = clientIp(req, trust);
    let newVisitor: string | null = null;
    let visitor: string;
    if (config.visitorCookie && !isBot) {
      const m = COOKIE_RE.exec(req.headers.cookie ?? "");
      if (m) visitor = m[1]!;
      else visitor = newVisitor = randomId();
    } else {
      const s = salt.get(now);
      if (typeof s !== "string") return s.then(() => baseEvent(req, projectId, now));
      visitor = hashedVisitor(s, projectId, ip, ua ?? "");
    }
    const referrer = req.headers.referer?.slice(0, 2048);
    const event: EventRow = {
      project_id: projectId,
      ts: now,
      client_ts: null,
      name: "click",
      visitor,
      session: null,
      link_id: null,
      domain_id: null,
      campaign_id: null,
      source: "link",
      channel: null,
      platform: info.platform || null,
      ip: storedIp(ip, config.ipMode),
      ua: ua === undefined ? null : info.ua,
      referrer: referrer ?? null,
      browser: info.browser || null,
      os: info.os || null,
      device: info.device || null,
      is_bot: isBot,
      country: deps.geoip?.country(ip) ?? null,
      rule: null,
      data: null,
    };
    return { event, info, isBot, newVisitor, head: method === "HEAD" };
  }

  interface Base {
    event: EventRow;
    info: UaInfo;
    isBot: boolean;
    /** a visitor seen for the first time: their new id, set in their cookie with the answer */
    newVisitor: string | null;
    head: boolean;
  }

  /**
   * Stores the click, then answers; a click that cannot be stored is answered 503 (or 507: the disk is full).
   * (Callbacks, not awaits, on this path and the ones leading here: each await costs every click.)
   */
  function commit(
    res: HotResponse,
    event: EventRow,
    outcome: Outcome,
    respond: () => void,
    undo?: () => void,
    options?: WriteOptions,
  ): Promise<void> {
    const counter = counters[outcome];
    return writer.write(event, options).then(
      () => {
        counter.inc();
        respond();
      },
      (err) => {
        undo?.();
        unavailable(res, err);
      },
    );
  }

  /** A click on a known link, on its way through followLink: what its steps share. */
  interface Click {
    res: HotResponse;
    resolved: ResolvedLink;
    b: Base;
    query: string;
    acceptLanguage: string | undefined;
    opts: Follow;
  }

  interface Follow {
    refuse: (status: 404 | 410) => void;
    status?: number;
    enforcePlatforms?: boolean;
    explicitPlatform?: boolean;
  }

  /**
   * A click on a known link: expiry, allowed platforms, max_clicks, then the targeting rules choose the target.
   * `refuse` answers a refused click (410 page, 404 page or a fallback); `status` overrides the link's redirect status.
   */
  function followLink(c: Click): Promise<void> {
    const { res, resolved, b, query, opts } = c;
    const { event, info, isBot } = b;
    const link = resolved.link;
    event.link_id = link.id;
    event.campaign_id = link.campaign_id;
    const t = resolved.targeting;
    let platform = info.platform;
    let device = info.device;
    if (t || opts.explicitPlatform) {
      // a targeted link (and a campaign surface) honours an explicit ?platform= (o7tracker's clients send one)
      const explicit = explicitPlatform(query);
      if (explicit) {
        platform = explicit;
        device = deviceOf(explicit);
        event.platform = explicit;
      }
    }
    if (link.expires_at !== null && link.expires_at <= event.ts) return refuse(c, "expired");
    if (t?.allowed && opts.enforcePlatforms !== false && !matchesPlatform(t.allowed, platform, device)) return refuse(c, "platform");
    if (link.max_clicks !== null) {
      // several instances: the shared counter decides for every real click (the cached count can run ahead of it for
      // a moment, when a cache fill reads a flush that was committed but is still counted as pending here)
      if (!isBot && deps.claimClick)
        return deps.claimClick(link.id).then(
          (granted) => (granted ? redirectClick(c, platform, device) : refuse(c, "max_clicks")),
          // without the shared counter we cannot know whether the link is exhausted: no redirect we might regret
          (err) => unavailable(res, err),
        );
      if (link.clicks >= link.max_clicks) return refuse(c, "max_clicks");
    }
    return redirectClick(c, platform, device);
  }

  /** A refused click: recorded as click_refused with its reason, answered by `refuse` (404 for a platform, else 410). */
  function refuse({ res, b, opts }: Click, reason: "expired" | "platform" | "max_clicks"): Promise<void> {
    b.event.name = "click_refused";
    b.event.data = JSON.stringify({ reason });
    return commit(res, b.event, reason === "platform" ? "not_found" : "gone", () => opts.refuse(reason === "platform" ? 404 : 410));
  }

  /** A click granted: the targeting rules choose the target; recorded, then redirected. */
  function redirectClick({ res, resolved, b, query, acceptLanguage, opts }: Click, platform: string, device: string): Promise<void> {
    const { event, isBot, newVisitor } = b;
    const link = resolved.link;
    const t = resolved.targeting;
    let target: KeptTarget | string = resolved;
    if (t && t.rules.length > 0) {
      const m = matchRule(t, { platform: platform as Platform | "", device, now: event.ts, country: event.country, query, acceptLanguage });
      if (m) {
        target = m;
        event.rule = m.rule.name;
      }
    }
    // count against max_clicks now, so concurrent requests cannot overshoot while their commit is pending
    if (!isBot) link.clicks++;
    if (link.forward_query) target = forwardQuery(target.location, query);
    const status = opts.status ?? link.redirect_status;
    return commit(
      res,
      event,
      "redirect",
      () => redirectTo(res, status, target, newVisitor),
      () => {
        if (!isBot) link.clicks--;
      },
      // a link without max_clicks: its click may be answered from the writer's journal (its count is exact for every
      // read all the same, see EventLog.settled); with one, only once committed, so no click overshoots the limit
      { committed: link.max_clicks !== null && !isBot },
    );
  }

  /**
   * A request on a link domain. Settles at once, or returns a promise (of the click's write, of a lookup) that
   * rejects only on a failure no answer was sent for. A throw has sent no answer either.
   */
  function handle(req: HotRequest, res: HotResponse, domain: Domain): Promise<void> | void {
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      return send(
        res,
        405,
        { Allow: "GET, HEAD", "Content-Type": "application/problem+json" },
        JSON.stringify(problem(405, "method-not-allowed", `${method} is not allowed on a link; use GET or HEAD`)),
      );
    }
    const now = Date.now();
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const pathname = q >= 0 ? url.slice(0, q) : url;
    const query = q >= 0 ? url.slice(q + 1) : "";
    const segments = pathSegments(pathname);
    if (segments.length === 1 && (segments[0] === "favicon.ico" || segments[0] === "robots.txt")) {
      if (segments[0] === "robots.txt") return send(res, 200, { "Content-Type": "text/plain" }, "User-agent: *\nDisallow:\n");
      return send(res, 404, {});
    }
    const b = baseEvent(req, domain.project_id, now);
    if (b instanceof Promise) return b.then((b) => onLinkDomain(req, res, domain, b, segments, pathname, query));
    return onLinkDomain(req, res, domain, b, segments, pathname, query);
  }

  function onLinkDomain(
    req: HotRequest,
    res: HotResponse,
    domain: Domain,
    b: Base,
    segments: string[],
    pathname: string,
    query: string,
  ): Promise<void> {
    b.event.domain_id = domain.id;
    const found = (resolved: ResolvedLink | null): Promise<void> => {
      if (!resolved) {
        b.event.data = JSON.stringify({ orphan: segments.length === 0 ? "base_url" : "unknown_slug", path: pathname.slice(0, 512) });
        return commit(res, b.event, "not_found", () => fallbackOr(404));
      }
      b.event.channel = segments[1] ?? "default";
      return followLink({ res, resolved, b, query, acceptLanguage: req.headers["accept-language"], opts: { refuse: fallbackOr } });
    };
    const fallbackOr = (status: 404 | 410) =>
      domain.fallback_url ? redirectTo(res, 302, domain.fallback_url, b.newVisitor) : page(res, status, b.head);
    if (segments.length < 1 || segments.length > 2) return found(null);
    const cached = resolver.cachedLink(domain.id, segments[0]!);
    return cached !== undefined ? found(cached) : resolver.link(domain.id, segments[0]!).then(found);
  }

  /**
   * A click on a link found by id (campaign surfaces: o7tracker's /track/{id}): recorded as source "campaign" with
   * the given status; `refuse` answers when the link refuses the click.
   */
  function track(
    req: HotRequest,
    res: HotResponse,
    resolved: ResolvedLink,
    opts: { query: string; status: number; channel: string; refuse: () => void; enforcePlatforms: boolean; explicitPlatform: boolean },
  ): Promise<void> {
    const follow = (b: Base) => {
      b.event.source = "campaign";
      b.event.domain_id = resolved.link.domain_id;
      b.event.channel = opts.channel;
      return followLink({
        res,
        resolved,
        b,
        query: opts.query,
        acceptLanguage: req.headers["accept-language"],
        opts: { refuse: opts.refuse, status: opts.status, enforcePlatforms: opts.enforcePlatforms, explicitPlatform: opts.explicitPlatform },
      });
    };
    const b = baseEvent(req, resolved.link.project_id, Date.now());
    return b instanceof Promise ? b.then(follow) : follow(b);
  }

  return Object.assign(handle, { track });
}
