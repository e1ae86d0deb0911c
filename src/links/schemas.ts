const nullableString = (max: number) => ({ type: ["string", "null"], maxLength: max }) as const;

export const domainBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    hostname: { type: "string", minLength: 1, maxLength: 253, description: "host name, case-insensitive; port ignored; IDN stored as punycode" },
    fallback_url: { ...nullableString(4096), description: "where the root and unknown slugs of this domain redirect (else 404)" },
  },
} as const;

export const domainSchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    hostname: { type: "string" },
    fallback_url: { type: ["string", "null"] },
    created_at: { type: "string" },
    updated_at: { type: "string" },
  },
} as const;

const utm = {
  type: "object",
  additionalProperties: false,
  properties: Object.fromEntries(["source", "medium", "campaign", "term", "content"].map((k) => [k, { type: "string", maxLength: 256 }])),
} as const;

const linkProps = {
  domain: { type: "string", minLength: 1, maxLength: 253, description: "hostname of a registered domain" },
  slug: { type: "string", minLength: 1, maxLength: 64, description: "custom slug; generated when absent" },
  target: { type: "string", minLength: 1, maxLength: 4096, description: "absolute http(s) URL" },
  redirect_status: { type: "integer", enum: [301, 302, 307, 308] },
  expires_at: { type: ["string", "integer", "null"], description: "ISO 8601 or epoch ms; after it the link answers 410 (or the domain fallback)" },
  max_clicks: { type: ["integer", "null"], minimum: 1, description: "non-bot clicks after which the link answers 410" },
  tags: { type: "array", maxItems: 32, items: { type: "string", minLength: 1, maxLength: 64 } },
  utm,
  forward_query: { type: "boolean", description: "append the request's query string to the target" },
  title: nullableString(512),
  notes: nullableString(4096),
  rules: {
    type: ["array", "null"],
    maxItems: 32,
    description:
      'ordered targeting rules, first match wins, else target. A rule: {name?, target, platform?: [android|ios|windows-phone|windows|macos|linux|chromeos|other|mobile|desktop], language?: [de, pt-br], country?: [DE], query?: {param: true|"value"}, after?, before?}; every condition given must hold',
    items: { type: "object" },
  },
  allowed_platforms: {
    type: ["array", "null"],
    maxItems: 16,
    items: { type: "string", maxLength: 32 },
    description: "when set, clicks from other platforms get 404 (or the domain's fallback)",
  },
  campaign_id: { type: ["integer", "null"], minimum: 1, description: "the campaign this link belongs to (shares its UTM parameters and stats)" },
} as const;

export const linkCreateBody = {
  type: "object",
  additionalProperties: false,
  required: ["domain", "target"],
  properties: linkProps,
} as const;

export const linkPatchBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: linkProps,
} as const;

export const linkSchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    domain: { type: "string" },
    slug: { type: "string" },
    short_url: { type: "string" },
    target: { type: "string" },
    redirect_status: { type: "integer" },
    expires_at: { type: ["string", "null"] },
    max_clicks: { type: ["integer", "null"] },
    tags: { type: "array", items: { type: "string" } },
    utm: { type: "object", additionalProperties: { type: "string" } },
    forward_query: { type: "boolean" },
    title: { type: ["string", "null"] },
    notes: { type: ["string", "null"] },
    clicks: { type: "integer" },
    rules: { type: "array", items: { type: "object", additionalProperties: true } },
    allowed_platforms: { type: ["array", "null"], items: { type: "string" } },
    campaign_id: { type: ["integer", "null"] },
    created_at: { type: "string" },
    updated_at: { type: "string" },
  },
} as const;

export const linkListQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    domain: { type: "string", maxLength: 253 },
    tag: { type: "string", maxLength: 64 },
    q: { type: "string", maxLength: 256, description: "text search in slug, target and title" },
    created_after: { type: "string" },
    created_before: { type: "string" },
    cursor: { type: "string", maxLength: 64 },
    limit: { type: "string", pattern: "^[0-9]{1,4}$", description: "1-1000, default 50" },
    campaign_id: { type: "string", pattern: "^[0-9]{1,15}$", description: "only the links of this campaign" },
    sort: {
      type: "string",
      enum: ["-created", "created", "slug", "-slug", "clicks", "-clicks"],
      description: "order (default -created: newest first)",
    },
  },
} as const;

export const bulkBody = {
  type: "object",
  additionalProperties: false,
  required: ["links"],
  properties: { links: { type: "array", minItems: 1, maxItems: 1000, items: { type: "object" } } },
} as const;
