/**
 * The clicktrail token format (version 1): compact, and always authenticated.
 *
 *   header (1 byte)   0x10 | flags        high nibble = version 1; flags: 0x01 encrypted, 0x02 has expiry, 0x04 click
 *                                         (else open); 0x08 reserved (must be 0)
 *   key id (4 bytes)                      which signing key made it (see keys.ts)
 *   expiry (4 bytes)  only with 0x02      u32 big-endian, seconds since the epoch; the token is valid while now < expiry
 *   signed:    payload ‖ MAC              MAC = HMAC-SHA256(mac key, header ‖ key id ‖ expiry ‖ payload), first 16 bytes
 *   encrypted: nonce (12) ‖ ciphertext ‖ tag (16)
 *                                         AES-256-GCM(enc key, nonce, payload), additional data = header ‖ key id ‖ expiry;
 *                                         nonce = HMAC-SHA256(mac key, 0x00 ‖ header ‖ key id ‖ expiry ‖ payload)[0..12]
 *                                         (synthetic, so equal inputs give equal tokens and nonces never repeat for
 *                                         different payloads)
 *   payload           compact JSON object with short keys, in this order: "u" tracked URL (click only), "m" metadata
 *                     object, "w" webhook URL; all optional; an empty object is written as zero bytes.
 *
 * Text form: base64url without padding (it starts with "E" or "F"), or with caseInsensitive, RFC 4648 base32 in lower
 * case without padding (it starts with "c"; read in either case). Neither can be confused with a pytracking token:
 * those start with "e" (base64 of "{") or "g" (Fernet's 0x80).
 */
import { createCipheriv, createDecipheriv, timingSafeEqual } from "node:crypto";
import { hmacSha256 } from "./hmac.js";
import { b32lower, b64url, decodeB32, decodeB64url, UTF8 } from "./encoding.js";
import { TrackingError } from "./errors.js";
import type { DerivedKey } from "./keys.js";

export const TOKEN_VERSION = 1;
const F_ENCRYPTED = 0x01;
const F_EXPIRY = 0x02;
const F_CLICK = 0x04;
const F_RESERVED = 0x08;
const MAC_LENGTH = 16;
const ZERO = Buffer.of(0);
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const MAX_EXPIRY = 0xffffffff;

export type TokenKind = "open" | "click";

export interface TokenPayload {
  u?: string;
  m?: Record<string, unknown>;
  w?: string;
}

export interface EncodeTokenOptions {
  kind: TokenKind;
  key: DerivedKey;
  encrypt?: boolean;
  /** seconds since the epoch */
  expiresAt?: number;
  caseInsensitive?: boolean;
}

export interface DecodedToken {
  kind: TokenKind;
  payload: TokenPayload;
  keyId: string;
  encrypted: boolean;
  /** seconds since the epoch, or null */
  expiresAt: number | null;
  caseInsensitive: boolean;
}

/** "b64" / "b32" when `token` has the shape of a clicktrail token, else null (nothing is verified). */
export function clicktrailTokenEncoding(token: string): "b64" | "b32" | null {
  const c = token[0];
  if (c === "E" || c === "F") return "b64";
  if ((c === "c" || c === "C") && /^[a-zA-Z2-7]+$/.test(token)) return "b32";
  return null;
}

function serialisePayload(p: TokenPayload): Buffer {
  const o: Record<string, unknown> = {};
  if (p.u !== undefined) o.u = p.u;
  if (p.m !== undefined) o.m = p.m;
  if (p.w !== undefined) o.w = p.w;
  if (Object.keys(o).length === 0) return Buffer.alloc(0);
  let json: string;
  try {
    json = JSON.stringify(o);
  } catch (e) {
    throw new TrackingError("not_serialisable", `metadata is not JSON serialisable: ${(e as Error).message}`, { cause: e });
  }
  return Buffer.from(json, "utf8");
}

export function encodeClicktrailToken(payload: TokenPayload, opts: EncodeTokenOptions): string {
  const hasExpiry = opts.expiresAt !== undefined;
  const head = Buffer.alloc(hasExpiry ? 9 : 5);
  head[0] = (TOKEN_VERSION << 4) | (opts.encrypt ? F_ENCRYPTED : 0) | (hasExpiry ? F_EXPIRY : 0) | (opts.kind === "click" ? F_CLICK : 0);
  opts.key.idBytes.copy(head, 1);
  if (hasExpiry) {
    const exp = opts.expiresAt as number;
    if (!Number.isInteger(exp) || exp < 0 || exp > MAX_EXPIRY) throw new TrackingError("config", "token expiry out of range (u32 seconds)");
    head.writeUInt32BE(exp, 5);
  }
  const body = serialisePayload(payload);
  let bytes: Buffer;
  if (opts.encrypt) {
    const nonce = hmacSha256(opts.key.macKey, ZERO, head, body).subarray(0, NONCE_LENGTH);
    const cipher = createCipheriv("aes-256-gcm", opts.key.enc, nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(head);
    bytes = Buffer.concat([head, nonce, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
  } else {
    const mac = hmacSha256(opts.key.macKey, head, body).subarray(0, MAC_LENGTH);
    bytes = Buffer.concat([head, body, mac]);
  }
  return opts.caseInsensitive ? b32lower(bytes) : b64url(bytes);
}

/** The key id a clicktrail token names (8 hex digits), without verifying anything; null if it is not one. */
export function peekClicktrailKeyId(token: string): string | null {
  const enc = clicktrailTokenEncoding(token);
  if (!enc) return null;
  try {
    // the version byte and the key id are the first 5 bytes: 8 characters of either alphabet hold them
    const head = token.length > 8 ? token.slice(0, 8) : token;
    const bytes = enc === "b64" ? decodeB64url(head) : decodeB32(head);
    return bytes.length >= 5 && bytes[0] >> 4 === TOKEN_VERSION ? bytes.subarray(1, 5).toString("hex") : null;
  } catch {
    return null;
  }
}

export function decodeClicktrailToken(token: string, keys: readonly DerivedKey[], nowSeconds: number): DecodedToken {
  const enc = clicktrailTokenEncoding(token);
  if (!enc) throw new TrackingError("bad_token", "not a clicktrail token");
  const bytes = enc === "b64" ? decodeB64url(token) : decodeB32(token);
  if (bytes.length < 5) throw new TrackingError("bad_token", "token is too short");
  const header = bytes[0];
  if (header >> 4 !== TOKEN_VERSION) throw new TrackingError("bad_token", `unknown token version ${header >> 4}`);
  if (header & F_RESERVED) throw new TrackingError("bad_token", "token has unknown flags");
  const encrypted = (header & F_ENCRYPTED) !== 0;
  const hasExpiry = (header & F_EXPIRY) !== 0;
  const headLength = hasExpiry ? 9 : 5;
  const idBytes = bytes.subarray(1, 5);
  const candidates = keys.filter((k) => k.idBytes.equals(idBytes));
  if (candidates.length === 0)
    throw new TrackingError("unknown_key", `token was made with key id ${idBytes.toString("hex")}, which is not configured`);
  const minLength = headLength + (encrypted ? NONCE_LENGTH + TAG_LENGTH : MAC_LENGTH);
  if (bytes.length < minLength) throw new TrackingError("bad_token", "token is too short (truncated?)");
  const head = bytes.subarray(0, headLength);

  let body: Buffer | undefined;
  if (encrypted) {
    const nonce = bytes.subarray(headLength, headLength + NONCE_LENGTH);
    const ciphertext = bytes.subarray(headLength + NONCE_LENGTH, bytes.length - TAG_LENGTH);
    const tag = bytes.subarray(bytes.length - TAG_LENGTH);
    for (const k of candidates) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", k.enc, nonce, { authTagLength: TAG_LENGTH });
        decipher.setAAD(head);
        decipher.setAuthTag(tag);
        body = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
        break;
      } catch {
        // try the next key with this id
      }
    }
  } else {
    const payload = bytes.subarray(headLength, bytes.length - MAC_LENGTH);
    const mac = bytes.subarray(bytes.length - MAC_LENGTH);
    for (const k of candidates) {
      const expected = hmacSha256(k.macKey, head, payload).subarray(0, MAC_LENGTH);
      if (timingSafeEqual(expected, mac)) {
        body = payload;
        break;
      }
    }
  }
  if (!body)
    throw new TrackingError("bad_signature", encrypted ? "token does not decrypt (tampered, or another key)" : "token signature does not verify");

  const expiresAt = hasExpiry ? head.readUInt32BE(5) : null;
  if (expiresAt !== null && nowSeconds >= expiresAt)
    throw new TrackingError("expired", `token expired at ${new Date(expiresAt * 1000).toISOString()}`);
  return {
    kind: header & F_CLICK ? "click" : "open",
    payload: parsePayload(body),
    keyId: idBytes.toString("hex"),
    encrypted,
    expiresAt,
    caseInsensitive: enc === "b32",
  };
}

function parsePayload(body: Buffer): TokenPayload {
  if (body.length === 0) return {};
  let data: unknown;
  try {
    data = JSON.parse(UTF8.decode(body));
  } catch (e) {
    throw new TrackingError("bad_json", "token payload is not UTF-8 JSON", { cause: e });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new TrackingError("bad_payload", "token payload is not a JSON object");
  const d = data as Record<string, unknown>;
  const out: TokenPayload = {};
  if (d.u !== undefined) {
    if (typeof d.u !== "string") throw new TrackingError("bad_payload", "token payload: u is not a string");
    out.u = d.u;
  }
  if (d.m !== undefined) {
    if (typeof d.m !== "object" || d.m === null || Array.isArray(d.m)) throw new TrackingError("bad_payload", "token payload: m is not an object");
    out.m = d.m as Record<string, unknown>;
  }
  if (d.w !== undefined) {
    if (typeof d.w !== "string") throw new TrackingError("bad_payload", "token payload: w is not a string");
    out.w = d.w;
  }
  return out;
}
