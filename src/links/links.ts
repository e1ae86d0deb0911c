import { AppError, badRequest, conflict, notFound } from "../errors.js";
import { LINK_SORTS, UniqueViolation, type Link, type LinkPatch, type LinkSort, type Store, type Utm } from "../store/port.js";
import { randomString } from "../util/ids.js";
import { iso, parseTime } from "../util/time.js";
import type { DomainService } from "./domains.js";
import type { LinkResolver } from "./resolver.js";
import { publicRules, validateAllowedPlatforms, validateRules } from "./targeting.js";
import { GENERATED_SLUG_LENGTH, UTM_KEYS, validateSlug, validateUrl } from "./validate.js";

export const REDIRECT_STATUSES = [301, 302, 307, 308] as const;

export interface LinkInput {
  domain?: string;
  slug?: string;
  target?: string;
  redirect_status?: number;
  expires_at?: string | number | null;
  max_clicks?: number | null;
  tags?: string[];
  utm?: Utm;
  forward_query?: boolean;
  title?: string | null;
  notes?: string | null;
  rules?: unknown;
  allowed_platforms?: unknown;
  campaign_id?: number | null;
}

export interface ListQuery {
  domain?: string;
  tag?: string;
  q?: string;
  created_after?: string;
  created_before?: string;
  cursor?: string;
  limit?: number;
  campaign_id?: number;
  /** only links with targeting rules or allowed platforms */
  targeted?: boolean;
  sort?: string;
}

function tags(list: string[]): string[] {
  const out = [...new Set(list.map((t) => t.trim()).filter(Boolean))];
  for (const t of out) if (t.length > 64) throw badRequest(`tag ${JSON.stringify(t.slice(0, 20))}… is longer than 64 characters`, { field: "tags" });
  if (out.length > 32) throw badRequest("a link has at most 32 tags", { field: "tags" });
  return out;
}

function utm(u: Utm): Utm {
  const out: Utm = {};
  for (const k of UTM_KEYS) if (u[k]) out[k] = String(u[k]);
  return out;
}

export function publicLink(l: Link) {
  return {
    id: l.id,
    domain: l.hostname,
    slug: l.slug,
    short_url: `https://${l.hostname}/${l.slug}`,
    target: l.target,
    redirect_status: l.redirect_status,
    expires_at: iso(l.expires_at),
    max_clicks: l.max_clicks,
    tags: l.tags,
    utm: l.utm,
    forward_query: l.forward_query,
    title: l.title,
    notes: l.notes,
    clicks: l.clicks,
    rules: publicRules(l.rules),
    allowed_platforms: l.allowed_platforms,
    campaign_id: l.campaign_id,
    created_at: iso(l.created_at),
    updated_at: iso(l.updated_at),
  };
}

export const encodeCursor = (id: number) => Buffer.from(`l:${id}`).toString("base64url");
function decodeCursor(c: string): number {
  const m = /^l:(\d+)$/.exec(Buffer.from(c, "base64url").toString());
  if (!m) throw badRequest("cursor is not one this API returned", { field: "cursor" });
  return Number(m[1]);
}

/** A cursor of a sorted listing: the sort, and the last row's (value, id), as stored (before pending clicks are added). */
function encodeSortCursor(sort: LinkSort, l: Link): string {
  const value = sort.endsWith("slug") ? l.slug : sort.endsWith("clicks") ? l.clicks : l.id;
  return Buffer.from(JSON.stringify([sort, value, l.id])).toString("base64url");
}

function decodeSortCursor(c: string, sort: LinkSort): { value: string | number; id: number } {
  try {
    const [s, value, id] = JSON.parse(Buffer.from(c, "base64url").toString()) as [string, string | number, number];
    if (s === sort && Number.isInteger(id) && (typeof value === "string" || typeof value === "number")) return { value, id };
  } catch {
    /* not ours */
  }
  throw badRequest("cursor is not one this API returned for this sort", { field: "cursor" });
}

/** Links: host + slug → target. All checks that do not depend on HTTP live here, so every surface shares them. */
export class LinkService {
  constructor(
    private readonly store: Store,
    private readonly domains: DomainService,
    private readonly resolver: LinkResolver,
    /** clicks committed but not yet in the stored counter (see EventLog.pendingClicks) */
    private readonly pendingClicks: (linkId: number) => number = () => 0,
  ) {}

  private async campaign(projectId: number, id: number | null | undefined): Promise<number | null> {
    if (id === null || id === undefined) return null;
    if (!(await this.store.getCampaign(projectId, id))) throw badRequest(`campaign ${id} does not exist in this project`, { field: "campaign_id" });
    return id;
  }

  private withPending(l: Link): Link {
    l.clicks += this.pendingClicks(l.id);
    return l;
  }

  async create(projectId: number, input: LinkInput): Promise<Link> {
    if (!input.domain) throw badRequest("domain is required (the hostname of a registered domain)", { field: "domain" });
    if (!input.target) throw badRequest("target is required", { field: "target" });
    const domain = await this.domains.byName(projectId, input.domain);
    const target = validateUrl(input.target, "target");
    const status = input.redirect_status ?? 302;
    if (!(REDIRECT_STATUSES as readonly number[]).includes(status))
      throw badRequest(`redirect_status must be one of ${REDIRECT_STATUSES.join(", ")}`, { field: "redirect_status" });
    const base = {
      project_id: projectId,
      domain_id: domain.id,
      target,
      redirect_status: status as Link["redirect_status"],
      expires_at: parseTime(input.expires_at, "expires_at") ?? null,
      max_clicks: input.max_clicks ?? null,
      tags: tags(input.tags ?? []),
      utm: utm(input.utm ?? {}),
      forward_query: input.forward_query ?? false,
      title: input.title ?? null,
      notes: input.notes ?? null,
      rules: input.rules === undefined || input.rules === null ? [] : validateRules(input.rules),
      allowed_platforms: input.allowed_platforms === undefined ? null : validateAllowedPlatforms(input.allowed_platforms),
      campaign_id: await this.campaign(projectId, input.campaign_id),
    };
    if (input.slug !== undefined) {
      const slug = validateSlug(input.slug);
      try {
        const l = await this.store.createLink({ ...base, slug });
        this.resolver.invalidateLink(domain.id, slug);
        return l;
      } catch (e) {
        if (e instanceof UniqueViolation) throw conflict(`${domain.hostname}/${slug} already exists`, { field: "slug" });
        throw e;
      }
    }
    for (let attempt = 0; attempt < 8; attempt++) {
      const slug = randomString(GENERATED_SLUG_LENGTH + Math.floor(attempt / 3));
      try {
        const l = await this.store.createLink({ ...base, slug });
        this.resolver.invalidateLink(domain.id, slug);
        return l;
      } catch (e) {
        if (!(e instanceof UniqueViolation)) throw e;
      }
    }
    throw new AppError(503, "slug-space-exhausted", "could not generate a free slug; give one explicitly");
  }

  /** The link an import row would create, if it already exists: same (domain, slug), or without a slug the same target. */
  async findExisting(domainId: number, input: LinkInput): Promise<Link | null> {
    if (input.slug) return this.store.getLinkBySlug(domainId, input.slug);
    return input.target ? this.store.findLinkByTarget(domainId, input.target.trim()) : null;
  }

  async get(projectId: number, id: number): Promise<Link> {
    const l = await this.store.getLink(projectId, id);
    if (!l) throw notFound(`link ${id}`);
    return this.withPending(l);
  }

  async list(projectId: number, q: ListQuery): Promise<{ links: Link[]; next_cursor: string | null }> {
    const limit = q.limit ?? 50;
    const sort = (q.sort ?? "-created") as LinkSort;
    if (!(LINK_SORTS as readonly string[]).includes(sort)) throw badRequest(`sort must be one of ${LINK_SORTS.join(", ")}`, { field: "sort" });
    const links = await this.store.listLinks({
      project_id: projectId,
      domain_id: q.domain ? (await this.domains.byName(projectId, q.domain)).id : undefined,
      tag: q.tag,
      q: q.q,
      created_after: parseTime(q.created_after, "created_after"),
      created_before: parseTime(q.created_before, "created_before"),
      before_id: q.cursor && sort === "-created" ? decodeCursor(q.cursor) : undefined,
      sort,
      after: q.cursor && sort !== "-created" ? decodeSortCursor(q.cursor, sort) : undefined,
      campaign_id: q.campaign_id,
      targeted: q.targeted,
      limit: limit + 1,
    });
    const more = links.length > limit;
    if (more) links.pop();
    const last = links[links.length - 1];
    const next = !more || !last ? null : sort === "-created" ? encodeCursor(last.id) : encodeSortCursor(sort, last);
    return { links: links.map((l) => this.withPending(l)), next_cursor: next };
  }

  async update(projectId: number, id: number, input: LinkInput): Promise<Link> {
    const old = await this.get(projectId, id);
    const patch: LinkPatch = {};
    if (input.domain !== undefined) patch.domain_id = (await this.domains.byName(projectId, input.domain)).id;
    if (input.slug !== undefined) patch.slug = validateSlug(input.slug);
    if (input.target !== undefined) patch.target = validateUrl(input.target, "target");
    if (input.redirect_status !== undefined) {
      if (!(REDIRECT_STATUSES as readonly number[]).includes(input.redirect_status))
        throw badRequest(`redirect_status must be one of ${REDIRECT_STATUSES.join(", ")}`, { field: "redirect_status" });
      patch.redirect_status = input.redirect_status as Link["redirect_status"];
    }
    if (input.expires_at !== undefined) patch.expires_at = parseTime(input.expires_at, "expires_at") ?? null;
    if (input.max_clicks !== undefined) patch.max_clicks = input.max_clicks;
    if (input.tags !== undefined) patch.tags = tags(input.tags);
    if (input.utm !== undefined) patch.utm = utm(input.utm);
    if (input.forward_query !== undefined) patch.forward_query = input.forward_query;
    if (input.title !== undefined) patch.title = input.title;
    if (input.notes !== undefined) patch.notes = input.notes;
    if (input.rules !== undefined) patch.rules = input.rules === null ? [] : validateRules(input.rules);
    if (input.allowed_platforms !== undefined) patch.allowed_platforms = validateAllowedPlatforms(input.allowed_platforms);
    if (input.campaign_id !== undefined) patch.campaign_id = await this.campaign(projectId, input.campaign_id);
    try {
      const l = (await this.store.updateLink(projectId, id, patch))!;
      this.resolver.invalidateLink(old.domain_id, old.slug);
      this.resolver.invalidateLink(l.domain_id, l.slug);
      return l;
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`that domain and slug are already taken`, { field: "slug" });
      throw e;
    }
  }

  async delete(projectId: number, id: number): Promise<void> {
    const l = await this.get(projectId, id);
    await this.store.deleteLink(projectId, id);
    this.resolver.invalidateLink(l.domain_id, l.slug);
  }
}
