import type pg from "pg";
import type { StoredEvent } from "../port.js";
import type { Row } from "../rows.js";
import { mapError, pgRows } from "./index.js";
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

const PATCHABLE = new Set(["url", "events", "secret", "format", "active", "description"]);

/**
 * The webhooks' tables on PostgreSQL, on the adapter's pool (whose type parsers read bigint as numbers). Several
 * instances share the queue: a claim takes rows FOR UPDATE SKIP LOCKED and leases them (locked_until), so each due
 * delivery goes to one sender, and one whose sender died is claimed again once its lease has run out.
 */
export class PgWebhookStore implements WebhookStore {
  constructor(private readonly pool: pg.Pool) {}

  private q<T = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    return pgRows<T>(this.pool, sql, params);
  }

  private async one<T = Row>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.q<T>(sql, params))[0];
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (e) {
      mapError(e);
    }
    try {
      await c.query("BEGIN");
      const r = await fn(c);
      await c.query("COMMIT");
      return r;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      mapError(e);
    } finally {
      c.release();
    }
  }

  async createWebhook(w: NewWebhook): Promise<Webhook> {
    const now = Date.now();
    return (await this.one<Webhook>(
      `INSERT INTO webhooks (project_id, url, events, secret, format, active, description, created_at, updated_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $8) RETURNING *`,
      [w.project_id, w.url, JSON.stringify(w.events), w.secret, w.format, w.active, w.description, now],
    ))!;
  }

  async getWebhook(projectId: number, id: number): Promise<Webhook | null> {
    return (await this.one<Webhook>(`SELECT * FROM webhooks WHERE project_id = $1 AND id = $2`, [projectId, id])) ?? null;
  }

  async listWebhooks(projectId: number): Promise<Webhook[]> {
    return this.q<Webhook>(`SELECT * FROM webhooks WHERE project_id = $1 ORDER BY id DESC`, [projectId]);
  }

  async activeWebhooks(): Promise<Webhook[]> {
    return this.q<Webhook>(`SELECT * FROM webhooks WHERE active ORDER BY id`);
  }

  async updateWebhook(projectId: number, id: number, patch: WebhookPatch): Promise<Webhook | null> {
    const vals: unknown[] = [projectId, id, Date.now()];
    const sets = ["updated_at = $3"];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || !PATCHABLE.has(k)) continue;
      vals.push(k === "events" ? JSON.stringify(v) : v);
      sets.push(`${k} = $${vals.length}${k === "events" ? "::jsonb" : ""}`);
    }
    return (await this.one<Webhook>(`UPDATE webhooks SET ${sets.join(", ")} WHERE project_id = $1 AND id = $2 RETURNING *`, vals)) ?? null;
  }

  async deleteWebhook(projectId: number, id: number): Promise<boolean> {
    return (await this.q(`DELETE FROM webhooks WHERE project_id = $1 AND id = $2 RETURNING id`, [projectId, id])).length > 0;
  }

  async eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    return this.q<StoredEvent>(`SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
  }

  async recentEvents(projectIds: number[], sinceTs: number, afterId: number, uptoId: number, limit: number): Promise<StoredEvent[]> {
    if (projectIds.length === 0) return [];
    return this.q<StoredEvent>(
      `SELECT * FROM events WHERE ts >= $1 AND project_id = ANY($2::bigint[]) AND id > $3 AND id <= $4 ORDER BY id LIMIT $5`,
      [sinceTs, projectIds, afterId, uptoId, limit],
    );
  }

  async maxEventId(): Promise<number> {
    return ((await this.one<{ m: number | null }>(`SELECT max(id) AS m FROM events`))?.m ?? 0) as number;
  }

  async insertDeliveries(ds: NewDelivery[]): Promise<number> {
    if (ds.length === 0) return 0;
    const col = <K extends keyof NewDelivery>(k: K) => ds.map((d) => d[k]);
    const rows = await this.q(
      `INSERT INTO webhook_deliveries (project_id, webhook_id, url, event_id, event_type, msg_id, payload, next_attempt_at, created_at)
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])
       ON CONFLICT DO NOTHING RETURNING id`,
      [
        col("project_id"),
        col("webhook_id"),
        col("url"),
        col("event_id"),
        col("event_type"),
        col("msg_id"),
        col("payload"),
        col("next_attempt_at"),
        col("created_at"),
      ],
    );
    return rows.length;
  }

  async claimDue(now: number, lockUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    return this.q<ClaimedDelivery>(
      `WITH due AS (
         SELECT id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until < $1)
         ORDER BY next_attempt_at LIMIT $3
         FOR UPDATE SKIP LOCKED
       )
       UPDATE webhook_deliveries d SET locked_until = $2 FROM due WHERE d.id = due.id
       RETURNING d.*, (SELECT w.secret FROM webhooks w WHERE w.id = d.webhook_id) AS secret,
         (SELECT w.url FROM webhooks w WHERE w.id = d.webhook_id) AS target_url`,
      [now, lockUntil, limit],
    );
  }

  async recordAttempt(r: AttemptRecord): Promise<void> {
    await this.tx(async (c) => {
      await c.query(`INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)`, [
        r.delivery_id,
        r.attempt,
        r.at,
        r.status_code,
        r.error,
        r.duration_ms,
      ]);
      await c.query(
        `UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = coalesce($3, next_attempt_at), locked_until = NULL,
           last_status = $4, last_error = $5, delivered_at = $6 WHERE id = $7`,
        [r.status, r.attempt, r.next_attempt_at, r.status_code, r.error, r.status === "delivered" ? r.at + r.duration_ms : null, r.delivery_id],
      );
    });
  }

  async getDelivery(id: number): Promise<Delivery | null> {
    return (await this.one<Delivery>(`SELECT * FROM webhook_deliveries WHERE id = $1`, [id])) ?? null;
  }

  async listDeliveries(projectId: number, webhookId: number, limit: number, beforeId?: number): Promise<DeliveryWithLog[]> {
    const rows = await this.q<Delivery>(
      `SELECT * FROM webhook_deliveries WHERE project_id = $1 AND webhook_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4`,
      [projectId, webhookId, beforeId ?? Number.MAX_SAFE_INTEGER, limit],
    );
    if (rows.length === 0) return [];
    const attempts = await this.q<DeliveryAttempt>(
      `SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_attempts WHERE delivery_id = ANY($1::bigint[])
       ORDER BY delivery_id, attempt, id`,
      [rows.map((r) => r.id)],
    );
    const byId = new Map<number, DeliveryAttempt[]>();
    for (const a of attempts) (byId.get(a.delivery_id) ?? byId.set(a.delivery_id, []).get(a.delivery_id)!).push(a);
    return rows.map((r) => ({ ...r, log: byId.get(r.id) ?? [] }));
  }

  async pruneDeliveries(before: number): Promise<number> {
    return (await this.q(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1 RETURNING id`, [before])).length;
  }
}
