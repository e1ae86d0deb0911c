import { TrackingError } from "./errors.js";

/** base64url (RFC 4648 §5) WITH "=" padding, as Python's base64.urlsafe_b64encode writes it. */
export function b64urlPadded(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

const PADDED_B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Strict decoder for padded base64url (the pytracking and Fernet token alphabet): only `A–Z a–z 0–9 - _`, length a
 * multiple of 4, at most two "=" and only at the end. Python's decoder is more lenient (it skips unknown characters and
 * ignores data after the first padded quantum); a strict decoder rejects those forms instead of guessing.
 */
export function decodeB64urlPadded(s: string, what = "token"): Buffer {
  if (!PADDED_B64URL.test(s) || s.length % 4 !== 0) {
    throw new TrackingError("bad_base64", `${what} is not valid padded base64url (alphabet A-Z a-z 0-9 - _, length a multiple of 4)`);
  }
  return Buffer.from(s, "base64url");
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** base64url without padding (the clicktrail token alphabet). */
export function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Strict, canonical decoder for unpadded base64url: one byte string has exactly one accepted spelling. */
export function decodeB64url(s: string, what = "token"): Buffer {
  if (!B64URL.test(s) || s.length % 4 === 1) throw new TrackingError("bad_base64", `${what} is not valid base64url`);
  const out = Buffer.from(s, "base64url");
  if (out.toString("base64url") !== s) throw new TrackingError("bad_base64", `${what} is not canonical base64url`);
  return out;
}

const B32 = "abcdefghijklmnopqrstuvwxyz234567";
const B32_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 32; i++) {
  B32_INDEX[B32.charCodeAt(i)] = i;
  B32_INDEX[B32.toUpperCase().charCodeAt(i)] = i;
}

/** RFC 4648 base32, lower case, no padding: survives a lower-casing (or upper-casing) of the whole URL. */
export function b32lower(bytes: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

/** Strict base32 decoder (either case, no padding, canonical: the unused low bits of the last character are zero). */
export function decodeB32(s: string, what = "token"): Buffer {
  const rem = s.length % 8;
  if (rem === 1 || rem === 3 || rem === 6) throw new TrackingError("bad_base64", `${what} is not valid base32 (bad length)`);
  const out = Buffer.allocUnsafe(Math.floor((s.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B32_INDEX[c] : -1;
    if (v < 0) throw new TrackingError("bad_base64", `${what} is not valid base32 (character ${JSON.stringify(s[i])})`);
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >>> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) throw new TrackingError("bad_base64", `${what} is not canonical base32`);
  return out;
}

/**
 * Strict UTF-8 (invalid bytes throw), shared: a decoder is costly to make (half a microsecond, a tenth of decoding a
 * token) and keeps no state between whole-buffer decode() calls.
 */
export const UTF8 = new TextDecoder("utf-8", { fatal: true });
