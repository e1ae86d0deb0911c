/**
 * Stateless tracking links: pytracking's API in camelCase, writing either pytracking 0.2.3's exact links
 * (`format: "pytracking"`) or Clicktrail's compact, always-authenticated tokens (`format: "clicktrail"`, the default),
 * and reading both (the format is detected from the token).
 *
 * A link is `urljoin(base, token)` (Python's urljoin: the base must end with "/", else its last segment is replaced),
 * plus "/" with appendSlash. The token carries the tracked URL (click links), the metadata and optionally the webhook
 * URL; pytracking's merge rules for default metadata and the webhook URL apply to both formats.
 */
import { fernetDecrypt, fernetEncrypt, type FernetKey } from "./fernet.js";
import { b64urlPadded, decodeB64urlPadded, UTF8 } from "./encoding.js";
import { TrackingError } from "./errors.js";
import { deriveKey, type SigningKey } from "./keys.js";
import { pyJsonDumps } from "./pyjson.js";
import { clicktrailTokenEncoding, decodeClicktrailToken, encodeClicktrailToken, peekClicktrailKeyId, type TokenKind } from "./token.js";
import { pyUrljoin } from "./urljoin.js";

export { getOpenTrackingPixel, PNG_MIME_TYPE, TRACKING_PIXEL } from "./pixel.js";

export const DEFAULT_TIMEOUT_SECONDS = 5;

export type Metadata = Record<string, unknown>;
export type TrackingFormat = "pytracking" | "clicktrail";

export interface TrackingConfig {
  /** base URL of click links; should end with "/" (Python urljoin replaces the last segment otherwise) */
  baseClickTrackingUrl?: string | null;
  /** base URL of open-pixel links; should end with "/" */
  baseOpenTrackingUrl?: string | null;
  /** metadata for every link: embedded when includeDefaultMetadata, else merged in by the reader */
  defaultMetadata?: Metadata | null;
  includeDefaultMetadata?: boolean;
  /** webhook URL: embedded in links when includeWebhookUrl, else supplied by the reader */
  webhookUrl?: string | null;
  includeWebhookUrl?: boolean;
  /** default DEFAULT_TIMEOUT_SECONDS (5) */
  webhookTimeoutSeconds?: number;
  /**
   * pytracking's encryption_bytestring_key: a Fernet key (44-character base64url text, or 32 raw bytes). Writing in the
   * pytracking format then makes Fernet tokens; reading accepts Fernet tokens. Several keys: the first writes, all read.
   */
  encryptionKey?: FernetKey | readonly FernetKey[] | null;
  /** add "/" after the token (pytracking's append_slash) */
  appendSlash?: boolean;
  /** the format links are written in (default "clicktrail"); reading detects the format by itself */
  format?: TrackingFormat;
  /** clicktrail signing keys (see keys.ts for the format): the first writes, all are accepted for reading */
  signingKeys?: readonly SigningKey[];
  /** clicktrail format: encrypt the payload (AES-256-GCM) instead of only signing it */
  encrypt?: boolean;
  /** clicktrail format: links stop working this many seconds after they were made (stored in the token) */
  expiresInSeconds?: number | null;
  /** clicktrail format: lower-case base32 tokens, which survive a lower-casing of the URL */
  caseInsensitive?: boolean;
  /** reading: accept plain (unsigned, so forgeable) pytracking links */
  allowUnsigned?: boolean;
  /** the clock, in milliseconds since the epoch (default Date.now); for tests */
  now?: () => number;
}

/** pytracking's webhook payload, in its order: tracked_url only when truthy. */
export interface TrackingJsonDict {
  is_open_tracking: boolean;
  is_click_tracking: boolean;
  metadata: Metadata;
  request_data: unknown;
  timestamp: number;
  tracked_url?: string;
}

export class TrackingResult {
  readonly isOpenTracking: boolean;
  readonly isClickTracking: boolean;
  /** the URL to redirect to (click links); null for open links and click links without one */
  readonly trackedUrl: string | null;
  readonly webhookUrl: string | null;
  readonly metadata: Metadata;
  /** whatever the caller passed in (pytracking's Django views pass {user_agent, user_ip}); null by default */
  readonly requestData: unknown;
  /** seconds since the epoch, at decoding (pytracking: int(time.time())) */
  readonly timestamp: number;
  /** which format the token was in */
  readonly format: TrackingFormat;
  /** Fernet (pytracking) or AES-GCM (clicktrail) */
  readonly encrypted: boolean;
  /** authenticated: a clicktrail token, or a Fernet token (its HMAC); false for plain pytracking links */
  readonly signed: boolean;
  /** clicktrail: the id of the key that verified the token */
  readonly keyId: string | null;
  /** clicktrail: the token's expiry, seconds since the epoch */
  readonly expiresAt: number | null;

  constructor(init: Omit<TrackingResult, "toJsonDict">) {
    this.isOpenTracking = init.isOpenTracking;
    this.isClickTracking = init.isClickTracking;
    this.trackedUrl = init.trackedUrl;
    this.webhookUrl = init.webhookUrl;
    this.metadata = init.metadata;
    this.requestData = init.requestData;
    this.timestamp = init.timestamp;
    this.format = init.format;
    this.encrypted = init.encrypted;
    this.signed = init.signed;
    this.keyId = init.keyId;
    this.expiresAt = init.expiresAt;
  }

  /** pytracking's webhook body: is_open_tracking, is_click_tracking, metadata, request_data, timestamp, tracked_url (if truthy). */
  toJsonDict(): TrackingJsonDict {
    return trackingJsonDict(this);
  }
}

export function trackingJsonDict(
  r: Pick<TrackingResult, "isOpenTracking" | "isClickTracking" | "metadata" | "requestData" | "timestamp" | "trackedUrl">,
): TrackingJsonDict {
  const d: TrackingJsonDict = {
    is_open_tracking: r.isOpenTracking,
    is_click_tracking: r.isClickTracking,
    metadata: r.metadata,
    request_data: r.requestData ?? null,
    timestamp: r.timestamp,
  };
  if (r.trackedUrl) d.tracked_url = r.trackedUrl;
  return d;
}

// ---------------------------------------------------------------------------------------------------------------------
// encoding

export function getClickTrackingUrl(url: string, metadata?: Metadata | null, config: TrackingConfig = {}): string {
  if (typeof url !== "string") throw new TrackingError("config", "the URL to track must be a string");
  return makeUrl("click", url, metadata, config);
}

export function getOpenTrackingUrl(metadata?: Metadata | null, config: TrackingConfig = {}): string {
  return makeUrl("open", null, metadata, config);
}

/** pytracking's get_click_tracking_url_path: the link minus baseClickTrackingUrl. */
export function getClickTrackingUrlPath(url: string, config: TrackingConfig = {}): string {
  return urlPath(url, requireBase(config.baseClickTrackingUrl, "baseClickTrackingUrl"), "baseClickTrackingUrl");
}

/** pytracking's get_open_tracking_url_path: the link minus baseOpenTrackingUrl. */
export function getOpenTrackingUrlPath(url: string, config: TrackingConfig = {}): string {
  return urlPath(url, requireBase(config.baseOpenTrackingUrl, "baseOpenTrackingUrl"), "baseOpenTrackingUrl");
}

function urlPath(url: string, base: string, name: string): string {
  if (!url.startsWith(base)) throw new TrackingError("bad_token", `the URL does not start with ${name}`);
  return url.slice(base.length);
}

function requireBase(base: string | null | undefined, name: string): string {
  if (base === null || base === undefined) throw new TrackingError("config", `${name} is not configured`);
  if (typeof base !== "string") throw new TrackingError("config", `${name} must be a string`);
  return base;
}

function nowMs(config: TrackingConfig): number {
  return config.now ? config.now() : Date.now();
}

function checkMetadata(m: unknown, what: string): asserts m is Metadata | null | undefined {
  if (m !== null && m !== undefined && (typeof m !== "object" || Array.isArray(m))) throw new TrackingError("config", `${what} must be an object`);
}

function isNonEmpty(m: Metadata | null | undefined): m is Metadata {
  return !!m && Object.keys(m).length > 0;
}

/** A deep copy, so a result never shares objects with the configuration. */
function cloneMetadata(m: Metadata): Metadata {
  try {
    return structuredClone(m);
  } catch (e) {
    throw new TrackingError("config", "defaultMetadata must be plain JSON-like data", { cause: e });
  }
}

/** Assigns like Python's dict.update (later keys win, new keys go last), safely for a "__proto__" key. */
function update(target: Metadata, source: Metadata): void {
  for (const [k, v] of Object.entries(source)) {
    if (k === "__proto__") Object.defineProperty(target, k, { value: v, enumerable: true, writable: true, configurable: true });
    else target[k] = v;
  }
}

interface EmbeddedData {
  url?: string;
  metadata?: Metadata;
  webhook?: string;
}

/** pytracking's get_data_to_embed: keys url, metadata, webhook, in that order, each only when non-empty. */
function dataToEmbed(url: string | null, extra: Metadata | null | undefined, config: TrackingConfig): EmbeddedData {
  checkMetadata(extra, "metadata");
  checkMetadata(config.defaultMetadata, "defaultMetadata");
  const data: EmbeddedData = {};
  if (url) data.url = url;
  const metadata: Metadata = {};
  if (config.includeDefaultMetadata && isNonEmpty(config.defaultMetadata)) update(metadata, config.defaultMetadata);
  if (isNonEmpty(extra)) update(metadata, extra);
  if (isNonEmpty(metadata)) data.metadata = metadata;
  if (config.includeWebhookUrl && config.webhookUrl) data.webhook = config.webhookUrl;
  return data;
}

function fernetKeys(config: TrackingConfig): FernetKey[] {
  const k = config.encryptionKey;
  if (k === null || k === undefined || k === "") return [];
  return (Array.isArray(k) ? [...(k as readonly FernetKey[])] : [k as FernetKey]).filter((x) => x !== "");
}

function signingKeys(config: TrackingConfig) {
  const keys = config.signingKeys ?? [];
  if (!Array.isArray(keys)) throw new TrackingError("config", "signingKeys must be an array");
  return keys.map(deriveKey);
}

function makeToken(kind: TokenKind, data: EmbeddedData, config: TrackingConfig): string {
  const format = config.format ?? "clicktrail";
  if (format === "pytracking") {
    if (config.caseInsensitive) throw new TrackingError("config", "caseInsensitive needs the clicktrail format (pytracking tokens are base64)");
    if (config.expiresInSeconds) throw new TrackingError("config", "expiresInSeconds needs the clicktrail format (pytracking links never expire)");
    const json = Buffer.from(pyJsonDumps(data), "utf8");
    const keys = fernetKeys(config);
    if (keys.length > 0) return fernetEncrypt(keys[0], json, { time: Math.floor(nowMs(config) / 1000) });
    if (config.encrypt) throw new TrackingError("config", "encrypt with the pytracking format needs an encryptionKey (a Fernet key)");
    return b64urlPadded(json);
  }
  if (format !== "clicktrail") throw new TrackingError("config", `unknown format ${JSON.stringify(format)}`);
  const keys = signingKeys(config);
  if (keys.length === 0) throw new TrackingError("no_signing_key", "the clicktrail format needs signingKeys");
  let expiresAt: number | undefined;
  if (config.expiresInSeconds !== undefined && config.expiresInSeconds !== null) {
    const s = config.expiresInSeconds;
    if (!Number.isSafeInteger(s) || s <= 0) throw new TrackingError("config", "expiresInSeconds must be a positive integer");
    expiresAt = Math.floor(nowMs(config) / 1000) + s;
  }
  return encodeClicktrailToken(
    { u: data.url, m: data.metadata, w: data.webhook },
    { kind, key: keys[0], encrypt: !!config.encrypt, expiresAt, caseInsensitive: !!config.caseInsensitive },
  );
}

function makeUrl(kind: TokenKind, url: string | null, metadata: Metadata | null | undefined, config: TrackingConfig): string {
  const name = kind === "click" ? "baseClickTrackingUrl" : "baseOpenTrackingUrl";
  const base = requireBase(kind === "click" ? config.baseClickTrackingUrl : config.baseOpenTrackingUrl, name);
  const token = makeToken(kind, dataToEmbed(url, metadata, config), config);
  const joined = pyUrljoin(base, token);
  return config.appendSlash ? joined + "/" : joined;
}

// ---------------------------------------------------------------------------------------------------------------------
// decoding

/**
 * The token in a tracking link or path: strips `base` when the input starts with it, then one leading "/" (pytracking's
 * rule). Then, where pytracking would fail instead (no token contains "/", "?" or "#"): a "?query" or "#fragment" is
 * dropped, one trailing "/" (appendSlash) too, and if a "/" is still left (a link on another host name, a path such as
 * "/t/c/TOKEN"), the last path segment is the token.
 */
export function tokenFromUrl(fullUrlOrPath: string, base?: string | null): string {
  let t = fullUrlOrPath;
  if (base && t.startsWith(base)) t = t.slice(base.length);
  if (t.startsWith("/")) t = t.slice(1);
  const q = t.indexOf("?");
  const h = t.indexOf("#");
  const cut = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  if (cut >= 0) t = t.slice(0, cut);
  if (t.endsWith("/")) t = t.slice(0, -1);
  const slash = t.lastIndexOf("/");
  return slash >= 0 ? t.slice(slash + 1) : t;
}

/** The key id a clicktrail link names (to find its key, and so its owner, before decoding); null for other links. */
export function peekKeyId(fullUrlOrPath: string, base?: string | null): string | null {
  return peekClicktrailKeyId(tokenFromUrl(fullUrlOrPath, base));
}

export function getClickTrackingResult(fullUrlOrPath: string, config: TrackingConfig = {}, requestData: unknown = null): TrackingResult {
  return decode("click", fullUrlOrPath, config, requestData);
}

export function getOpenTrackingResult(fullUrlOrPath: string, config: TrackingConfig = {}, requestData: unknown = null): TrackingResult {
  return decode("open", fullUrlOrPath, config, requestData);
}

interface Decoded {
  data: EmbeddedData;
  format: TrackingFormat;
  encrypted: boolean;
  signed: boolean;
  keyId: string | null;
  expiresAt: number | null;
}

function parsePytrackingJson(bytes: Buffer): EmbeddedData {
  let data: unknown;
  try {
    data = JSON.parse(UTF8.decode(bytes));
  } catch (e) {
    throw new TrackingError("bad_json", "tracking data is not UTF-8 JSON", { cause: e });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new TrackingError("bad_payload", "tracking data is not a JSON object");
  const d = data as Record<string, unknown>;
  const out: EmbeddedData = {};
  if (d.url !== undefined && d.url !== null) {
    if (typeof d.url !== "string") throw new TrackingError("bad_payload", "tracking data: url is not a string");
    out.url = d.url;
  }
  if (d.metadata !== undefined && d.metadata !== null) {
    if (typeof d.metadata !== "object" || Array.isArray(d.metadata))
      throw new TrackingError("bad_payload", "tracking data: metadata is not an object");
    out.metadata = d.metadata as Metadata;
  }
  if (d.webhook !== undefined && d.webhook !== null) {
    if (typeof d.webhook !== "string") throw new TrackingError("bad_payload", "tracking data: webhook is not a string");
    out.webhook = d.webhook;
  }
  return out;
}

function decodeToken(kind: TokenKind, token: string, config: TrackingConfig): Decoded {
  if (!token) throw new TrackingError("bad_token", "no token in the link");
  if (token[0] === "g") {
    // Fernet: base64url of 0x80 ‖ …; a JSON text never starts with byte 0x80–0x83.
    const keys = fernetKeys(config);
    if (keys.length === 0) throw new TrackingError("no_encryption_key", "encrypted pytracking link, but no encryptionKey is configured");
    const data = parsePytrackingJson(fernetDecrypt(keys, token));
    return { data, format: "pytracking", encrypted: true, signed: true, keyId: null, expiresAt: null };
  }
  if (clicktrailTokenEncoding(token)) {
    const keys = signingKeys(config);
    if (keys.length === 0) throw new TrackingError("no_signing_key", "clicktrail link, but no signingKeys are configured");
    const t = decodeClicktrailToken(token, keys, Math.floor(nowMs(config) / 1000));
    if (t.kind !== kind) throw new TrackingError("wrong_kind", `this is ${t.kind === "open" ? "an open-tracking" : "a click-tracking"} token`);
    const data: EmbeddedData = {};
    if (t.payload.u !== undefined) data.url = t.payload.u;
    if (t.payload.m !== undefined) data.metadata = t.payload.m;
    if (t.payload.w !== undefined) data.webhook = t.payload.w;
    return { data, format: "clicktrail", encrypted: t.encrypted, signed: true, keyId: t.keyId, expiresAt: t.expiresAt };
  }
  // A plain pytracking token is base64 of a JSON object, so it starts with "e" (from "{").
  if (!config.allowUnsigned && token[0] !== "e") throw new TrackingError("bad_token", "not a tracking token");
  const bytes = decodeB64urlPadded(token, "tracking token");
  if (!config.allowUnsigned) throw new TrackingError("unsigned_not_allowed", "plain (unsigned) pytracking link, and allowUnsigned is not set");
  return { data: parsePytrackingJson(bytes), format: "pytracking", encrypted: false, signed: false, keyId: null, expiresAt: null };
}

function decode(kind: TokenKind, fullUrlOrPath: string, config: TrackingConfig, requestData: unknown): TrackingResult {
  if (typeof fullUrlOrPath !== "string") throw new TrackingError("bad_token", "the link must be a string");
  checkMetadata(config.defaultMetadata, "defaultMetadata");
  const base = kind === "click" ? config.baseClickTrackingUrl : config.baseOpenTrackingUrl;
  const d = decodeToken(kind, tokenFromUrl(fullUrlOrPath, base), config);
  // pytracking's decoding rules: the reader's default metadata (when it is not embedded) first, the link's on top;
  // the webhook URL from the link when includeWebhookUrl, else the reader's own.
  const metadata: Metadata = {};
  if (!config.includeDefaultMetadata && isNonEmpty(config.defaultMetadata)) update(metadata, cloneMetadata(config.defaultMetadata));
  if (d.data.metadata) update(metadata, d.data.metadata);
  const webhookUrl = config.includeWebhookUrl ? (d.data.webhook ?? null) : (config.webhookUrl ?? null);
  return new TrackingResult({
    isOpenTracking: kind === "open",
    isClickTracking: kind === "click",
    trackedUrl: d.data.url ?? null,
    webhookUrl,
    metadata,
    requestData,
    timestamp: Math.floor(nowMs(config) / 1000),
    format: d.format,
    encrypted: d.encrypted,
    signed: d.signed,
    keyId: d.keyId,
    expiresAt: d.expiresAt,
  });
}
