import { isIPv4, isIPv6 } from "node:net";
import proxyAddr from "proxy-addr";
import type { IncomingMessage } from "node:http";
import type { HotRequest } from "../http/fast-lane.js";
import type { IpMode } from "../config.js";

export type TrustFn = (addr: string, hop: number) => boolean;

export function trustFunction(list: string[]): TrustFn {
  if (list.length === 0) return () => false;
  return proxyAddr.compile(list);
}

/** Client IP: the socket address, or X-Forwarded-For walked back through trusted proxies only. */
export function clientIp(req: HotRequest, trust: TrustFn): string {
  const sock = req.socket.remoteAddress ?? "";
  if (!req.headers["x-forwarded-for"] || !trust(sock, 0)) return stripV4Mapped(sock);
  // (proxy-addr reads only the headers and the socket's address)
  return stripV4Mapped(proxyAddr(req as IncomingMessage, trust));
}

/** Request host without port, lower-cased; X-Forwarded-Host only from a trusted proxy. */
export function requestHost(req: HotRequest, trust: TrustFn): string {
  let host = req.headers.host ?? "";
  const fwd = req.headers["x-forwarded-host"];
  if (fwd && trust(req.socket.remoteAddress ?? "", 0)) {
    host = (Array.isArray(fwd) ? fwd[0] : fwd)!.split(",")[0]!.trim();
  }
  return normalizeHostHeader(host);
}

export function normalizeHostHeader(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.indexOf(":");
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

function stripV4Mapped(ip: string): string {
  return ip.startsWith("::ffff:") && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** Stored form of an IP: IPv4 keeps its /24, IPv6 its /48 when anonymising. */
export function storedIp(ip: string, mode: IpMode): string | null {
  if (mode === "none" || !ip) return null;
  if (mode === "full") return ip;
  if (isIPv4(ip)) return ip.slice(0, ip.lastIndexOf(".")) + ".0";
  if (isIPv6(ip)) {
    const full = expandV6(ip);
    return full.slice(0, 3).join(":") + "::";
  }
  return null;
}

function expandV6(ip: string): string[] {
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t];
}
