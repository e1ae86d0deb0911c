/**
 * Fernet (https://github.com/fernet/spec), as pytracking's encrypted links use it through Python's `cryptography`:
 *
 *   token = base64url_padded( 0x80 ‖ timestamp (u64 BE, seconds) ‖ IV (16) ‖ AES-128-CBC-PKCS7(plaintext) ‖ HMAC-SHA256 )
 *
 * The key is 32 bytes in padded base64url: the first 16 sign (HMAC-SHA256 over everything before the MAC), the last 16
 * encrypt. Times here are Fernet's own unit, **seconds** since the Unix epoch (a `Date` is accepted too).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { b64urlPadded, decodeB64urlPadded } from "./encoding.js";
import { TrackingError } from "./errors.js";

/** A Fernet key: its padded base64url text (44 characters, as `Fernet.generate_key()` gives), or the 32 raw bytes. */
export type FernetKey = string | Uint8Array;

const VERSION = 0x80;
const MAX_CLOCK_SKEW = 60n;
const HEADER = 1 + 8 + 16;
const MAC = 32;

interface ParsedKey {
  signing: Buffer;
  encryption: Buffer;
}

export function parseFernetKey(key: FernetKey): ParsedKey {
  let raw: Buffer;
  if (typeof key === "string") {
    raw = decodeKeyText(key);
  } else if (key instanceof Uint8Array) {
    // 32 bytes are the raw key; anything else is the key's base64url text as bytes (Python's "bytestring key").
    raw = key.length === 32 ? Buffer.from(key) : decodeKeyText(Buffer.from(key).toString("latin1"));
  } else {
    throw new TrackingError("bad_key", "Fernet key must be a string or bytes");
  }
  return { signing: raw.subarray(0, 16), encryption: raw.subarray(16, 32) };
}

function decodeKeyText(text: string): Buffer {
  let raw: Buffer;
  try {
    raw = decodeB64urlPadded(text.trim(), "Fernet key");
  } catch {
    throw new TrackingError("bad_key", "Fernet key must be 32 url-safe base64-encoded bytes (44 characters with padding)");
  }
  if (raw.length !== 32) throw new TrackingError("bad_key", `Fernet key must be 32 url-safe base64-encoded bytes (got ${raw.length} bytes)`);
  return raw;
}

/** A new random Fernet key, in the same form as Python's `Fernet.generate_key()`. */
export function generateFernetKey(): string {
  return b64urlPadded(randomBytes(32));
}

function seconds(t: number | Date): bigint {
  const s = t instanceof Date ? t.getTime() / 1000 : t;
  if (!Number.isFinite(s) || s < 0) throw new TrackingError("config", "Fernet time must be a non-negative number of seconds or a Date");
  return BigInt(Math.floor(s));
}

export interface FernetEncryptOptions {
  /** the 16 IV bytes (default: random); only tests should pin it */
  iv?: Uint8Array;
  /** the token's timestamp: seconds since the epoch, or a Date (default: now) */
  time?: number | Date;
}

export function fernetEncrypt(key: FernetKey, plaintext: Uint8Array | string, opts: FernetEncryptOptions = {}): string {
  const k = parseFernetKey(key);
  const iv = opts.iv ? Buffer.from(opts.iv) : randomBytes(16);
  if (iv.length !== 16) throw new TrackingError("config", "Fernet IV must be 16 bytes");
  const header = Buffer.alloc(HEADER);
  header[0] = VERSION;
  header.writeBigUInt64BE(seconds(opts.time ?? new Date()), 1);
  iv.copy(header, 9);
  const cipher = createCipheriv("aes-128-cbc", k.encryption, iv);
  const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : plaintext;
  const body = Buffer.concat([header, cipher.update(data), cipher.final()]);
  const mac = createHmac("sha256", k.signing).update(body).digest();
  return b64urlPadded(Buffer.concat([body, mac]));
}

export interface FernetDecryptOptions {
  /** maximum age in seconds; without it there is no expiry and no clock-skew check (pytracking's behaviour) */
  ttlSeconds?: number;
  /** the current time for the ttl checks: seconds since the epoch, or a Date (default: now) */
  now?: number | Date;
}

/** The token's timestamp (seconds), without verifying anything. Throws on a token that is not Fernet-shaped. */
export function fernetTimestamp(token: string): number {
  const data = decodeB64urlPadded(token, "Fernet token");
  if (data.length < 9 || data[0] !== VERSION) throw new TrackingError("bad_token", "not a Fernet token");
  return Number(data.readBigUInt64BE(1));
}

/** Decrypts and verifies a Fernet token; returns the plaintext bytes. Every failure is a TrackingError. */
export function fernetDecrypt(key: FernetKey | readonly FernetKey[], token: string | Uint8Array, opts: FernetDecryptOptions = {}): Buffer {
  const keys = (Array.isArray(key) ? key : [key]).map(parseFernetKey);
  if (keys.length === 0) throw new TrackingError("bad_key", "no Fernet key given");
  const text = typeof token === "string" ? token : Buffer.from(token).toString("latin1");
  const data = decodeB64urlPadded(text, "Fernet token");
  if (data.length < 1 || data[0] !== VERSION) throw new TrackingError("bad_token", "Fernet token has a bad version byte");
  if (data.length < 9) throw new TrackingError("bad_token", "Fernet token is too short");
  const ts = data.readBigUInt64BE(1);
  if (opts.ttlSeconds !== undefined) {
    if (!Number.isFinite(opts.ttlSeconds) || opts.ttlSeconds < 0) throw new TrackingError("config", "ttlSeconds must be a non-negative number");
    const now = seconds(opts.now ?? new Date());
    if (ts + BigInt(Math.floor(opts.ttlSeconds)) < now) throw new TrackingError("expired", "Fernet token has expired");
    if (now + MAX_CLOCK_SKEW < ts) throw new TrackingError("future", "Fernet token timestamp is too far in the future");
  }
  if (data.length < HEADER + MAC) throw new TrackingError("bad_signature", "Fernet token is too short (bad HMAC)");
  const body = data.subarray(0, data.length - MAC);
  const mac = data.subarray(data.length - MAC);
  // MultiFernet-style: the first key whose HMAC verifies decrypts.
  const k = keys.find((c) => timingSafeEqual(createHmac("sha256", c.signing).update(body).digest(), mac));
  if (!k) throw new TrackingError("bad_signature", "Fernet token HMAC does not verify");
  const ciphertext = body.subarray(HEADER);
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw new TrackingError("bad_padding", "Fernet ciphertext length is not a positive multiple of the block size");
  }
  try {
    const decipher = createDecipheriv("aes-128-cbc", k.encryption, body.subarray(9, HEADER));
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (e) {
    throw new TrackingError("bad_padding", "Fernet token has bad padding", { cause: e });
  }
}
