import type pg from "pg";
import { UniqueViolation } from "../port.js";
import type { Row } from "../rows.js";
import { pgRows } from "./index.js";
import type { HiiTrackBucket, HiiTrackStore, HiiTrackUser } from "../../dialects/hiitrack-store.js";

/** The HiiTrack dialect's users and buckets on PostgreSQL, on the adapter's pool (bigint read as numbers). */
export class PgHiiTrackStore implements HiiTrackStore {
  constructor(private readonly pool: pg.Pool) {}

  private q<T = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    return pgRows<T>(this.pool, sql, params);
  }

  /** An insert that answers false instead of throwing when the key is taken. */
  private async insert(sql: string, params: unknown[]): Promise<boolean> {
    try {
      await this.q(sql, params);
      return true;
    } catch (e) {
      if (e instanceof UniqueViolation) return false;
      throw e;
    }
  }

  createUser(name: string, hash: string): Promise<boolean> {
    return this.insert(`INSERT INTO hiitrack_users (name, hash, created_at) VALUES ($1, $2, $3)`, [name, hash, Date.now()]);
  }

  async getUser(name: string): Promise<HiiTrackUser | null> {
    return (await this.q<HiiTrackUser>(`SELECT name, hash, created_at FROM hiitrack_users WHERE name = $1`, [name]))[0] ?? null;
  }

  async deleteUser(name: string): Promise<void> {
    // one statement, so the user and its buckets go together
    await this.q(`WITH b AS (DELETE FROM hiitrack_buckets WHERE user_name = $1) DELETE FROM hiitrack_users WHERE name = $1`, [name]);
  }

  createBucket(b: Omit<HiiTrackBucket, "created_at">): Promise<boolean> {
    return this.insert(`INSERT INTO hiitrack_buckets (user_name, name, project_id, description, created_at) VALUES ($1, $2, $3, $4, $5)`, [
      b.user_name,
      b.name,
      b.project_id,
      b.description,
      Date.now(),
    ]);
  }

  async getBucket(user: string, name: string): Promise<HiiTrackBucket | null> {
    return (
      (
        await this.q<HiiTrackBucket>(
          `SELECT user_name, name, project_id, description, created_at FROM hiitrack_buckets WHERE user_name = $1 AND name = $2`,
          [user, name],
        )
      )[0] ?? null
    );
  }

  async deleteBucket(user: string, name: string): Promise<boolean> {
    return (await this.q(`DELETE FROM hiitrack_buckets WHERE user_name = $1 AND name = $2 RETURNING name`, [user, name])).length > 0;
  }
}
