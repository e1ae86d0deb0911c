/**
 * The webhooks' storage port: subscriptions, the durable delivery queue and its attempt log. One implementation per
 * engine lives beside the engine's adapter (store/sqlite/webhooks.ts, store/postgres/webhooks.ts), built on the
 * adapter's own connection, so the big Store interface stays as it is. Times are UTC epoch milliseconds.
 */
import type { Store, StoredEvent } from "../store/port.js";
import { SqliteWebhookStore } from "../store/sqlite/webhooks.js";
import { PgWebhookStore } from "../store/postgres/webhooks.js";
import type { SqliteStore } from "../store/sqlite/index.js";
import type { PgStore } from "../store/postgres/index.js";

export const WEBHOOK_FORMATS = ["standard", "pytracking"] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export interface Webhook {
  id: number;
  project_id: number;
  url: string;
  /** event names delivered, or ["*"] for every event */
  events: string[];
  /** Standard Webhooks secret: `whsec_` + base64 of random bytes */
  secret: string;
  format: WebhookFormat;
  active: boolean;
  description: string | null;
  created_at: number;
  updated_at: number;
}

export type NewWebhook = Omit<Webhook, "id" | "created_at" | "updated_at">;
export type WebhookPatch = Partial<Pick<Webhook, "url" | "events" | "secret" | "format" | "active" | "description">>;

export type DeliveryStatus = "pending" | "delivered" | "failed";

export interface NewDelivery {
  project_id: number;
  /** null: a delivery to a URL carried by a tracking token */
  webhook_id: number | null;
  url: string;
  event_id: number | null;
  /** the message type (`event.click`, `webhook.test`, …) */
  event_type: string;
  /** the Standard Webhooks message id (`webhook-id`), the same on every attempt */
  msg_id: string;
  /** the exact body sent on every attempt */
  payload: string;
  next_attempt_at: number;
  created_at: number;
}

export interface Delivery extends NewDelivery {
  id: number;
  status: DeliveryStatus;
  attempts: number;
  locked_until: number | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

/** A delivery claimed by a sender, with the secret of its subscription (null: unsigned). */
export interface ClaimedDelivery extends Delivery {
  secret: string | null;
  /** the subscription's current URL (a fixed URL applies to the retries of earlier deliveries too); null: use `url` */
  target_url: string | null;
}

export interface DeliveryAttempt {
  delivery_id: number;
  attempt: number;
  at: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

/** The outcome of one attempt: logged, and the delivery moved on (delivered, retried at a time, or given up). */
export interface AttemptRecord extends DeliveryAttempt {
  status: DeliveryStatus;
  /** when status is pending: the next attempt */
  next_attempt_at: number | null;
}

export interface DeliveryWithLog extends Delivery {
  log: DeliveryAttempt[];
}

export interface WebhookStore {
  createWebhook(w: NewWebhook): Promise<Webhook>;
  getWebhook(projectId: number, id: number): Promise<Webhook | null>;
  /** the project's subscriptions, newest first */
  listWebhooks(projectId: number): Promise<Webhook[]>;
  /** every active subscription of every project (the dispatcher's cache) */
  activeWebhooks(): Promise<Webhook[]>;
  updateWebhook(projectId: number, id: number, patch: WebhookPatch): Promise<Webhook | null>;
  deleteWebhook(projectId: number, id: number): Promise<boolean>;

  /** events of every project with an id above `afterId`, in id order */
  eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]>;
  /** events of the given projects with ts >= sinceTs and afterId < id <= uptoId, in id order (the re-scan) */
  recentEvents(projectIds: number[], sinceTs: number, afterId: number, uptoId: number, limit: number): Promise<StoredEvent[]>;
  /** the highest event id (0 when the log is empty) */
  maxEventId(): Promise<number>;

  /** Inserts deliveries, skipping any that exist already (same webhook and event, or msg id); returns how many were new. */
  insertDeliveries(ds: NewDelivery[]): Promise<number>;
  /**
   * Claims up to `limit` pending deliveries due at `now` and not locked by another sender, locking them until
   * `lockUntil` (PostgreSQL: FOR UPDATE SKIP LOCKED, so several instances never claim the same one).
   */
  claimDue(now: number, lockUntil: number, limit: number): Promise<ClaimedDelivery[]>;
  /** Logs an attempt and moves its delivery on, releasing the lock, in one transaction. */
  recordAttempt(r: AttemptRecord): Promise<void>;
  getDelivery(id: number): Promise<Delivery | null>;
  /** a subscription's deliveries, newest first, each with its attempts */
  listDeliveries(projectId: number, webhookId: number, limit: number, beforeId?: number): Promise<DeliveryWithLog[]>;
  /** Deletes finished (delivered or failed) deliveries created before `before`; returns how many. */
  pruneDeliveries(before: number): Promise<number>;
}

export function webhookStoreFor(store: Store): WebhookStore {
  if (store.engine === "sqlite") return new SqliteWebhookStore((store as SqliteStore).db);
  if (store.engine === "postgres") return new PgWebhookStore((store as PgStore).pool);
  throw new Error(`webhooks: unsupported store engine ${(store as Store).engine}`);
}
