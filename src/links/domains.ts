import { badRequest, conflict, notFound, AppError } from "../errors.js";
import { UniqueViolation, type Domain, type Store } from "../store/port.js";
import { normalizeHostname, validateUrl } from "./validate.js";
import type { LinkResolver } from "./resolver.js";

export interface DomainInput {
  hostname?: string;
  fallback_url?: string | null;
}

/** The hostnames a project serves links on. A hostname belongs to one project. */
export class DomainService {
  constructor(
    private readonly store: Store,
    private readonly resolver: LinkResolver,
  ) {}

  async create(projectId: number, input: DomainInput): Promise<Domain> {
    if (!input.hostname) throw badRequest("hostname is required", { field: "hostname" });
    const hostname = normalizeHostname(input.hostname);
    const fallback_url = input.fallback_url ? validateUrl(input.fallback_url, "fallback_url") : null;
    try {
      const d = await this.store.createDomain({ project_id: projectId, hostname, fallback_url });
      this.resolver.invalidateAll();
      return d;
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`domain ${hostname} is already registered`, { field: "hostname" });
      throw e;
    }
  }

  async get(projectId: number, id: number): Promise<Domain> {
    const d = await this.store.getDomain(projectId, id);
    if (!d) throw notFound(`domain ${id}`);
    return d;
  }

  /** By id, or by hostname (as the links API names domains). */
  async byName(projectId: number, hostname: string): Promise<Domain> {
    let h: string;
    try {
      h = normalizeHostname(hostname);
    } catch (e) {
      if (e instanceof AppError) throw new AppError(e.status, e.type, e.message.replace(/^hostname/, "domain"), { ...e.extra, field: "domain" });
      throw e;
    }
    const d = await this.store.getDomainByHostname(h);
    if (!d || d.project_id !== projectId)
      throw new AppError(400, "unknown-domain", `domain ${h} is not registered in this project; create it first with POST /api/v1/domains`, {
        field: "domain",
      });
    return d;
  }

  list(projectId: number): Promise<Domain[]> {
    return this.store.listDomains(projectId);
  }

  async update(projectId: number, id: number, input: DomainInput): Promise<Domain> {
    await this.get(projectId, id);
    const patch: { hostname?: string; fallback_url?: string | null } = {};
    if (input.hostname !== undefined) patch.hostname = normalizeHostname(input.hostname);
    if (input.fallback_url !== undefined) patch.fallback_url = input.fallback_url ? validateUrl(input.fallback_url, "fallback_url") : null;
    try {
      const d = await this.store.updateDomain(projectId, id, patch);
      this.resolver.invalidateAll();
      return d!;
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`domain ${patch.hostname} is already registered`, { field: "hostname" });
      throw e;
    }
  }

  async delete(projectId: number, id: number): Promise<void> {
    await this.get(projectId, id);
    const n = await this.store.countLinksOnDomain(id);
    if (n > 0) throw conflict(`domain ${id} still has ${n} link(s); delete or move them first`);
    await this.store.deleteDomain(projectId, id);
    this.resolver.invalidateAll();
  }
}
