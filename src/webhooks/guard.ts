/**
 * The outbound-address guard (server-side request forgery): a webhook URL must be http(s), and every address its host
 * resolves to must be a public one, unless the host or the address is on the allowlist (CLICKTRAIL_WEBHOOK_ALLOW:
 * comma-separated hostnames, IPs or CIDRs). The sender connects to the address vetted here (no second lookup that DNS
 * rebinding could answer differently), keeping the original name for Host and TLS SNI.
 */
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** The raw allowlist from the environment (to move into config.ts). */
export function webhookAllowFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLICKTRAIL_WEBHOOK_ALLOW ?? "";
}

export class UrlRefused extends Error {}

export interface Allowlist {
  hosts: Set<string>;
  addresses: BlockList;
}

export function parseAllowlist(spec: string): Allowlist {
  const hosts = new Set<string>();
  const addresses = new BlockList();
  for (const raw of spec.split(",")) {
    const item = raw
      .trim()
      .toLowerCase()
      .replace(/^\[|\]$/g, "");
    if (!item) continue;
    const slash = item.indexOf("/");
    if (slash > 0) {
      const net = item.slice(0, slash);
      const bits = Number(item.slice(slash + 1));
      const v = isIP(net);
      if (!v || !Number.isInteger(bits)) throw new Error(`CLICKTRAIL_WEBHOOK_ALLOW: ${JSON.stringify(raw.trim())} is not a valid CIDR`);
      addresses.addSubnet(net, bits, v === 4 ? "ipv4" : "ipv6");
    } else if (isIP(item)) addresses.addAddress(item, isIP(item) === 4 ? "ipv4" : "ipv6");
    else hosts.add(item.replace(/\.$/, ""));
  }
  return { hosts, addresses };
}

const BLOCKED = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], // "this network", unspecified
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, incl. the 169.254.169.254 metadata address
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const)
  BLOCKED.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
  ["100::", 64], // discard
] as const)
  BLOCKED.addSubnet(net, bits, "ipv6");

/**
 * An IPv4 address embedded in an IPv6 one (mapped ::ffff:a.b.c.d, translated ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96 and
 * 64:ff9b:1::/48, compatible ::a.b.c.d), in dotted or in hex form (the URL parser writes [::127.0.0.1] as [::7f00:1]),
 * or null.
 */
function embeddedV4(addr: string): string | null {
  const a = addr.toLowerCase();
  const prefix = "(?:::ffff:(?:0:)?|64:ff9b::|64:ff9b:1::|::)";
  const dotted = new RegExp(`^${prefix}(\\d+\\.\\d+\\.\\d+\\.\\d+)$`).exec(a);
  if (dotted) return dotted[1]!;
  const hex = new RegExp(`^${prefix}([0-9a-f]{1,4}):([0-9a-f]{1,4})$`).exec(a);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** Why an address may not be a webhook's destination, or null when it is a public one. */
export function blockedReason(address: string): string | null {
  const v = isIP(address);
  if (v === 0) return "not an IP address";
  if (v === 6) {
    const v4 = embeddedV4(address);
    if (v4) return blockedReason(v4);
    return BLOCKED.check(address, "ipv6") ? "a loopback, private, link-local, multicast or unspecified address" : null;
  }
  return BLOCKED.check(address, "ipv4") ? "a loopback, private, link-local, CGNAT, multicast or unspecified address" : null;
}

function allowedAddress(allow: Allowlist, address: string): boolean {
  const v = isIP(address);
  if (v === 0) return false;
  if (allow.addresses.check(address, v === 4 ? "ipv4" : "ipv6")) return true;
  const v4 = v === 6 ? embeddedV4(address) : null;
  return v4 !== null && allow.addresses.check(v4, "ipv4");
}

export interface VettedTarget {
  url: URL;
  /** the hostname as written (brackets of an IPv6 literal removed) */
  hostname: string;
  address: string;
  family: 4 | 6;
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;
const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** Syntax only: an absolute http(s) URL without credentials. Throws UrlRefused. */
export function checkUrlSyntax(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlRefused("url is not a valid absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UrlRefused(`url must be http or https, not ${url.protocol.slice(0, -1)}`);
  if (url.username || url.password) throw new UrlRefused("url must not carry credentials (user:password@)");
  if (!url.hostname) throw new UrlRefused("url has no host");
  return url;
}

/**
 * Resolves the URL's host and returns the address to connect to: every address the name resolves to must be allowed
 * (one bad address refuses the URL, so a name cannot mix a public and a private one). Throws UrlRefused, also when
 * the name does not resolve.
 */
export async function vetUrl(raw: string, allow: Allowlist, resolve: Resolver = systemResolver): Promise<VettedTarget> {
  const url = checkUrlSyntax(raw);
  const hostname = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const hostAllowed = allow.hosts.has(hostname.replace(/\.$/, ""));
  let addrs: { address: string; family: number }[];
  if (isIP(hostname)) addrs = [{ address: hostname, family: isIP(hostname) }];
  else {
    try {
      addrs = await resolve(hostname);
    } catch (e) {
      throw new UrlRefused(`url's host ${hostname} could not be resolved (${(e as { code?: string }).code ?? (e as Error).message})`);
    }
    if (addrs.length === 0) throw new UrlRefused(`url's host ${hostname} has no address`);
  }
  if (!hostAllowed) {
    for (const a of addrs) {
      if (allowedAddress(allow, a.address)) continue;
      const why = blockedReason(a.address);
      if (why)
        throw new UrlRefused(
          `url's host ${hostname} is (or resolves to) ${a.address}, ${why}: webhooks are not sent there unless CLICKTRAIL_WEBHOOK_ALLOW lists it`,
        );
    }
  }
  const first = addrs[0]!;
  return { url, hostname, address: first.address, family: first.family === 6 ? 6 : 4 };
}
