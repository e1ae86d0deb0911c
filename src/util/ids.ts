import { randomBytes, randomInt } from "node:crypto";

/** Characters that cannot be confused with each other when read aloud or typed (no 0/O, 1/l/I). */
export const UNAMBIGUOUS = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

export function randomString(length: number, alphabet = UNAMBIGUOUS): string {
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString("base64url");
}
