/** What a webhook sends: Standard Webhooks signatures and secrets, and the two body formats. */
import { createHmac, randomBytes } from "node:crypto";
import { exportRecord } from "../events/export.js";
import { pyJsonDumps } from "../tracking/pyjson.js";
import type { StoredEvent } from "../store/port.js";
import type { WebhookFormat } from "./store.js";

/** A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes. */
export function newSecret(): string {
  return "whsec_" + randomBytes(24).toString("base64");
}

/** A message id (`webhook-id`): unique per message, the same on every attempt of it. */
export function newMsgId(): string {
  return "msg_" + randomBytes(16).toString("base64url");
}

/** The secret's key bytes: the base64 after `whsec_`. */
export function secretBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
}

/** `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)), per the Standard Webhooks specification. */
export function sign(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secretBytes(secret)).update(`${msgId}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The Standard Webhooks headers of one attempt (no signature without a secret: a URL carried by a tracking token). */
export function webhookHeaders(secret: string | null, msgId: string, body: string, nowMs: number): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  const h: Record<string, string> = { "webhook-id": msgId, "webhook-timestamp": String(ts) };
  if (secret) h["webhook-signature"] = sign(secret, msgId, ts, body);
  return h;
}

/** Python `json.dumps` with its defaults (", " and ": " separators, non-ASCII as \uXXXX), as pytracking sends it. */
export function pyDumps(value: unknown): string {
  return pyJsonDumps(value);
}

/** The Standard Webhooks-style envelope of an event: `{type, timestamp, data}`. */
export function standardBody(type: string, timestampMs: number, data: unknown): string {
  return JSON.stringify({ type, timestamp: new Date(timestampMs).toISOString(), data });
}

/**
 * pytracking's webhook body for an event, key order as pytracking sends it: is_open_tracking, is_click_tracking,
 * metadata, request_data, timestamp, then tracked_url only if truthy. The metadata is the event's `data.metadata`
 * when the event has one (tracking events), else its whole `data`; tracked_url is `data.tracked_url` (or `data.url`).
 */
export function pytrackingRecord(e: StoredEvent): Record<string, unknown> {
  let data: Record<string, unknown> = {};
  try {
    const parsed = e.data ? (JSON.parse(e.data) as unknown) : null;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) data = parsed as Record<string, unknown>;
  } catch {
    /* not JSON: no metadata */
  }
  const meta = data.metadata && typeof data.metadata === "object" ? data.metadata : data;
  const body: Record<string, unknown> = {
    is_open_tracking: e.name === "open",
    is_click_tracking: e.name === "click",
    metadata: meta,
    request_data: { user_agent: e.ua, user_ip: e.ip },
    timestamp: Math.floor(e.ts / 1000),
  };
  const tracked = data.tracked_url ?? data.url;
  if (tracked) body.tracked_url = tracked;
  return body;
}

/** The body of an event's delivery in a subscription's format. */
export function eventBody(e: StoredEvent, format: WebhookFormat): string {
  if (format === "pytracking") return pyDumps(pytrackingRecord(e));
  return standardBody(`event.${e.name}`, e.ts, exportRecord(e));
}
