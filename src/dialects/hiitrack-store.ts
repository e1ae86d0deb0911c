/**
 * The HiiTrack dialect's accounts: users (the hex SHA-1 of "user:password", as HiiTrack stored it) and their buckets,
 * each a Clicktrail project. One implementation per engine beside the engine's adapter (store/sqlite/hiitrack.ts,
 * store/postgres/hiitrack.ts), like the webhooks' store. Times are UTC epoch milliseconds.
 */
import type { Store } from "../store/port.js";
import type { SqliteStore } from "../store/sqlite/index.js";
import type { PgStore } from "../store/postgres/index.js";
import { SqliteHiiTrackStore } from "../store/sqlite/hiitrack.js";
import { PgHiiTrackStore } from "../store/postgres/hiitrack.js";

export interface HiiTrackUser {
  name: string;
  /** hex SHA-1 of "user:password" */
  hash: string;
  created_at: number;
}

export interface HiiTrackBucket {
  user_name: string;
  name: string;
  project_id: number;
  description: string | null;
  created_at: number;
}

export interface HiiTrackStore {
  /** false when the name is taken */
  createUser(name: string, hash: string): Promise<boolean>;
  getUser(name: string): Promise<HiiTrackUser | null>;
  /** Deletes the user and its buckets (their projects and events stay). */
  deleteUser(name: string): Promise<void>;
  /** false when the user has a bucket of that name already */
  createBucket(b: Omit<HiiTrackBucket, "created_at">): Promise<boolean>;
  getBucket(user: string, name: string): Promise<HiiTrackBucket | null>;
  deleteBucket(user: string, name: string): Promise<boolean>;
}

export function hiitrackStoreFor(store: Store): HiiTrackStore {
  if (store.engine === "sqlite") return new SqliteHiiTrackStore((store as SqliteStore).db);
  if (store.engine === "postgres") return new PgHiiTrackStore((store as PgStore).pool);
  throw new Error(`hiitrack: unsupported store engine ${(store as Store).engine}`);
}
