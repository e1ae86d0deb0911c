import { randomBytes, scrypt as scryptCb, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { LRUCache } from "lru-cache";
import { AppError, badRequest, conflict, notFound } from "../errors.js";
import type { SessionService } from "./sessions.js";
import { SCOPES, UniqueViolation, type ApiKey, type Project, type Scope, type Store, type User } from "../store/port.js";
import { sha256 } from "../util/hash.js";

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

export const DEFAULT_PROJECT = "default";

export interface Principal {
  /** the API key's id; 0 for a dashboard session */
  keyId: number;
  /** the signed-in user of a dashboard session */
  userId?: number;
  projectId: number;
  scopes: Set<Scope>;
}

export function hashKey(key: string): string {
  return sha256(key, "hex");
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32);
  return `scrypt$${salt.toString("base64")}$${hash.toString("base64")}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, salt, hash] = stored.split("$");
  if (kind !== "scrypt" || !salt || !hash) return false;
  const want = Buffer.from(hash, "base64");
  const got = await scrypt(password, Buffer.from(salt, "base64"), want.length);
  return timingSafeEqual(want, got);
}

export function parseScopes(raw: string | string[]): Scope[] {
  const list = (Array.isArray(raw) ? raw : raw.split(",")).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw badRequest(`at least one scope is required (${SCOPES.join(", ")})`);
  for (const s of list) {
    if (!(SCOPES as readonly string[]).includes(s)) throw badRequest(`unknown scope ${JSON.stringify(s)}; known scopes: ${SCOPES.join(", ")}`);
  }
  return [...new Set(list)] as Scope[];
}

/** Accounts, projects and API keys. Keys are shown once and stored as SHA-256 hashes. */
export class AuthService {
  private readonly cache = new LRUCache<string, { key: ApiKey | null }>({ max: 10_000, ttl: 60_000 });

  /** dashboard sessions (set by buildServices), accepted by requireScope besides API keys */
  sessions?: SessionService;

  constructor(private readonly store: Store) {}

  clearCache() {
    this.cache.clear();
  }

  async ensureDefaultProject(): Promise<Project> {
    const p = await this.store.getProject(DEFAULT_PROJECT);
    if (p) return p;
    try {
      return await this.store.createProject(DEFAULT_PROJECT);
    } catch (e) {
      if (e instanceof UniqueViolation) return (await this.store.getProject(DEFAULT_PROJECT))!;
      throw e;
    }
  }

  /**
   * Makes sure the default project has an admin key: the configured one (CLICKTRAIL_ADMIN_KEY), or, on a first start
   * without one, a generated key that is returned so the caller can print it once.
   */
  async bootstrapAdminKey(configured: string | undefined): Promise<string | null> {
    const project = await this.ensureDefaultProject();
    if (configured) {
      const hash = hashKey(configured);
      const existing = await this.store.getApiKeyByHash(hash);
      if (!existing) {
        try {
          await this.store.createApiKey({
            project_id: project.id,
            name: "bootstrap (CLICKTRAIL_ADMIN_KEY)",
            prefix: configured.slice(0, 10),
            hash,
            scopes: ["admin"],
          });
        } catch (e) {
          // several instances starting at once on one database: another one stored the same key a moment ago
          if (!(e instanceof UniqueViolation)) throw e;
        }
      } else if (existing.revoked_at !== null) {
        throw new AppError(500, "config", "CLICKTRAIL_ADMIN_KEY names a key that was revoked; set another value");
      }
      return null;
    }
    if ((await this.store.countApiKeys()) > 0) return null;
    const { token } = await this.createKey(project.id, "bootstrap (generated)", ["admin"]);
    return token;
  }

  async createProject(name: string): Promise<Project> {
    if (!/^[a-zA-Z0-9][\w.-]{0,63}$/.test(name))
      throw badRequest("project name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    try {
      return await this.store.createProject(name);
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`a project named ${JSON.stringify(name)} already exists`);
      throw e;
    }
  }

  async resolveProject(idOrName: string | number): Promise<Project> {
    const p =
      typeof idOrName === "number" || /^\d+$/.test(idOrName) ? await this.store.getProject(Number(idOrName)) : await this.store.getProject(idOrName);
    if (!p) throw notFound(`project ${JSON.stringify(String(idOrName))}`);
    return p;
  }

  async createUser(email: string, password: string, projectId?: number): Promise<User> {
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw badRequest("email must look like name@example.com");
    if (password.length < 8) throw badRequest("password must be at least 8 characters long");
    try {
      const u = await this.store.createUser(email, await hashPassword(password));
      await this.store.addMember(u.id, projectId ?? (await this.ensureDefaultProject()).id, "owner");
      return u;
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`a user with email ${email} already exists`);
      throw e;
    }
  }

  async createKey(projectId: number, name: string, scopes: Scope[]): Promise<{ token: string; key: ApiKey }> {
    const token = "ct_" + randomBytes(24).toString("base64url");
    const key = await this.store.createApiKey({ project_id: projectId, name, prefix: token.slice(0, 10), hash: hashKey(token), scopes });
    return { token, key };
  }

  async revokeKey(projectId: number, id: number): Promise<void> {
    if (!(await this.store.revokeApiKey(projectId, id))) throw notFound(`active API key ${id}`);
    this.cache.clear();
  }

  /** The principal behind a bearer token, or null when the token is unknown or revoked. */
  async verify(token: string): Promise<Principal | null> {
    const hash = hashKey(token);
    let hit = this.cache.get(hash);
    if (!hit) {
      hit = { key: await this.store.getApiKeyByHash(hash) };
      this.cache.set(hash, hit);
    }
    const k = hit.key;
    if (!k || k.revoked_at !== null) return null;
    // the lookup was by hash; compare again in constant time so no timing reveals a near-match
    if (!timingSafeEqual(Buffer.from(k.hash, "hex"), Buffer.from(hash, "hex"))) return null;
    return { keyId: k.id, projectId: k.project_id, scopes: new Set(k.scopes) };
  }
}

export function publicKey(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    created_at: new Date(k.created_at).toISOString(),
    revoked_at: k.revoked_at === null ? null : new Date(k.revoked_at).toISOString(),
  };
}
