/**
 * Signing keys of the clicktrail token format.
 *
 * Key format: any string of at least 32 characters, without leading or trailing white space. Its UTF-8 bytes are the
 * input keying material of HKDF-SHA256; nothing is decoded, so there is no ambiguity about hex vs base64. A key made by
 * `generateSigningKey()` is 43 base64url characters (32 random bytes, 256 bits); a hand-made key should carry at least
 * 16 bytes of real randomness (32 hex digits do).
 *
 * Key id: 4 bytes (8 lower-case hex digits) written into every token so a reader picks the right key without trying
 * all of them. By default it is derived from the key (HKDF, so it reveals nothing about the secret); a key may be given
 * as `{ id, secret }` to choose the id (e.g. one stored beside the key). Two keys with the same id are both tried.
 *
 * Derived per key (HKDF-SHA256, salt "clicktrail/tracking/v1"): info "mac" → 32-byte HMAC-SHA256 key, info "enc" →
 * 32-byte AES-256-GCM key, info "kid" → the default 4-byte id.
 */
import { hkdfSync, randomBytes } from "node:crypto";
import { b64url } from "./encoding.js";
import { TrackingError } from "./errors.js";
import { macKey, type MacKey } from "./hmac.js";

export type SigningKey = string | { id: string; secret: string };

export interface DerivedKey {
  /** 8 lower-case hex digits */
  id: string;
  idBytes: Buffer;
  mac: Buffer;
  /** `mac` with its HMAC blocks, computed once */
  macKey: MacKey;
  enc: Buffer;
}

export const MIN_SIGNING_KEY_LENGTH = 32;
const SALT = "clicktrail/tracking/v1";
const KEY_ID = /^[0-9a-f]{8}$/;

const cache = new Map<string, DerivedKey>();

function hkdf(secret: string, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), SALT, info, length));
}

function checkSecret(secret: unknown): asserts secret is string {
  if (typeof secret !== "string") throw new TrackingError("bad_key", "a signing key must be a string");
  if (secret.length < MIN_SIGNING_KEY_LENGTH) {
    throw new TrackingError("bad_key", `a signing key must be at least ${MIN_SIGNING_KEY_LENGTH} characters long (got ${secret.length})`);
  }
  if (secret.trim() !== secret) throw new TrackingError("bad_key", "a signing key must not start or end with white space");
}

/** The key id a signing key is written under (the derived one, or the one it was given with). */
export function signingKeyId(key: SigningKey): string {
  return deriveKey(key).id;
}

export function deriveKey(key: SigningKey): DerivedKey {
  const secret = typeof key === "string" ? key : key?.secret;
  checkSecret(secret);
  let id: string | undefined;
  if (typeof key !== "string") {
    id = key.id;
    if (typeof id !== "string" || !KEY_ID.test(id)) throw new TrackingError("bad_key", "a signing key id must be 8 lower-case hex digits");
  }
  const cacheKey = `${id ?? ""}\u0000${secret}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const idBytes = id ? Buffer.from(id, "hex") : hkdf(secret, "kid", 4);
  const mac = hkdf(secret, "mac", 32);
  const derived: DerivedKey = { id: idBytes.toString("hex"), idBytes, mac, macKey: macKey(mac), enc: hkdf(secret, "enc", 32) };
  if (cache.size >= 256) cache.clear();
  cache.set(cacheKey, derived);
  return derived;
}

/** A new random signing key: 32 random bytes as 43 base64url characters. */
export function generateSigningKey(): string {
  return b64url(randomBytes(32));
}
