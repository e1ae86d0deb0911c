import { createReadStream, readFileSync } from "node:fs";
import { parse } from "csv-parse";
import { stringify } from "csv-stringify/sync";
import { AppError } from "../errors.js";
import type { Link } from "../store/port.js";
import type { DomainService } from "./domains.js";
import type { LinkInput, LinkService } from "./links.js";
import { iso } from "../util/time.js";

/** Columns of the links CSV, the same for import and export, so an export can be imported elsewhere. */
export const LINK_CSV_COLUMNS = [
  "domain",
  "slug",
  "target",
  "tags",
  "title",
  "notes",
  "redirect_status",
  "expires_at",
  "max_clicks",
  "forward_query",
  "utm_source",
  "utm_medium",
  "utm_campaign",
  "utm_term",
  "utm_content",
] as const;

export type ImportOutcome = { row: number; status: "created" | "exists" | "failed"; message?: string; link?: Link };

export function linkToCsvRow(l: Link): Record<string, string> {
  return {
    domain: l.hostname,
    slug: l.slug,
    target: l.target,
    tags: l.tags.join("|"),
    title: l.title ?? "",
    notes: l.notes ?? "",
    redirect_status: String(l.redirect_status),
    expires_at: iso(l.expires_at) ?? "",
    max_clicks: l.max_clicks === null ? "" : String(l.max_clicks),
    forward_query: l.forward_query ? "true" : "false",
    utm_source: l.utm.source ?? "",
    utm_medium: l.utm.medium ?? "",
    utm_campaign: l.utm.campaign ?? "",
    utm_term: l.utm.term ?? "",
    utm_content: l.utm.content ?? "",
  };
}

export const linksCsv = (links: Link[], header: boolean) => stringify(links.map(linkToCsvRow), { header, columns: [...LINK_CSV_COLUMNS] });

function rowToInput(r: Record<string, string>): LinkInput {
  const input: LinkInput = { domain: r.domain?.trim(), target: r.target?.trim() };
  const v = (k: string) => (r[k] ?? "").trim();
  if (v("slug")) input.slug = v("slug");
  if (v("tags"))
    input.tags = v("tags")
      .split(/[|;]/)
      .map((t) => t.trim())
      .filter(Boolean);
  if (v("title")) input.title = v("title");
  if (v("notes")) input.notes = v("notes");
  if (v("redirect_status")) input.redirect_status = Number(v("redirect_status"));
  if (v("expires_at")) input.expires_at = v("expires_at");
  if (v("max_clicks")) {
    const n = Number(v("max_clicks"));
    if (!Number.isInteger(n) || n < 1)
      throw new AppError(400, "invalid-request", `max_clicks must be a positive integer, got ${JSON.stringify(v("max_clicks"))}`);
    input.max_clicks = n;
  }
  if (v("forward_query")) input.forward_query = /^(1|true|yes)$/i.test(v("forward_query"));
  const utm: Record<string, string> = {};
  for (const k of ["source", "medium", "campaign", "term", "content"]) if (v(`utm_${k}`)) utm[k] = v(`utm_${k}`);
  if (Object.keys(utm).length) input.utm = utm;
  return input;
}

export function countCsvRows(file: string): number {
  const text = readFileSync(file, "utf8");
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  if (text.length && !text.endsWith("\n")) n++;
  return Math.max(0, n - 1);
}

/**
 * Imports links from a CSV file with a header row. Idempotent: a row whose (domain, slug) already exists with the same
 * target, or (without a slug) whose domain already has a link to that target, is reported as "exists", not created
 * again. A row that would change an existing link is reported as failed, never applied silently.
 */
export async function* importLinksCsv(
  file: string,
  projectId: number,
  svc: { links: LinkService; domains: DomainService },
  opts: { createDomains?: boolean } = {},
): AsyncGenerator<ImportOutcome> {
  const parser = createReadStream(file).pipe(
    parse({
      columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()),
      skip_empty_lines: true,
      trim: false,
      bom: true,
      relax_column_count: true,
    }),
  );
  let row = 1;
  const knownDomains = new Map<string, number>();
  for await (const rec of parser as AsyncIterable<Record<string, string>>) {
    row++;
    try {
      const input = rowToInput(rec);
      if (!input.domain) throw new AppError(400, "invalid-request", "domain is empty");
      if (!input.target) throw new AppError(400, "invalid-request", "target is empty");
      let domainId = knownDomains.get(input.domain);
      if (domainId === undefined) {
        try {
          domainId = (await svc.domains.byName(projectId, input.domain)).id;
        } catch (e) {
          if (!opts.createDomains || !(e instanceof AppError) || e.type !== "unknown-domain") throw e;
          domainId = (await svc.domains.create(projectId, { hostname: input.domain })).id;
        }
        knownDomains.set(input.domain, domainId);
      }
      const existing = await svc.links.findExisting(domainId, input);
      if (existing) {
        if (existing.target !== input.target)
          throw new AppError(409, "conflict", `${existing.hostname}/${existing.slug} already exists with another target (${existing.target})`);
        yield { row, status: "exists", link: existing };
        continue;
      }
      yield { row, status: "created", link: await svc.links.create(projectId, input) };
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      yield { row, status: "failed", message: e.message };
    }
  }
}
