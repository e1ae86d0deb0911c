import { randomBytes, timingSafeEqual } from "node:crypto";
import { LRUCache } from "lru-cache";
import { AppError } from "../errors.js";
import type { Membership, Scope, Store, User } from "../store/port.js";
import { hashKey, hashPassword, verifyPassword, type Principal } from "./service.js";

export const SESSION_COOKIE = "ct_session";
export const SESSION_TTL_MS = 14 * 86_400_000;

/** Sign-in throttling: failures per e-mail and per client address within a window. */
const WINDOW_MS = 15 * 60_000;
const MAX_FAILURES_PER_EMAIL = 5;
const MAX_FAILURES_PER_IP = 20;

/** What a role may do in its project: owners and admins everything, members links and stats. */
export function scopesOfRole(role: string): Set<Scope> {
  return role === "owner" || role === "admin"
    ? new Set<Scope>(["admin"])
    : new Set<Scope>(["links:read", "links:write", "stats:read", "events:write", "funnels:write"]);
}

export interface SignedIn {
  user: User;
  memberships: Membership[];
  csrf: string;
}

/**
 * Dashboard sessions: a random token in an HttpOnly, SameSite=Strict cookie (stored hashed), a CSRF token the page sends
 * back on every unsafe request, and sign-in attempts throttled per e-mail and per address (a 429 with Retry-After).
 */
export class SessionService {
  private readonly failures = new LRUCache<string, { n: number; until: number }>({ max: 100_000 });
  /** the scrypt of a password nobody has, so an unknown e-mail costs as much time as a wrong password */
  private dummyHash: Promise<string> | null = null;

  constructor(private readonly store: Store) {}

  private throttled(keys: string[], now: number): number {
    let wait = 0;
    for (const k of keys) {
      const f = this.failures.get(k);
      const max = k.startsWith("ip:") ? MAX_FAILURES_PER_IP : MAX_FAILURES_PER_EMAIL;
      if (f && f.until > now && f.n >= max) wait = Math.max(wait, f.until - now);
    }
    return wait;
  }

  private fail(keys: string[], now: number) {
    for (const k of keys) {
      const f = this.failures.get(k);
      if (f && f.until > now) f.n++;
      else this.failures.set(k, { n: 1, until: now + WINDOW_MS });
    }
  }

  /** Checks the password and opens a session: the cookie token and the session's data. */
  async signIn(email: string, password: string, ip: string): Promise<SignedIn & { token: string }> {
    const now = Date.now();
    const keys = [`email:${email.trim().toLowerCase()}`, `ip:${ip}`];
    const wait = this.throttled(keys, now);
    if (wait > 0)
      throw new AppError(429, "too-many-attempts", `too many failed sign-ins; try again in ${Math.ceil(wait / 60_000)} minute(s)`, {
        retry_after: Math.ceil(wait / 1000),
      });
    const user = await this.store.getUserByEmail(email.trim());
    const ok = user
      ? await verifyPassword(password, user.password_hash)
      : await verifyPassword(password, await (this.dummyHash ??= hashPassword(randomBytes(16).toString("hex"))));
    if (!user || !ok) {
      this.fail(keys, now);
      throw new AppError(401, "unauthorized", "wrong e-mail or password");
    }
    const memberships = await this.store.listMemberships(user.id);
    if (memberships.length === 0)
      throw new AppError(403, "forbidden", "this account belongs to no project; ask an admin to add it (clicktrail user create --project)");
    const token = randomBytes(32).toString("base64url");
    const csrf = randomBytes(24).toString("base64url");
    await this.store.createSession({ id_hash: hashKey(token), user_id: user.id, csrf, created_at: now, expires_at: now + SESSION_TTL_MS });
    this.failures.delete(keys[0]!);
    return { token, user, memberships, csrf };
  }

  /** The session behind a cookie token, or null. */
  async lookup(token: string): Promise<SignedIn | null> {
    const s = await this.store.getSession(hashKey(token), Date.now());
    if (!s) return null;
    const user = await this.store.getUser(s.user_id);
    if (!user) return null;
    return { user, memberships: await this.store.listMemberships(user.id), csrf: s.csrf };
  }

  signOut(token: string): Promise<void> {
    return this.store.deleteSession(hashKey(token));
  }

  /**
   * The principal of a session request: its project (X-Project-Id, else the first), scopes by role, and for unsafe
   * methods a matching X-CSRF-Token.
   */
  async principal(token: string, method: string, csrfHeader: string | undefined, projectHeader: string | undefined): Promise<Principal | null> {
    const s = await this.lookup(token);
    if (!s) return null;
    if (!["GET", "HEAD", "OPTIONS"].includes(method)) {
      const a = Buffer.from(csrfHeader ?? "");
      const b = Buffer.from(s.csrf);
      if (a.length !== b.length || !timingSafeEqual(a, b))
        throw new AppError(403, "csrf", "this request lacks the session's X-CSRF-Token header; reload the dashboard and try again");
    }
    let m = s.memberships[0]!;
    if (projectHeader !== undefined) {
      const found = s.memberships.find((x) => String(x.project_id) === projectHeader);
      if (!found) throw new AppError(403, "forbidden", `you are not a member of project ${JSON.stringify(projectHeader)}`);
      m = found;
    }
    return { keyId: 0, userId: s.user.id, projectId: m.project_id, scopes: scopesOfRole(m.role) };
  }
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
