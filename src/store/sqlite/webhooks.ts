import type Database from "better-sqlite3";
import type { StoredEvent } from "../port.js";
import { rethrow } from "./index.js";
import { writeTx } from "./lock.js";
import type { Row } from "../rows.js";
import type {
  AttemptRecord,
  ClaimedDelivery,
  Delivery,
  DeliveryAttempt,
  DeliveryWithLog,
  NewDelivery,
  NewWebhook,
  Webhook,
  WebhookPatch,
  WebhookStore,
} from "../../webhooks/store.js";

function toWebhook(r: Row | undefined): Webhook | null {
  if (!r) return null;
  return { ...(r as unknown as Webhook), events: JSON.parse(r.events as string) as string[], active: r.active === 1 };
}

function toEvent(r: Row): StoredEvent {
  return { ...(r as unknown as StoredEvent), is_bot: r.is_bot === 1 };
}

/** whether any delivery is due (the claim's condition, on the partial index webhook_deliveries_due) */
const DUE_ONE = `SELECT 1 FROM webhook_deliveries
  WHERE status = 'pending' AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until < ?) LIMIT 1`;

/**
 * The webhooks' tables on SQLite: one process owns the database, so a claim is one transaction; its writes wait for the
 * write lock without blocking the event loop (writeTx: the event writer thread holds it most of the time under load).
 */
export class SqliteWebhookStore implements WebhookStore {
  constructor(private readonly db: Database.Database) {}

  async createWebhook(w: NewWebhook): Promise<Webhook> {
    const now = Date.now();
    try {
      const r = this.db
        .prepare(
          `INSERT INTO webhooks (project_id, url, events, secret, format, active, description, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(w.project_id, w.url, JSON.stringify(w.events), w.secret, w.format, w.active ? 1 : 0, w.description, now, now);
      return (await this.getWebhook(w.project_id, Number(r.lastInsertRowid)))!;
    } catch (e) {
      rethrow(e);
    }
  }

  async getWebhook(projectId: number, id: number): Promise<Webhook | null> {
    return toWebhook(this.db.prepare(`SELECT * FROM webhooks WHERE project_id = ? AND id = ?`).get(projectId, id) as Row | undefined);
  }

  async listWebhooks(projectId: number): Promise<Webhook[]> {
    return (this.db.prepare(`SELECT * FROM webhooks WHERE project_id = ? ORDER BY id DESC`).all(projectId) as Row[]).map((r) => toWebhook(r)!);
  }

  async activeWebhooks(): Promise<Webhook[]> {
    return (this.db.prepare(`SELECT * FROM webhooks WHERE active = 1 ORDER BY id`).all() as Row[]).map((r) => toWebhook(r)!);
  }

  async updateWebhook(projectId: number, id: number, patch: WebhookPatch): Promise<Webhook | null> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      sets.push(`${k} = ?`);
      vals.push(k === "events" ? JSON.stringify(v) : k === "active" ? (v ? 1 : 0) : v);
    }
    sets.push("updated_at = ?");
    vals.push(Date.now());
    const r = this.db.prepare(`UPDATE webhooks SET ${sets.join(", ")} WHERE project_id = ? AND id = ?`).run(...vals, projectId, id);
    return r.changes ? this.getWebhook(projectId, id) : null;
  }

  async deleteWebhook(projectId: number, id: number): Promise<boolean> {
    return this.db.prepare(`DELETE FROM webhooks WHERE project_id = ? AND id = ?`).run(projectId, id).changes > 0;
  }

  async eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    return (this.db.prepare(`SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?`).all(afterId, limit) as Row[]).map(toEvent);
  }

  async recentEvents(projectIds: number[], sinceTs: number, afterId: number, uptoId: number, limit: number): Promise<StoredEvent[]> {
    if (projectIds.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT * FROM events WHERE id > ? AND id <= ? AND ts >= ? AND project_id IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`)
      .all(afterId, uptoId, sinceTs, JSON.stringify(projectIds), limit) as Row[];
    return rows.map(toEvent);
  }

  async maxEventId(): Promise<number> {
    return ((this.db.prepare(`SELECT max(id) AS m FROM events`).get() as { m: number | null }).m ?? 0) as number;
  }

  async insertDeliveries(ds: NewDelivery[]): Promise<number> {
    if (ds.length === 0) return 0;
    const ins = this.db.prepare(
      `INSERT INTO webhook_deliveries (project_id, webhook_id, url, event_id, event_type, msg_id, payload, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    return writeTx(this.db, () => {
      let n = 0;
      for (const d of ds)
        n += ins.run(d.project_id, d.webhook_id, d.url, d.event_id, d.event_type, d.msg_id, d.payload, d.next_attempt_at, d.created_at).changes;
      return n;
    });
  }

  async claimDue(now: number, lockUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    // nothing due (nearly always): a read, which never waits; a claim waits for the write lock (see writeTx)
    if (this.db.prepare(DUE_ONE).get(now, now) === undefined) return [];
    return writeTx(this.db, () => {
      const rows = this.db
        .prepare(
          `SELECT d.*, w.secret AS secret, w.url AS target_url FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id
           WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND (d.locked_until IS NULL OR d.locked_until < ?)
           ORDER BY d.next_attempt_at LIMIT ?`,
        )
        .all(now, now, limit) as ClaimedDelivery[];
      const lock = this.db.prepare(`UPDATE webhook_deliveries SET locked_until = ? WHERE id = ?`);
      for (const r of rows) {
        lock.run(lockUntil, r.id);
        r.locked_until = lockUntil;
      }
      return rows;
    });
  }

  async recordAttempt(r: AttemptRecord): Promise<void> {
    await writeTx(this.db, () => {
      this.db
        .prepare(`INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(r.delivery_id, r.attempt, r.at, r.status_code, r.error, r.duration_ms);
      this.db
        .prepare(
          `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = coalesce(?, next_attempt_at), locked_until = NULL,
             last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?`,
        )
        .run(r.status, r.attempt, r.next_attempt_at, r.status_code, r.error, r.status === "delivered" ? r.at + r.duration_ms : null, r.delivery_id);
    });
  }

  async getDelivery(id: number): Promise<Delivery | null> {
    return (this.db.prepare(`SELECT * FROM webhook_deliveries WHERE id = ?`).get(id) as Delivery | undefined) ?? null;
  }

  async listDeliveries(projectId: number, webhookId: number, limit: number, beforeId?: number): Promise<DeliveryWithLog[]> {
    const rows = this.db
      .prepare(`SELECT * FROM webhook_deliveries WHERE project_id = ? AND webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?`)
      .all(projectId, webhookId, beforeId ?? Number.MAX_SAFE_INTEGER, limit) as Delivery[];
    if (rows.length === 0) return [];
    const attempts = this.db
      .prepare(
        `SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_attempts
         WHERE delivery_id IN (SELECT value FROM json_each(?)) ORDER BY delivery_id, attempt, id`,
      )
      .all(JSON.stringify(rows.map((r) => r.id))) as DeliveryAttempt[];
    const byId = new Map<number, DeliveryAttempt[]>();
    for (const a of attempts) (byId.get(a.delivery_id) ?? byId.set(a.delivery_id, []).get(a.delivery_id)!).push(a);
    return rows.map((r) => ({ ...r, log: byId.get(r.id) ?? [] }));
  }

  async pruneDeliveries(before: number): Promise<number> {
    const prune = this.db.prepare(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?`);
    return writeTx(this.db, () => prune.run(before).changes);
  }
}
