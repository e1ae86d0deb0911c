import { domainToASCII } from "node:url";
import { badRequest } from "../errors.js";
import type { Utm } from "../store/port.js";

export const SLUG_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const GENERATED_SLUG_LENGTH = 7;

/** Slugs that would shadow something a link domain serves itself, or that readers would mistake for a page. */
export const RESERVED_SLUGS = new Set([
  "api",
  "docs",
  "dashboard",
  "healthz",
  "metrics",
  "openapi.json",
  "static",
  "assets",
  "admin",
  "login",
  "logout",
  "favicon.ico",
  "robots.txt",
  "tracker.js",
  ".well-known",
]);

/** Lower-cases, drops a port and a trailing dot, and turns an IDN into punycode. */
export function normalizeHostname(input: string): string {
  let h = input.trim().toLowerCase();
  if (h.includes("://"))
    throw badRequest(`hostname must be a bare host name like go.example.com, not a URL: ${JSON.stringify(input)}`, { field: "hostname" });
  h = h.replace(/:\d+$/, "").replace(/\.$/, "");
  const ascii = domainToASCII(h);
  if (!ascii || ascii.length > 253 || !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(ascii)) {
    throw badRequest(`hostname ${JSON.stringify(input)} is not a valid host name`, { field: "hostname" });
  }
  return ascii;
}

export function validateSlug(slug: string): string {
  if (!SLUG_RE.test(slug)) {
    throw badRequest(`slug ${JSON.stringify(slug)} is invalid: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit`, {
      field: "slug",
    });
  }
  if (RESERVED_SLUGS.has(slug.toLowerCase())) throw badRequest(`slug ${JSON.stringify(slug)} is reserved`, { field: "slug" });
  return slug;
}

/** Only absolute http(s) URLs: javascript:, data:, file: and relative URLs are refused. */
export function validateUrl(raw: string, field: string): string {
  if (raw.length > 4096) throw badRequest(`${field} is longer than 4096 characters`, { field });
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw badRequest(`${field} must be an absolute http(s) URL, got ${JSON.stringify(raw.slice(0, 200))}`, { field });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw badRequest(`${field} must use http or https, not ${u.protocol.replace(/:$/, "")}`, { field });
  }
  if (!u.hostname) throw badRequest(`${field} has no host`, { field });
  return raw.trim();
}

export const UTM_KEYS = ["source", "medium", "campaign", "term", "content"] as const;

/** The target with the link's UTM parameters appended (parameters the target already has are kept as they are). */
export function withUtm(target: string, utm: Utm): string {
  const entries = UTM_KEYS.filter((k) => utm[k]).map((k) => [`utm_${k}`, utm[k]!] as const);
  if (entries.length === 0) return target;
  const u = new URL(target);
  for (const [k, v] of entries) if (!u.searchParams.has(k)) u.searchParams.append(k, v);
  return u.toString();
}

/** Appends the request's query string to a location (forward_query). */
export function forwardQuery(location: string, query: string): string {
  if (!query) return location;
  const hash = location.indexOf("#");
  const base = hash >= 0 ? location.slice(0, hash) : location;
  const frag = hash >= 0 ? location.slice(hash) : "";
  return base + (base.includes("?") ? "&" : "?") + query + frag;
}
