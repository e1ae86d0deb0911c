import { AppError } from "../errors.js";

export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export const floorDay = (ms: number) => ms - (ms % DAY);

export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** Parses an ISO 8601 date/time or epoch milliseconds; undefined when absent. Throws on garbage. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
/** Latest instant a JavaScript Date can hold (±100,000,000 days around 1970). */
const MAX_TIME = 8.64e15;

export function parseTime(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  let ms = NaN;
  if (typeof value === "number") ms = value;
  else if (typeof value === "string") {
    if (/^\d{10,15}$/.test(value)) ms = Number(value);
    else if (ISO_8601.test(value)) ms = Date.parse(value);
  }
  if (!Number.isInteger(ms) || Math.abs(ms) > MAX_TIME) throw new TimeError(field, value);
  return ms;
}

/** A time that does not parse: a 400 naming its field, wherever it is thrown (API, raw paths, dialects, CLI). */
export class TimeError extends AppError {
  constructor(
    readonly field: string,
    value: unknown,
  ) {
    super(
      400,
      "invalid-request",
      `${field} must be an ISO 8601 date-time (e.g. 2026-01-31T12:00:00Z) or epoch milliseconds, got ${JSON.stringify(value)}`,
      {
        field,
      },
    );
  }
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const QUARTER = 15 * 60_000;
const offsetMemo = new Map<string, number>();

/**
 * Offset of `tz` from UTC at instant `ms`, in milliseconds (positive east of Greenwich). Offsets only change on
 * quarter-hour boundaries, so they are memoised per time zone and quarter hour (Intl is slow).
 */
export function tzOffset(ms: number, tz: string): number {
  if (tz === "UTC") return 0;
  const key = `${tz}|${Math.floor(ms / QUARTER)}`;
  let off = offsetMemo.get(key);
  if (off === undefined) {
    if (offsetMemo.size > 200_000) offsetMemo.clear();
    off = computeOffset(ms, tz);
    offsetMemo.set(key, off);
  }
  return off;
}

function computeOffset(ms: number, tz: string): number {
  let f = offsetFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    offsetFormatters.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(ms)) if (part.type !== "literal") p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return asUtc - (ms - (ms % 1000));
}

export type Interval = "hour" | "day" | "week";

/** Start (UTC ms) of the local hour/day/ISO week containing `ms` in `tz`. */
export function bucketStart(ms: number, interval: Interval, tz: string): number {
  const off = tzOffset(ms, tz);
  const local = ms + off;
  let startLocal: number;
  if (interval === "hour") startLocal = local - (((local % HOUR) + HOUR) % HOUR);
  else {
    startLocal = local - (((local % DAY) + DAY) % DAY);
    if (interval === "week") {
      const dow = (new Date(startLocal).getUTCDay() + 6) % 7; // Monday = 0
      startLocal -= dow * DAY;
    }
  }
  // convert local midnight back to UTC with the offset in force at that instant
  return startLocal - tzOffset(startLocal - off, tz);
}
