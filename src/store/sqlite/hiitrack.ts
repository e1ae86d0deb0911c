import type Database from "better-sqlite3";
import { isUniqueViolation } from "./index.js";
import type { HiiTrackBucket, HiiTrackStore, HiiTrackUser } from "../../dialects/hiitrack-store.js";

/** The HiiTrack dialect's users and buckets on SQLite. */
export class SqliteHiiTrackStore implements HiiTrackStore {
  constructor(private readonly db: Database.Database) {}

  async createUser(name: string, hash: string): Promise<boolean> {
    try {
      this.db.prepare(`INSERT INTO hiitrack_users (name, hash, created_at) VALUES (?, ?, ?)`).run(name, hash, Date.now());
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async getUser(name: string): Promise<HiiTrackUser | null> {
    return (this.db.prepare(`SELECT name, hash, created_at FROM hiitrack_users WHERE name = ?`).get(name) as HiiTrackUser | undefined) ?? null;
  }

  async deleteUser(name: string): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM hiitrack_buckets WHERE user_name = ?`).run(name);
      this.db.prepare(`DELETE FROM hiitrack_users WHERE name = ?`).run(name);
    })();
  }

  async createBucket(b: Omit<HiiTrackBucket, "created_at">): Promise<boolean> {
    try {
      this.db
        .prepare(`INSERT INTO hiitrack_buckets (user_name, name, project_id, description, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(b.user_name, b.name, b.project_id, b.description, Date.now());
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async getBucket(user: string, name: string): Promise<HiiTrackBucket | null> {
    return (
      (this.db
        .prepare(`SELECT user_name, name, project_id, description, created_at FROM hiitrack_buckets WHERE user_name = ? AND name = ?`)
        .get(user, name) as HiiTrackBucket | undefined) ?? null
    );
  }

  async deleteBucket(user: string, name: string): Promise<boolean> {
    return this.db.prepare(`DELETE FROM hiitrack_buckets WHERE user_name = ? AND name = ?`).run(user, name).changes > 0;
  }
}
