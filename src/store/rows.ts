import type { Campaign, Link, LinkFilter, NewLink } from "./port.js";

export type Row = Record<string, unknown>;

/** SQLite's links query: a link with its domain's hostname (PostgreSQL's joins its counter too: link_counts). */
export const LINK_SELECT = `SELECT l.*, d.hostname FROM links l JOIN domains d ON d.id = l.domain_id`;

/** A links row as a Link. SQLite keeps tags and utm as JSON text and booleans as 0/1; PostgreSQL as jsonb and boolean. */
export function toLink(r: Row | undefined): Link | null {
  if (!r) return null;
  const json = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);
  return {
    id: r.id as number,
    project_id: r.project_id as number,
    domain_id: r.domain_id as number,
    hostname: r.hostname as string,
    slug: r.slug as string,
    target: r.target as string,
    redirect_status: r.redirect_status as Link["redirect_status"],
    expires_at: (r.expires_at as number | null) ?? null,
    max_clicks: (r.max_clicks as number | null) ?? null,
    tags: json(r.tags) as string[],
    utm: json(r.utm) as Link["utm"],
    forward_query: r.forward_query === 1 || r.forward_query === true,
    title: (r.title as string | null) ?? null,
    notes: (r.notes as string | null) ?? null,
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
    clicks: r.clicks as number,
    rules: json(r.rules) as Link["rules"],
    allowed_platforms: (json(r.allowed_platforms) as Link["allowed_platforms"]) ?? null,
    campaign_id: (r.campaign_id as number | null) ?? null,
  };
}

export function toCampaign(r: Row | undefined): Campaign | null {
  if (!r) return null;
  return {
    id: r.id as number,
    project_id: r.project_id as number,
    name: r.name as string,
    utm: (typeof r.utm === "string" ? JSON.parse(r.utm) : r.utm) as Campaign["utm"],
    notes: (r.notes as string | null) ?? null,
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
  };
}

/** Link fields kept as JSON (text on SQLite, jsonb on PostgreSQL): encoded the same way by both adapters. */
export const LINK_JSON_FIELDS = new Set(["tags", "utm", "rules", "allowed_platforms"]);
export const linkFieldValue = (k: string, v: unknown) => (LINK_JSON_FIELDS.has(k) && v !== null ? JSON.stringify(v) : v);

/** The columns of a new link row, and (linkValues) the first fifteen of their values: the caller adds created_at and
 * updated_at; `bool` encodes forward_query for the engine. */
export const LINK_COLUMNS =
  "project_id, domain_id, slug, target, redirect_status, expires_at, max_clicks, tags, utm, forward_query, title, notes, rules, allowed_platforms, campaign_id, created_at, updated_at";

export function linkValues(l: NewLink, bool: (b: boolean) => unknown): unknown[] {
  return [
    l.project_id,
    l.domain_id,
    l.slug,
    l.target,
    l.redirect_status,
    l.expires_at,
    l.max_clicks,
    JSON.stringify(l.tags),
    JSON.stringify(l.utm),
    bool(l.forward_query),
    l.title,
    l.notes,
    JSON.stringify(l.rules),
    l.allowed_platforms === null ? null : JSON.stringify(l.allowed_platforms),
    l.campaign_id,
  ];
}

/**
 * ORDER BY and the keyset condition of a sorted link listing (both engines): the column, its direction, and rows after
 * the cursor's (value, id). `p` binds a value and returns its placeholder.
 */
export function linkOrder(
  f: LinkFilter,
  p: (v: unknown) => string,
  clicks: { col: string; id: string } = { col: "l.clicks", id: "l.id" },
): { where: string | null; order: string } {
  const sort = f.sort ?? "-created";
  const desc = sort.startsWith("-");
  const by = sort.replace(/^-/, "") as "created" | "slug" | "clicks";
  // (clicks: the counter's own columns where it has a table and a sort index of its own, PostgreSQL's link_counts)
  const [col, id] = by === "created" ? ["l.id", "l.id"] : by === "slug" ? ["l.slug", "l.id"] : [clicks.col, clicks.id];
  const dir = desc ? "DESC" : "ASC";
  const order = col === id ? `${id} ${dir}` : `${col} ${dir}, ${id} ${dir}`;
  if (!f.after) return { where: null, order };
  const cmp = desc ? "<" : ">";
  if (col === id) return { where: `${id} ${cmp} ${p(f.after.id)}`, order };
  return { where: `(${col}, ${id}) ${cmp} (${p(f.after.value)}, ${p(f.after.id)})`, order };
}
