/**
 * The funnel builder's form state and the API's query: a query turns into a draft (opening a saved funnel) and a draft
 * into a query (running or saving it), with the checks the form can make before asking the server.
 */
import type { FunnelQuery, Scalar } from "./api";
import { addDays, startOfDay } from "./format";

export type Order = "ordered" | "strict" | "any";
export type At = "event" | "now" | "ever";

export interface WhereDraft {
  key: number;
  field: string;
  value: string;
}
export interface StepDraft {
  key: number;
  name: string;
  where: WhereDraft[];
}
export interface ExclusionDraft {
  key: number;
  name: string;
  /** "" = the whole funnel; else "a-b" (0-based step indexes) */
  between: string;
}
export interface FunnelDraft {
  steps: StepDraft[];
  /** "" = the default (14 days), "none" = no window */
  window: string;
  step_window: string;
  order: Order;
  exclusions: ExclusionDraft[];
  /** YYYY-MM-DD in the browser's time zone, both inclusive; "" = open */
  from: string;
  to: string;
  breakdown: "" | "property" | "event_field";
  breakdownName: string;
  at: At;
  attribution: "first" | "last";
}

let nextKey = 1;
export const newKey = () => nextKey++;

export const emptyStep = (name = ""): StepDraft => ({ key: newKey(), name, where: [] });

export function emptyDraft(): FunnelDraft {
  return {
    steps: [emptyStep(), emptyStep()],
    window: "",
    step_window: "",
    order: "ordered",
    exclusions: [],
    from: "",
    to: "",
    breakdown: "",
    breakdownName: "",
    at: "event",
    attribution: "first",
  };
}

/** A filter's value as typed: numbers and true/false are typed values; "quoted" text is always a string. */
export function parseValue(text: string): Scalar {
  const t = text.trim();
  if (/^".*"$/.test(t) && t.length >= 2) return t.slice(1, -1);
  if (t === "true") return true;
  if (t === "false") return false;
  if (/^-?(?:0|[1-9]\d*)(?:\.\d+)?$/.test(t)) return Number(t);
  return text;
}

/** The text that parses back to `v`. */
export function valueText(v: unknown): string {
  if (typeof v === "string") return /^(?:true|false|-?(?:0|[1-9]\d*)(?:\.\d+)?|".*")$/.test(v.trim()) ? JSON.stringify(v) : v;
  return String(v);
}

const durationText = (v: string | number | null | undefined) => (v === null ? "none" : v === undefined ? "" : typeof v === "number" ? `${v}s` : v);

/** YYYY-MM-DD in the browser's zone of an instant (ISO or epoch ms). */
function localDate(v: string | number | undefined, minusMs = 0): string {
  if (v === undefined) return "";
  const ms = (typeof v === "number" ? v : Date.parse(v)) - minusMs;
  if (!Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function draftOf(q: FunnelQuery): FunnelDraft {
  const d = emptyDraft();
  d.steps = q.steps.map((s) =>
    typeof s === "string"
      ? emptyStep(s)
      : { key: newKey(), name: s.name, where: Object.entries(s.where ?? {}).map(([field, v]) => ({ key: newKey(), field, value: valueText(v) })) },
  );
  d.window = durationText(q.window);
  d.step_window = durationText(q.step_window);
  d.order = q.order ?? "ordered";
  d.exclusions = (q.exclusions ?? []).map((e) => ({ key: newKey(), name: e.name, between: e.between ? `${e.between[0]}-${e.between[1]}` : "" }));
  d.from = localDate(q.from);
  // `to` is exclusive: the last day shown is the one before it
  d.to = localDate(q.to, 1);
  if (q.breakdown && "property" in q.breakdown) {
    d.breakdown = "property";
    d.breakdownName = q.breakdown.property;
    d.at = q.breakdown.at ?? "event";
  } else if (q.breakdown && "event_field" in q.breakdown) {
    d.breakdown = "event_field";
    d.breakdownName = q.breakdown.event_field;
  }
  d.attribution = q.attribution ?? "first";
  return d;
}

export interface DraftError {
  field: string;
  message: string;
}

const durationOk = (t: string) => /^\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)$/.test(t) || /^\d+(?:\.\d+)?$/.test(t);

function duration(text: string, field: string): string | number | null | undefined | DraftError {
  const t = text.trim();
  if (!t) return undefined;
  if (t.toLowerCase() === "none") return null;
  if (!durationOk(t)) return { field, message: 'Enter a duration such as "30m", "12h", "1d" or "2w", "none", or leave it empty.' };
  return /^\d+(?:\.\d+)?$/.test(t) ? Number(t) : t.replace(/\s+/g, "");
}

const isError = (v: unknown): v is DraftError => typeof v === "object" && v !== null && "message" in v && "field" in v;

/** The query of a draft, or the first thing the form can tell is wrong. */
export function queryOf(d: FunnelDraft): FunnelQuery | DraftError {
  if (d.steps.length === 0) return { field: "steps", message: "Add a step." };
  const steps: FunnelQuery["steps"] = [];
  for (const [i, s] of d.steps.entries()) {
    const name = s.name.trim();
    if (!name) return { field: `steps[${i}].name`, message: "Choose an event." };
    const where: Record<string, Scalar> = {};
    for (const w of s.where) {
      const f = w.field.trim();
      if (!f && !w.value.trim()) continue;
      if (!f) return { field: `steps[${i}].where`, message: "Name the data field of this filter." };
      where[f] = parseValue(w.value);
    }
    steps.push(Object.keys(where).length ? { name, where } : name);
  }
  const q: FunnelQuery = { steps };
  const window = duration(d.window, "window");
  if (isError(window)) return window;
  if (window !== undefined) q.window = window;
  const stepWindow = duration(d.step_window, "step_window");
  if (isError(stepWindow)) return stepWindow;
  if (stepWindow !== undefined) q.step_window = stepWindow;
  if (d.order !== "ordered") q.order = d.order;
  if (d.exclusions.length) {
    q.exclusions = [];
    for (const [i, e] of d.exclusions.entries()) {
      const name = e.name.trim();
      if (!name) return { field: `exclusions[${i}].name`, message: "Choose an event, or remove this exclusion." };
      const m = /^(\d+)-(\d+)$/.exec(e.between);
      if (m && Number(m[2]) >= steps.length) return { field: `exclusions[${i}].between`, message: "That step is not in the funnel any more." };
      q.exclusions.push(m ? { name, between: [Number(m[1]), Number(m[2])] } : { name });
    }
  }
  if (d.from && d.to && d.from > d.to) return { field: "from", message: "The first day must not be after the last." };
  const tz = localZone();
  if (d.from) q.from = new Date(startOfDay(d.from, tz)).toISOString();
  if (d.to) q.to = new Date(startOfDay(addDays(d.to, 1), tz)).toISOString();
  if (d.breakdown) {
    const name = d.breakdownName.trim();
    if (!name) return { field: "breakdown", message: d.breakdown === "property" ? "Choose a visitor property." : "Name the event data field." };
    q.breakdown = d.breakdown === "property" ? { property: name, at: d.at } : { event_field: name };
    if (d.attribution !== "first") q.attribution = d.attribution;
  }
  return q;
}

export const isDraftError = isError;

/**
 * The form's field for a problem's `field`: the API says "steps[1].name" (its own checks), "steps.1" or
 * "query.steps.1.where" (the JSON schema's); the form names its fields "steps[1].name", "steps[1].where", "window"…
 */
export function formField(apiField: string | undefined, known: readonly string[]): string | undefined {
  if (!apiField) return undefined;
  const f = apiField.replace(/^query\./, "").replace(/\.(\d+)(?=\.|$)/g, "[$1]");
  if (known.includes(f)) return f;
  // a whole item ("steps[1]") → its first control
  const item = known.find((k) => k.startsWith(f + ".") || k.startsWith(f + "["));
  if (item) return item;
  // the longest known field that the problem's field is inside of ("steps[1].where.plan" → "steps[1].where", "breakdown.x" → "breakdown")
  return known.filter((k) => f.startsWith(k + ".") || f.startsWith(k + "[")).sort((a, b) => b.length - a.length)[0];
}

/** A funnel's steps, for lists: "open → click → signup". */
export const stepsText = (q: FunnelQuery | undefined) =>
  (q?.steps ?? []).map((s) => (typeof s === "string" ? s : s.where && Object.keys(s.where).length ? `${s.name} (filtered)` : s.name)).join(" → ");
