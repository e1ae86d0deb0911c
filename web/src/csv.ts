import Papa from "papaparse";
import type { LinkInput, Utm } from "./api";

/** The columns of the links CSV, as the CLI's import and export have them (domain, slug, target, title, tags at least). */
export const KNOWN_COLUMNS = [
  "domain",
  "slug",
  "target",
  "title",
  "tags",
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
const REQUIRED = ["domain", "target"];

export interface ImportRow {
  /** 1-based data row (the header not counted) */
  row: number;
  label: string;
  input?: LinkInput;
  error?: string;
  source: Record<string, string>;
}

export interface ParsedCsv {
  rows: ImportRow[];
  ignored: string[];
  missing: string[];
}

function rowToInput(r: Record<string, string>): LinkInput {
  const v = (k: string) => (r[k] ?? "").trim();
  const input: LinkInput = { domain: v("domain"), target: v("target") };
  if (v("slug")) input.slug = v("slug");
  if (v("title")) input.title = v("title");
  if (v("tags"))
    input.tags = v("tags")
      .split(/[|;,]/)
      .map((t) => t.trim())
      .filter(Boolean);
  if (v("notes")) input.notes = v("notes");
  if (v("redirect_status")) {
    const n = Number(v("redirect_status"));
    if (![301, 302, 307, 308].includes(n))
      throw new Error(`redirect_status must be 301, 302, 307 or 308, got ${JSON.stringify(v("redirect_status"))}`);
    input.redirect_status = n;
  }
  if (v("expires_at")) input.expires_at = v("expires_at");
  if (v("max_clicks")) {
    const n = Number(v("max_clicks"));
    if (!Number.isInteger(n) || n < 1) throw new Error(`max_clicks must be a positive integer, got ${JSON.stringify(v("max_clicks"))}`);
    input.max_clicks = n;
  }
  if (v("forward_query")) input.forward_query = /^(1|true|yes)$/i.test(v("forward_query"));
  const utm: Utm = {};
  for (const k of ["source", "medium", "campaign", "term", "content"] as const) if (v(`utm_${k}`)) utm[k] = v(`utm_${k}`);
  if (Object.keys(utm).length) input.utm = utm;
  return input;
}

export function parseLinksCsv(text: string): ParsedCsv {
  const result = Papa.parse<Record<string, string>>(text.replace(/^\uFEFF/, ""), {
    header: true,
    skipEmptyLines: "greedy",
    transformHeader: (h) => h.trim().toLowerCase(),
  });
  const fields = (result.meta.fields ?? []).filter(Boolean);
  const missing = REQUIRED.filter((c) => !fields.includes(c));
  const ignored = fields.filter((f) => !(KNOWN_COLUMNS as readonly string[]).includes(f));
  const rowErrors = new Map<number, string>();
  for (const e of result.errors) {
    if (e.row === undefined || e.row === null) continue;
    if (e.code === "TooFewFields") continue; // trailing empty columns may be left out
    if (!rowErrors.has(e.row)) rowErrors.set(e.row, e.message);
  }
  const rows = result.data.map((r, i): ImportRow => {
    const domain = (r.domain ?? "").trim();
    const slug = (r.slug ?? "").trim();
    const label = `${domain || "?"}/${slug || "(generated)"}`;
    const base = { row: i + 1, label, source: r };
    if (rowErrors.has(i)) return { ...base, error: rowErrors.get(i)! };
    try {
      return { ...base, input: rowToInput(r) };
    } catch (e) {
      return { ...base, error: (e as Error).message };
    }
  });
  return { rows, ignored, missing };
}

/** The failed rows as CSV again, with an `error` column, to fix and import once more. */
export function failuresCsv(rows: { source: Record<string, string>; detail: string }[]): string {
  const columns = new Set<string>(["domain", "slug", "target", "title", "tags"]);
  for (const r of rows) for (const k of Object.keys(r.source)) if (k && k !== "__parsed_extra") columns.add(k);
  const cols = [...columns, "error"];
  return Papa.unparse({ fields: cols, data: rows.map((r) => cols.map((c) => (c === "error" ? r.detail : (r.source[c] ?? "")))) });
}
