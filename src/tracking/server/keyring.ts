import { randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Store, TrackingKey } from "../../store/port.js";
import {
  getClickTrackingResult,
  getClickTrackingUrl,
  getOpenTrackingResult,
  getOpenTrackingUrl,
  peekKeyId,
  TrackingError,
  type TrackingConfig,
  type TrackingResult,
} from "../index.js";

export interface DecodedToken {
  projectId: number;
  result: TrackingResult;
  format: "clicktrail" | "pytracking" | "unsigned";
}

export interface EncodeOptions {
  format?: "clicktrail" | "pytracking";
  encrypt?: boolean;
  expiresInSeconds?: number;
  caseInsensitive?: boolean;
  webhookUrl?: string;
}

/** A fresh secret: 32 random bytes, base64url (Fernet keys keep their padding, as Fernet wants). */
export function newSecret(kind: TrackingKey["kind"]): string {
  const b = randomBytes(32);
  return kind === "fernet" ? b.toString("base64").replace(/\+/g, "-").replace(/\//g, "_") : b.toString("base64url");
}

/**
 * The projects' tracking keys, for the tracking routes: encodes with a project's newest key, and decodes a token by
 * finding the key that verifies it (the compact format names its key; Fernet tokens are tried against each Fernet key;
 * unsigned pytracking links only when an allowlist of target hosts is configured). Keys are reloaded when changed.
 */
/** Verified tokens of one kind, bounded by their length (see TrackingKeyring.verified). */
const verifiedTokens = () => new LRUCache<string, DecodedToken>({ maxSize: 8 * 1024 * 1024, sizeCalculation: (_v, k) => k.length + 256 });

export class TrackingKeyring {
  private keys: Promise<TrackingKey[]> | null = null;
  /**
   * Tokens verified lately (per kind, token → what it decoded to): a pixel fetched again (mail clients and privacy
   * proxies fetch each several times) or a link clicked again skips the verification (an HMAC, or Fernet's AES and HMAC,
   * about a seventh of a request's time). Only tokens that verified; an expiring one is checked against the clock on
   * every hit; dropped whenever the keys change (a revoked key's tokens stop working at once). Bounded by the tokens'
   * length (at most 8 MB of them per kind), since a token may be 8 KB. Keyed by the token as it came (one cache per kind,
   * not a kind's letter prepended: that string was built, flattened and hashed anew for every request, 0.3 µs of one).
   */
  private verified = { click: verifiedTokens(), open: verifiedTokens() };
  /** keys being created, per project and kind: concurrent first uses create one key, not one each */
  private creating = new Map<string, Promise<TrackingKey>>();

  constructor(
    private readonly store: Store,
    /** target hosts unsigned (pytracking plain) click links may redirect to; empty = unsigned links refused */
    private readonly unsignedHosts: string[] = [],
    /** the project unsigned links are recorded in */
    private readonly unsignedProject: () => Promise<number>,
  ) {}

  invalidate() {
    this.keys = null;
    this.creating.clear();
    this.verified.click.clear();
    this.verified.open.clear();
  }

  /** The active keys (one query, however many requests ask at once). */
  private all(): Promise<TrackingKey[]> {
    if (this.keys) return this.keys;
    const p = (this.keys = this.store.activeTrackingKeys());
    // a failed read is not kept: the next request reads again
    p.catch(() => {
      if (this.keys === p) this.keys = null;
    });
    return p;
  }

  /** The project's newest key of a kind, created on first use. */
  async keyFor(projectId: number, kind: TrackingKey["kind"]): Promise<TrackingKey> {
    const found = (await this.all()).find((k) => k.project_id === projectId && k.kind === kind);
    if (found) return found;
    const slot = `${projectId}/${kind}`;
    let creating = this.creating.get(slot);
    if (!creating) {
      creating = this.store
        .createTrackingKey({ project_id: projectId, kid: randomBytes(4).toString("hex"), kind, secret: newSecret(kind) })
        // the new key joins the active ones; the slot stays (until another change): a request that read the keys before
        // it existed finds it here rather than creating another
        .finally(() => (this.keys = null));
      this.creating.set(slot, creating);
      // a creation that failed is tried again by the next request
      creating.catch(() => this.creating.get(slot) === creating && this.creating.delete(slot));
    }
    return creating;
  }

  async encode(
    projectId: number,
    kind: "click" | "open",
    base: string,
    url: string | undefined,
    metadata: Record<string, unknown>,
    o: EncodeOptions,
  ) {
    const format = o.format ?? "clicktrail";
    const key = await this.keyFor(projectId, format === "pytracking" ? "fernet" : "clicktrail");
    const config: TrackingConfig = {
      format,
      baseClickTrackingUrl: `${base}/t/c/`,
      baseOpenTrackingUrl: `${base}/t/o/`,
      ...(format === "pytracking" ? { encryptionKey: key.secret } : { signingKeys: [{ id: key.kid, secret: key.secret }] }),
      ...(o.encrypt ? { encrypt: true } : {}),
      ...(o.expiresInSeconds ? { expiresInSeconds: o.expiresInSeconds } : {}),
      ...(o.caseInsensitive ? { caseInsensitive: true } : {}),
      ...(o.webhookUrl ? { webhookUrl: o.webhookUrl, includeWebhookUrl: true } : {}),
    };
    return kind === "click" ? getClickTrackingUrl(url!, metadata, config) : getOpenTrackingUrl(metadata, config);
  }

  /** The token's project and content, or null when no key verifies it (tampered, unknown, expired, malformed). */
  async decode(kind: "click" | "open", token: string): Promise<DecodedToken | null> {
    const hit = this.cachedDecode(kind, token);
    if (hit !== undefined) return hit;
    const keysBefore = this.keys;
    const decoded = await this.verify(kind, token);
    // (not when the keys changed while it was verified: it may have been verified with a key revoked meanwhile)
    if (decoded && this.keys === keysBefore && keysBefore !== null) this.verified[kind].set(token, decoded);
    return decoded;
  }

  /** decode() without waiting, for the hot path: a token verified lately (null once it expired), else undefined. */
  cachedDecode(kind: "click" | "open", token: string): DecodedToken | null | undefined {
    const cache = this.verified[kind];
    const hit = cache.get(token);
    if (!hit) return undefined;
    const expiresAt = hit.result.expiresAt;
    if (expiresAt === null || Math.floor(Date.now() / 1000) < expiresAt) return hit;
    cache.delete(token);
    return null;
  }

  private async verify(kind: "click" | "open", token: string): Promise<DecodedToken | null> {
    const decode = kind === "click" ? getClickTrackingResult : getOpenTrackingResult;
    const attempt = (config: TrackingConfig): TrackingResult | null => {
      try {
        return decode(token, { includeWebhookUrl: true, ...config });
      } catch (e) {
        if (e instanceof TrackingError) return null;
        throw e;
      }
    };
    const keys = await this.all();
    // the compact format names its key: straight to it (and so to its project)
    const kid = (() => {
      try {
        return peekKeyId(token);
      } catch {
        return null;
      }
    })();
    if (kid) {
      for (const k of keys) {
        if (k.kind !== "clicktrail" || k.kid !== kid) continue;
        const r = attempt({ format: "clicktrail", signingKeys: [{ id: k.kid, secret: k.secret }] });
        if (r) return { projectId: k.project_id, result: r, format: "clicktrail" };
      }
      return null;
    }
    for (const k of keys) {
      if (k.kind !== "fernet") continue;
      const r = attempt({ format: "pytracking", encryptionKey: k.secret });
      if (r) return { projectId: k.project_id, result: r, format: "pytracking" };
    }
    if (this.unsignedHosts.length) {
      const r = attempt({ format: "pytracking", allowUnsigned: true });
      if (r) {
        // an unsigned link is an open redirect: only to allowed hosts
        if (kind === "click" && !this.allowedTarget(r.trackedUrl)) return null;
        return { projectId: await this.unsignedProject(), result: r, format: "unsigned" };
      }
    }
    return null;
  }

  private allowedTarget(url: unknown): boolean {
    if (typeof url !== "string") return false;
    try {
      const h = new URL(url).hostname.toLowerCase();
      return this.unsignedHosts.some((a) => h === a || h.endsWith(`.${a}`));
    } catch {
      return false;
    }
  }
}
