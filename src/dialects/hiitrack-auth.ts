import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { FailureThrottle } from "../auth/throttle.js";
import { AuthRequired, HtError } from "./hiitrack-http.js";
import type { HiiTrackBucket, HiiTrackStore } from "./hiitrack-store.js";

/**
 * The HiiTrack dialect's authentication (seed-apis.md §5): HTTP Basic with the user's password or the bucket's own
 * password, the failed-credential throttle, and HiiTrack's order authenticate → user_authorize → bucket_check.
 */

/** Basic-auth guessing: 20 wrong credentials from one address within 15 minutes, and that address waits (429). */
export const HT_MAX_FAILURES = 20;
const HT_WINDOW_MS = 15 * 60_000;

const sha1 = (data: string | Buffer) => createHash("sha1").update(data).digest();
/** What HiiTrack stored for a user: sha1("user:password"), here as hex. */
export const passwordHash = (user: string, password: string) => sha1(`${user}:${password}`).toString("hex");
/** A bucket's own password: base64(sha1(bucket + ":" + sha1("user:password"))), computed from the stored hash. */
export const bucketPassword = (bucket: string, hashHex: string) =>
  sha1(Buffer.concat([Buffer.from(`${bucket}:`, "utf8"), Buffer.from(hashHex, "hex")])).toString("base64");

function constantEq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The `authorize` of a dialect instance, with its own throttle. */
export function authorizerFor(accounts: HiiTrackStore) {
  const throttle = new FailureThrottle(HT_MAX_FAILURES, HT_WINDOW_MS);

  /** authenticate → user_authorize → bucket_check, in HiiTrack's order: a 401 comes before any 404. */
  return async function authorize(req: FastifyRequest, user: string, bucket: string | null, check = true): Promise<HiiTrackBucket | null> {
    const client = `ip:${req.ip}`;
    const wait = throttle.wait(client);
    if (wait > 0)
      throw new HtError(429, `Too many wrong credentials; try again in ${Math.ceil(wait / 60_000)} minute(s).`, "HTTPAuthenticationRequired", {
        "retry-after": String(Math.ceil(wait / 1000)),
      });
    const header = req.headers.authorization;
    if (!header) throw new AuthRequired(401, "Authentication required.", "HTTPAuthenticationRequired", { "www-authenticate": "Basic" });
    const challenge: Record<string, string> = req.headers["x-requested-with"] === "XMLHttpRequest" ? {} : { "www-authenticate": "Basic" };
    const invalid = () => {
      throttle.fail(client);
      return new AuthRequired(401, "Authentication required.", "HTTPAuthenticationRequired", challenge);
    };
    const parts = header.trim().split(/\s+/);
    if (parts.length !== 2 || parts[0] !== "Basic") throw invalid();
    const decoded = Buffer.from(parts[1]!, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    const name = i < 0 ? "" : decoded.slice(0, i);
    const password = i < 0 ? "" : decoded.slice(i + 1);
    if (!name || !password) throw invalid();
    const account = await accounts.getUser(name);
    // a missing user costs a hash too, so timing tells nothing about which names exist
    const hash = account?.hash ?? "0".repeat(40);
    const ok =
      (constantEq(passwordHash(name, password), hash) || (bucket !== null && constantEq(bucketPassword(bucket, hash), password))) && account !== null;
    if (!ok) throw invalid();
    throttle.reset(client);
    if (name !== user) throw new AuthRequired(401, "Invalid user", "HTTPAuthenticationRequired");
    if (bucket === null || !check) return null;
    const b = await accounts.getBucket(user, bucket);
    if (!b) throw new HtError(404, `Bucket ${bucket} does not exist.`, "BucketException");
    return b;
  };
}
