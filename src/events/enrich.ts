import { isbot } from "isbot";
import { LRUCache } from "lru-cache";
import { UAParser } from "ua-parser-js";
import { sha256 } from "../util/hash.js";
import { RecentKeys } from "../util/recent.js";

/** What Clicktrail derives from a user agent: parsed once per distinct string, then cached. */
export interface UaInfo {
  /**
   * the agent itself, as one string for every request that sends it (its hash computed once): events carry this one,
   * so what compares or looks them up later (the packer's string table) does not hash each request's copy again
   */
  ua: string;
  browser: string;
  os: string;
  device: string;
  platform: string;
  bot: boolean;
}

const uaCache = new LRUCache<string, UaInfo>({ max: 20_000 });

function platformOf(os: string, ua: string): string {
  const o = os.toLowerCase();
  if (o === "android") return "android";
  if (o === "ios" || /\b(iphone|ipad|ipod)\b/i.test(ua)) return "ios";
  if (o === "windows phone" || o === "windows mobile") return "windows-phone";
  if (o === "windows") return "windows";
  if (o === "mac os" || o === "macos") return "macos";
  if (o === "chromium os" || o === "chrome os") return "chromeos";
  if (["linux", "ubuntu", "debian", "fedora", "arch", "mint", "gentoo", "centos", "red hat", "suse"].includes(o)) return "linux";
  return o ? "other" : "";
}

/** the user agents parsed last (see RecentKeys): most clicks come from a few browsers' current versions */
const recentUa = new RecentKeys<UaInfo>();

export function parseUa(ua: string | undefined): UaInfo {
  if (!ua) return { ua: ua ?? "", browser: "", os: "", device: "", platform: "", bot: true };
  let info = recentUa.get(ua);
  if (info) return info;
  info = uaCache.get(ua) ?? parsed(ua);
  recentUa.put(ua, info);
  return info;
}

function parsed(ua: string): UaInfo {
  const r = new UAParser(ua).getResult();
  const os = r.os.name ?? "";
  const type = r.device.type;
  const bot = isbot(ua);
  const info: UaInfo = {
    ua,
    browser: r.browser.name ?? "",
    os,
    device: bot ? "bot" : type === "mobile" || type === "tablet" ? type : type ? "other" : "desktop",
    platform: platformOf(os, ua),
    bot,
  };
  uaCache.set(ua, info);
  return info;
}

/** referrer → host: every committed event's rollup needs it, and a site's events mostly share a few referrers */
const hosts = new Map<string, string>();

export function referrerHost(referrer: string | undefined): string {
  if (!referrer) return "";
  let host = hosts.get(referrer);
  if (host !== undefined) return host;
  try {
    host = new URL(referrer).hostname;
  } catch {
    host = "";
  }
  if (hosts.size >= 10_000) hosts.clear();
  hosts.set(referrer, host);
  return host;
}

/** Visitor id when cookies are off: a hash of the daily salt, project, IP and user agent (not reversible). */
export function hashedVisitor(salt: string, projectId: number, ip: string, ua: string): string {
  return "h" + sha256(`${salt}|${projectId}|${ip}|${ua}`, "base64url").slice(0, 22);
}
