import pg from "pg";
import { Redis } from "ioredis";

/**
 * How instances on one database tell each other "links, domains or keys changed: drop your caches". Over Redis
 * pub/sub when Redis is configured, otherwise over PostgreSQL LISTEN/NOTIFY. Reconnecting always counts as a change
 * (messages may have been missed meanwhile). While the channel is down:
 * - Redis: the database may still be changed by the other instances, so `changed()` keeps answering true (caches are
 *   dropped on every poll and reads go to the database) until Redis is back;
 * - LISTEN/NOTIFY: the listener is down because the database is unreachable from here, so nothing can be read anyway:
 *   caches are kept, cached links go on redirecting (their clicks spooled), and the reconnect drops them.
 */
export interface ChangeChannel {
  readonly kind: "redis" | "postgres";
  /** Tells every other instance that something changed. */
  publish(): Promise<void>;
  /** True when another instance published since the last call, or while the channel is down. */
  changed(): boolean;
  up(): boolean;
  close(): Promise<void>;
}

const PG_CHANNEL = "clicktrail_changes";
const REDIS_CHANNEL = "clicktrail:changes";

export class PgNotifyChannel implements ChangeChannel {
  readonly kind = "postgres" as const;
  private client: pg.Client | null = null;
  private dirty = true;
  private connected = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    private readonly instance: string,
  ) {
    void this.connect();
  }

  private async connect() {
    this.retry = null;
    if (this.closed) return;
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000 });
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      this.connected = false;
      if (this.client === c) this.client = null;
      c.end().catch(() => {});
      if (!this.closed && !this.retry) this.retry = setTimeout(() => void this.connect(), 500).unref();
    };
    c.on("error", onLost);
    c.on("end", onLost);
    c.on("notification", (n) => {
      if (n.payload !== this.instance) this.dirty = true;
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${PG_CHANNEL}`);
      if (this.closed) return void c.end().catch(() => {});
      this.client = c;
      this.connected = true;
      this.dirty = true;
    } catch {
      onLost();
    }
  }

  async publish() {
    await this.pool.query(`SELECT pg_notify($1, $2)`, [PG_CHANNEL, this.instance]);
  }

  changed() {
    const d = this.dirty;
    this.dirty = false;
    return d;
  }

  up() {
    return this.connected;
  }

  async close() {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    await this.client?.end().catch(() => {});
  }
}

export class RedisChannel implements ChangeChannel {
  readonly kind = "redis" as const;
  private readonly sub: Redis;
  private readonly pub: Redis;
  private dirty = true;
  private connected = false;

  constructor(
    url: string,
    private readonly instance: string,
  ) {
    const opts = {
      // fail fast while Redis is away (the mutation itself already committed) and keep reconnecting
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      retryStrategy: (n: number) => Math.min(100 * n, 2000),
    };
    this.sub = new Redis(url, opts);
    this.pub = new Redis(url, opts);
    this.sub.on("error", () => {});
    this.pub.on("error", () => {});
    this.sub.on("ready", () => {
      // ioredis subscribes again by itself after a reconnect; until then we may have missed messages
      this.sub.subscribe(REDIS_CHANNEL).then(
        () => ((this.connected = true), (this.dirty = true)),
        () => {},
      );
    });
    this.sub.on("close", () => ((this.connected = false), (this.dirty = true)));
    this.sub.on("message", (_ch: string, msg: string) => {
      if (msg !== this.instance) this.dirty = true;
    });
  }

  async publish() {
    await this.pub.publish(REDIS_CHANNEL, this.instance);
  }

  changed() {
    const d = this.dirty || !this.connected;
    this.dirty = false;
    return d;
  }

  up() {
    return this.connected;
  }

  async close() {
    this.sub.disconnect();
    this.pub.disconnect();
  }
}
