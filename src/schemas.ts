import { badRequest } from "./errors.js";

/** JSON schemas shared by several feature folders (validation at the edge, and the OpenAPI document). */

export const problemSchema = {
  $id: "Problem",
  type: "object",
  description: "RFC 9457 problem details",
  properties: {
    type: { type: "string" },
    title: { type: "string" },
    status: { type: "integer" },
    detail: { type: "string" },
    field: { type: "string" },
    errors: { type: "array", items: { type: "object", additionalProperties: true } },
  },
  additionalProperties: true,
} as const;

export const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: "^[0-9]{1,15}$", description: "numeric id" } },
} as const;

export const errorResponses = {
  400: { $ref: "Problem#" },
  401: { $ref: "Problem#" },
  403: { $ref: "Problem#" },
  404: { $ref: "Problem#" },
} as const;

export const statsQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    from: { type: "string", description: "start, ISO 8601 or epoch ms (default: 30 days before `to`)" },
    to: { type: "string", description: "end, exclusive, ISO 8601 or epoch ms (default: now)" },
    interval: { type: "string", enum: ["hour", "day", "week"] },
    tz: { type: "string", description: "IANA time zone of the series buckets (default UTC)" },
    bots: { type: "string", enum: ["include", "exclude"], description: "count bot clicks (default exclude)" },
    top: { type: "string", pattern: "^[0-9]{1,3}$", description: "values per breakdown (default 10)" },
  },
} as const;

export const statsResponse = {
  type: "object",
  properties: {
    from: { type: "string" },
    to: { type: "string" },
    interval: { type: "string" },
    tz: { type: "string" },
    bots: { type: "string" },
    clicks: { type: "integer" },
    bot_clicks: { type: ["integer", "null"] },
    visitors: { type: "integer" },
    orphan_visits: { type: "integer" },
    series: { type: "array", items: { type: "object", properties: { t: { type: "string" }, clicks: { type: "integer" } } } },
    breakdowns: {
      type: "object",
      additionalProperties: { type: "array", items: { type: "object", properties: { value: { type: "string" }, clicks: { type: "integer" } } } },
    },
  },
} as const;

export function intParam(v: string | undefined, field: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw badRequest(`${field} must be an integer from ${min} to ${max}`, { field });
  }
  return n;
}
