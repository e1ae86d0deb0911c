import { badRequest } from "../errors.js";
import { PLATFORM_CONDITIONS, type Platform, type PlatformCondition, type TargetRule } from "../store/port.js";
import { parseTime } from "../util/time.js";
import { validateUrl } from "./validate.js";
import { RecentKeys } from "../util/recent.js";
import type { PreparedHead } from "../http/fast-lane.js";

/**
 * Targeting: a link's ordered rules (first match wins, else the link's own target) and its allowed platforms.
 * Rules are validated and normalised once when saved, compiled once per cache fill, and evaluated per click with
 * what the click already has (the parsed user agent, the query string, one header).
 */

export const MAX_RULES = 32;

/** Spellings accepted in conditions and in `?platform=`, including o7tracker's (Android, IPhone, WindowsPhone). */
const PLATFORM_ALIASES: Record<string, PlatformCondition> = {
  iphone: "ios",
  ipad: "ios",
  ipod: "ios",
  ipados: "ios",
  windowsphone: "windows-phone",
  winphone: "windows-phone",
  mac: "macos",
  osx: "macos",
  "mac-os": "macos",
  "chrome-os": "chromeos",
};

/** A platform or class name as spelled by a user or a query string, or null when it is none. */
export function normalizePlatform(input: string): PlatformCondition | null {
  const k = input
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, "-");
  if ((PLATFORM_CONDITIONS as readonly string[]).includes(k)) return k as PlatformCondition;
  return PLATFORM_ALIASES[k] ?? PLATFORM_ALIASES[k.replace(/-/g, "")] ?? null;
}

const MOBILE = new Set<string>(["android", "ios", "windows-phone"]);
const DESKTOP = new Set<string>(["windows", "macos", "linux", "chromeos"]);

function platformList(v: unknown, field: string): PlatformCondition[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 16) throw badRequest(`${field} must be a list of 1 to 16 platforms`, { field });
  const out = new Set<PlatformCondition>();
  v.forEach((p, i) => {
    const n = typeof p === "string" ? normalizePlatform(p) : null;
    if (!n) throw badRequest(`${field}[${i}]: ${JSON.stringify(p)} is not a platform; use one of ${PLATFORM_CONDITIONS.join(", ")}`, { field });
    out.add(n);
  });
  return [...out];
}

function stringList(v: unknown, field: string, re: RegExp, what: string, norm: (s: string) => string): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 64) throw badRequest(`${field} must be a list of 1 to 64 ${what}s`, { field });
  return [
    ...new Set(
      v.map((x, i) => {
        if (typeof x !== "string" || !re.test(x)) throw badRequest(`${field}[${i}]: ${JSON.stringify(x)} is not a ${what}`, { field });
        return norm(x);
      }),
    ),
  ];
}

function ruleTime(v: unknown, field: string): number {
  const t = parseTime(v, field);
  if (t === undefined) throw badRequest(`${field} must be an ISO 8601 time or epoch milliseconds`, { field });
  return t;
}

const RULE_KEYS = new Set(["name", "target", "platform", "language", "country", "query", "after", "before"]);

/** Validates and normalises a link's rules as sent by a client; errors name the rule and the field. */
export function validateRules(input: unknown): TargetRule[] {
  if (!Array.isArray(input)) throw badRequest("rules must be a list of rules", { field: "rules" });
  if (input.length > MAX_RULES) throw badRequest(`a link has at most ${MAX_RULES} rules`, { field: "rules" });
  const names = new Set<string>();
  return input.map((raw, i) => {
    const at = `rules[${i}]`;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw badRequest(`${at} must be an object`, { field: "rules" });
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r))
      if (!RULE_KEYS.has(k))
        throw badRequest(`${at}: unknown field ${JSON.stringify(k)}; a rule has ${[...RULE_KEYS].join(", ")}`, { field: "rules" });
    if (typeof r.target !== "string") throw badRequest(`${at}.target is required (an absolute http(s) URL)`, { field: "rules" });
    const rule: TargetRule = { name: "", target: validateUrl(r.target, `${at}.target`) };
    if (r.name !== undefined) {
      if (typeof r.name !== "string" || !/^[\p{L}\p{N}][\p{L}\p{N} _.:-]{0,63}$/u.test(r.name))
        throw badRequest(`${at}.name must be 1-64 letters, digits, spaces or _.:- starting with a letter or digit`, { field: "rules" });
      rule.name = r.name;
    }
    if (r.platform !== undefined) rule.platform = platformList(r.platform, `${at}.platform`);
    if (r.language !== undefined)
      rule.language = stringList(r.language, `${at}.language`, /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, "language tag (de, pt-BR)", (s) =>
        s.toLowerCase(),
      );
    if (r.country !== undefined)
      rule.country = stringList(r.country, `${at}.country`, /^[A-Za-z]{2}$/, "two-letter country code", (s) => s.toUpperCase());
    if (r.query !== undefined) {
      const q = r.query;
      if (!q || typeof q !== "object" || Array.isArray(q) || Object.keys(q).length === 0 || Object.keys(q).length > 16)
        throw badRequest(`${at}.query must map 1 to 16 parameter names to true (present) or a string (equal to)`, { field: "rules" });
      rule.query = {};
      for (const [k, v] of Object.entries(q as Record<string, unknown>)) {
        if (k.length === 0 || k.length > 128) throw badRequest(`${at}.query: parameter names are 1-128 characters`, { field: "rules" });
        if (v !== true && (typeof v !== "string" || v.length > 512))
          throw badRequest(`${at}.query.${k} must be true (present) or a string of at most 512 characters (equal to)`, { field: "rules" });
        rule.query[k] = v;
      }
    }
    if (r.after !== undefined) rule.after = ruleTime(r.after, `${at}.after`);
    if (r.before !== undefined) rule.before = ruleTime(r.before, `${at}.before`);
    if (rule.after !== undefined && rule.before !== undefined && rule.after >= rule.before)
      throw badRequest(`${at}: after must be earlier than before`, { field: "rules" });
    rule.name ||= `rule ${i + 1}`;
    if (names.has(rule.name))
      throw badRequest(`${at}.name ${JSON.stringify(rule.name)} is used by an earlier rule; names are unique`, { field: "rules" });
    names.add(rule.name);
    return rule;
  });
}

export function validateAllowedPlatforms(input: unknown): PlatformCondition[] | null {
  if (input === null) return null;
  return platformList(input, "allowed_platforms");
}

/** The rules as the API shows them: times in ISO 8601. */
export function publicRules(rules: TargetRule[]) {
  return rules.map((r) => ({
    ...r,
    ...(r.after !== undefined ? { after: new Date(r.after).toISOString() } : {}),
    ...(r.before !== undefined ? { before: new Date(r.before).toISOString() } : {}),
  }));
}

/** What a click offers to the conditions. Query and language are read lazily: most rules never need them. */
export interface ClickFacts {
  platform: Platform | "";
  device: string;
  now: number;
  country: string | null;
  /** the raw query string, without "?" */
  query: string;
  acceptLanguage: string | undefined;
}

export function matchesPlatform(cond: readonly PlatformCondition[], platform: string, device: string): boolean {
  for (const c of cond) {
    if (c === platform) return true;
    if (c === "mobile" && (MOBILE.has(platform) || device === "mobile" || device === "tablet")) return true;
    if (c === "desktop" && device !== "mobile" && device !== "tablet" && DESKTOP.has(platform)) return true;
  }
  return false;
}

/** Accept-Language headers seen lately and their preferred language: browsers send a handful of distinct ones. */
const languages = new Map<string, string>();
/** the headers looked up last (see RecentKeys): compared before the map, which hashes each new header string first */
const recentLanguages = new RecentKeys<string>();

/** The preferred language of an Accept-Language header (highest q, first on ties), lower-cased; "" when none. */
export function preferredLanguage(header: string | undefined): string {
  if (!header) return "";
  // bounded in entries and in size, so rotating or huge headers cannot grow it without end
  if (header.length > 256) return parseLanguage(header);
  let best = recentLanguages.get(header);
  if (best !== undefined) return best;
  best = languages.get(header);
  if (best === undefined) {
    best = parseLanguage(header);
    if (languages.size >= 1000) languages.clear();
    languages.set(header, best);
  }
  recentLanguages.put(header, best);
  return best;
}

function parseLanguage(header: string): string {
  let best = "";
  let bestQ = -1;
  for (const part of header.slice(0, 1024).split(",")) {
    const [raw, ...params] = part.split(";");
    // optional whitespace around ";" is allowed (RFC 9110 weight = OWS ";" OWS "q=" qvalue)
    const tag = raw!.trim();
    if (!tag || tag === "*") continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q=([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    // q=0 means "not acceptable": never a preference
    if (q > 0 && q > bestQ) {
      best = tag.toLowerCase();
      bestQ = q;
    }
  }
  return best;
}

function queryParams(query: string): URLSearchParams {
  return new URLSearchParams(query);
}

/**
 * Where a click may be sent, kept with what it belongs to (a cached link, a compiled rule): the redirect handler makes
 * its answer's headers on its first click and keeps them here (see PreparedHead), by kind of status.
 */
export interface KeptTarget {
  readonly location: string;
  heads: { temporary: PreparedHead | null; permanent: PreparedHead | null } | null;
}

export interface CompiledTargeting {
  rules: ({ rule: TargetRule } & KeptTarget)[];
  allowed: readonly PlatformCondition[] | null;
  needsQuery: boolean;
}

/** Prepares a link's targeting for the hot path; `locate` adds UTM parameters to each rule's target once. */
export function compileTargeting(
  rules: TargetRule[],
  allowed: PlatformCondition[] | null,
  locate: (target: string) => string,
): CompiledTargeting | null {
  if (rules.length === 0 && !allowed) return null;
  return {
    rules: rules.map((rule) => ({ rule, location: locate(rule.target), heads: null })),
    allowed,
    needsQuery: rules.some((r) => r.query),
  };
}

/** The device class an explicit platform implies (a `?platform=` speaks for the device too). */
export function deviceOf(platform: Platform): "mobile" | "desktop" {
  return MOBILE.has(platform) ? "mobile" : "desktop";
}

/** An explicit platform in the query string (`?platform=Android`), or null. */
export function explicitPlatform(query: string): Platform | null {
  if (!query.includes("platform=")) return null;
  const v = queryParams(query).get("platform");
  const p = v ? normalizePlatform(v) : null;
  return p && p !== "mobile" && p !== "desktop" ? p : null;
}

/** The first matching rule, or null (the link's own target). */
export function matchRule(t: CompiledTargeting, f: ClickFacts): CompiledTargeting["rules"][number] | null {
  let params: URLSearchParams | null = null;
  let lang: string | null = null;
  for (const r of t.rules) {
    const c = r.rule;
    if (c.after !== undefined && f.now < c.after) continue;
    if (c.before !== undefined && f.now >= c.before) continue;
    if (c.platform && !matchesPlatform(c.platform, f.platform, f.device)) continue;
    if (c.country && !(f.country && c.country.includes(f.country))) continue;
    if (c.language) {
      lang ??= preferredLanguage(f.acceptLanguage);
      const l = lang;
      if (!c.language.some((x) => l === x || l.startsWith(x + "-"))) continue;
    }
    if (c.query) {
      params ??= queryParams(f.query);
      const p = params;
      if (!Object.entries(c.query).every(([k, v]) => (v === true ? p.has(k) : p.get(k) === v))) continue;
    }
    return r;
  }
  return null;
}
