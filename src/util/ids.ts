import { randomBytes, randomInt } from "node:crypto";

/** Characters that cannot be confused with each other when read aloud or typed (no 0/O, 1/l/I). */
export const UNAMBIGUOUS = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

export function randomString(length: number, alphabet = UNAMBIGUOUS): string {
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

const POOL_SIZE = 16 * 512;
let pool = Buffer.alloc(0);
let poolOffset = POOL_SIZE;

/**
 * 128 random bits as 22 base64url characters, drawn from a pool of random bytes filled 8 KiB at a time: one system
 * call per 512 ids instead of one per id (it was the largest single cost of a redirect that sets a new cookie).
 */
export function randomId(): string {
  if (poolOffset >= POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  const id = pool.toString("base64url", poolOffset, poolOffset + 16);
  poolOffset += 16;
  return id;
}
