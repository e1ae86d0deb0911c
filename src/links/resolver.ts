import { LRUCache } from "lru-cache";
import type { Domain, Link, Store } from "../store/port.js";
import { withUtm } from "./validate.js";

export interface ResolvedLink {
  link: Link;
  /** target with UTM parameters, computed once per cache fill */
  location: string;
}

const NONE = Symbol("none");

/**
 * The in-process cache of the redirect hot path: hostname → domain, (domain, slug) → link. Negative answers are cached
 * too. Every change made through this process invalidates precisely; a change made by another process (the CLI, a
 * second instance) is noticed by polling the store and drops everything.
 */
export class LinkResolver {
  private readonly domains = new LRUCache<string, Domain | typeof NONE>({ max: 10_000 });
  private readonly links = new LRUCache<string, ResolvedLink | typeof NONE>({ max: 200_000 });

  constructor(
    private readonly store: Store,
    /** clicks committed to the event log but not yet to links.clicks (the writer's rollup buffer) */
    private readonly pendingClicks: (linkId: number) => number = () => 0,
  ) {}

  async domain(hostname: string): Promise<Domain | null> {
    const hit = this.domains.get(hostname);
    if (hit !== undefined) return hit === NONE ? null : hit;
    const d = await this.store.getDomainByHostname(hostname);
    this.domains.set(hostname, d ?? NONE);
    return d;
  }

  /** Synchronous peek for the hot path: undefined when not cached. */
  cachedDomain(hostname: string): Domain | null | undefined {
    const hit = this.domains.get(hostname);
    return hit === undefined ? undefined : hit === NONE ? null : hit;
  }

  async link(domainId: number, slug: string): Promise<ResolvedLink | null> {
    const key = `${domainId}/${slug}`;
    const hit = this.links.get(key);
    if (hit !== undefined) return hit === NONE ? null : hit;
    const link = await this.store.getLinkBySlug(domainId, slug);
    if (link) link.clicks += this.pendingClicks(link.id);
    const r = link ? { link, location: withUtm(link.target, link.utm) } : null;
    this.links.set(key, r ?? NONE);
    return r;
  }

  invalidateLink(domainId: number, slug: string) {
    this.links.delete(`${domainId}/${slug}`);
  }

  invalidateAll() {
    this.domains.clear();
    this.links.clear();
  }
}
