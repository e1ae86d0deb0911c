import { LRUCache } from "lru-cache";
import type { Domain, Link, Store, Utm } from "../store/port.js";
import { RecentKeys } from "../util/recent.js";
import { compileTargeting, type CompiledTargeting, type KeptTarget } from "./targeting.js";
import { withUtm } from "./validate.js";

export interface ResolvedLink extends KeptTarget {
  link: Link;
  /** target with UTM parameters (the campaign's, then the link's own), computed once per cache fill */
  readonly location: string;
  /** rules and allowed platforms, compiled; null when the link has neither */
  targeting: CompiledTargeting | null;
}

const NONE = Symbol("none");

/**
 * (domain id, slug) → value, for about `max` of them: two generations of maps per domain, the young one taking what is
 * set (and what is found in the old one), the old one dropped when the young one is full. What is used within a
 * generation's span stays, as in an LRU cache. A lookup is two maps' gets, by the domain's number and by the slug as it
 * came (a key `${domainId}/${slug}` had to be built, flattened and hashed for every click; measured alone, a hit 30
 * against 100 ns in lru-cache).
 */
export class SlugCache<V> {
  private young = new Map<number, Map<string, V>>();
  private old = new Map<number, Map<string, V>>();
  private youngSize = 0;
  private readonly generation: number;

  constructor(max: number) {
    this.generation = Math.max(1, Math.floor(max / 2));
  }

  get(domainId: number, slug: string): V | undefined {
    const hit = this.young.get(domainId)?.get(slug);
    if (hit !== undefined) return hit;
    const aged = this.old.get(domainId)?.get(slug);
    if (aged !== undefined) this.set(domainId, slug, aged);
    return aged;
  }

  set(domainId: number, slug: string, value: V): void {
    let bySlug = this.young.get(domainId);
    if (!bySlug) this.young.set(domainId, (bySlug = new Map()));
    const before = bySlug.size;
    bySlug.set(slug, value);
    if (bySlug.size === before || ++this.youngSize < this.generation) return;
    this.old = this.young;
    this.young = new Map();
    this.youngSize = 0;
  }

  delete(domainId: number, slug: string): void {
    if (this.young.get(domainId)?.delete(slug)) this.youngSize--;
    this.old.get(domainId)?.delete(slug);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
    this.youngSize = 0;
  }
}

/**
 * The in-process cache of the redirect hot path: hostname → domain, (domain, slug) → link. Negative answers are cached
 * too. Every change made through this process invalidates precisely; a change made by another process (the CLI, a
 * second instance) is noticed by polling the store and drops everything.
 */
export class LinkResolver {
  private readonly domains = new LRUCache<string, Domain | typeof NONE>({ max: 10_000 });
  /** the hostnames looked up last (see RecentKeys): a request's Host is a new string every time */
  private readonly recentDomains = new RecentKeys<Domain | typeof NONE>();
  private readonly links = new SlugCache<ResolvedLink | typeof NONE>(200_000);
  /** link id → its domain and slug in `links` */
  private readonly ids = new LRUCache<number, [number, string]>({ max: 200_000 });
  /**
   * Reads of links not cached, under way: the requests for one such link share its read (a link that goes viral right
   * after a restart or a change would otherwise send the database one identical query per request). An invalidation
   * drops the read from here, so its answer, read before the change, is not cached.
   */
  private readonly loading = new Map<string, Promise<ResolvedLink | null>>();

  constructor(
    private readonly store: Store,
    /** clicks committed to the event log but not yet to the link's stored counter (the writer's rollup buffer) */
    private readonly pendingClicks: (linkId: number) => number = () => 0,
  ) {}

  async domain(hostname: string): Promise<Domain | null> {
    const hit = this.cachedDomain(hostname);
    if (hit !== undefined) return hit;
    const d = await this.store.getDomainByHostname(hostname);
    this.domains.set(hostname, d ?? NONE);
    return d;
  }

  /** Synchronous peek for the hot path: undefined when not cached. */
  cachedDomain(hostname: string): Domain | null | undefined {
    let hit = this.recentDomains.get(hostname);
    if (hit === undefined) {
      hit = this.domains.get(hostname);
      if (hit !== undefined) this.recentDomains.put(hostname, hit);
    }
    return hit === undefined ? undefined : hit === NONE ? null : hit;
  }

  /** Synchronous peek for the hot path: undefined when not cached (then link()). */
  cachedLink(domainId: number, slug: string): ResolvedLink | null | undefined {
    const hit = this.links.get(domainId, slug);
    return hit === undefined ? undefined : hit === NONE ? null : hit;
  }

  async link(domainId: number, slug: string): Promise<ResolvedLink | null> {
    // no slug holds U+0000 (and PostgreSQL cannot even compare one): not found, without asking the database
    if (slug.includes("\u0000")) return null;
    const hit = this.cachedLink(domainId, slug);
    if (hit !== undefined) return hit;
    const key = `${domainId}/${slug}`;
    const under = this.loading.get(key);
    if (under) return under;
    // (compared only after the read's first await, by which time it is assigned)
    let read: Promise<ResolvedLink | null> | undefined = undefined;
    read = (async () => {
      try {
        const link = await this.store.getLinkBySlug(domainId, slug);
        const r = link ? await this.resolve(link) : null;
        if (this.loading.get(key) === read) this.links.set(domainId, slug, r ?? NONE);
        return r;
      } finally {
        if (this.loading.get(key) === read) this.loading.delete(key);
      }
    })();
    this.loading.set(key, read);
    return read;
  }

  /** A link by id, from the same cache (campaign surfaces such as o7tracker's /track/{id}). */
  async linkById(projectId: number, id: number): Promise<ResolvedLink | null> {
    const at = this.ids.get(id);
    const hit = at === undefined ? undefined : this.links.get(at[0], at[1]);
    if (hit && hit !== NONE && hit.link.id === id) return hit.link.project_id === projectId ? hit : null;
    const link = await this.store.getLink(projectId, id);
    if (!link) return null;
    const r = await this.resolve(link);
    this.links.set(link.domain_id, link.slug, r);
    this.ids.set(id, [link.domain_id, link.slug]);
    return r;
  }

  private async resolve(link: Link): Promise<ResolvedLink> {
    link.clicks += this.pendingClicks(link.id);
    let utm: Utm = link.utm;
    if (link.campaign_id !== null) {
      const c = await this.store.getCampaignById(link.campaign_id);
      if (c) utm = { ...c.utm, ...link.utm };
    }
    const locate = (target: string) => withUtm(target, utm);
    return { link, location: locate(link.target), heads: null, targeting: compileTargeting(link.rules, link.allowed_platforms, locate) };
  }

  invalidateLink(domainId: number, slug: string) {
    this.links.delete(domainId, slug);
    this.loading.delete(`${domainId}/${slug}`);
  }

  invalidateAll() {
    this.loading.clear();
    this.domains.clear();
    this.recentDomains.clear();
    this.links.clear();
    this.ids.clear();
  }
}
