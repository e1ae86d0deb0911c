/**
 * The dispatcher: turns committed events into deliveries. It reads the event log after a cursor kept in meta
 * (`webhook_cursor`), matches each event against the active subscriptions (cached; refreshed on change and every few
 * seconds) and inserts one delivery per (subscription, event), ON CONFLICT DO NOTHING. On PostgreSQL, where ids of
 * several writers can commit out of order, it also re-scans the last 2 minutes by `ts` (idempotent).
 */
import type { Store, StoredEvent } from "../store/port.js";
import { checkUrlSyntax } from "./guard.js";
import { eventBody, newMsgId, pyDumps, standardBody } from "./payload.js";
import type { Logger } from "./sender.js";
import type { NewDelivery, Webhook, WebhookFormat, WebhookStore } from "./store.js";

export const CURSOR_KEY = "webhook_cursor";

export interface DispatcherOptions {
  log?: Logger;
  /** how often the event log is read (default 1 s) */
  pollMs?: number;
  /** how often the subscriptions are re-read (default 5 s; this instance's own changes apply at once) */
  refreshMs?: number;
  /** re-scan the recent events by time (default: on PostgreSQL) */
  rescan?: boolean;
  rescanWindowMs?: number;
  rescanEveryMs?: number;
  /** events read per query */
  pageSize?: number;
  /** called after new deliveries were queued (the sender looks at once) */
  onEnqueued?: () => void;
  now?: () => number;
}

export interface DirectDelivery {
  projectId: number;
  /** the URL a tracking token carries */
  url: string;
  /** pytracking: the body object (sent as Python json.dumps); standard: the `data` of the envelope */
  payload: unknown;
  format: WebhookFormat;
  /** the envelope's type for the standard format (default `event.tracking`) */
  type?: string;
}

export function matches(w: Webhook, e: StoredEvent): boolean {
  // a subscription gets the events that happened after it was made, not the history before it
  return w.project_id === e.project_id && e.ts >= w.created_at && (w.events.includes("*") || w.events.includes(e.name));
}

export class WebhookDispatcher {
  private subs: Webhook[] | null = null;
  private subsAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private again = false;
  private stopped = false;
  private lastRescan = 0;
  /** the last event id seen while nobody listened (not stored after the first such tick; null: someone listens) */
  private skipTo: number | null = null;
  private readonly pollMs: number;
  private readonly refreshMs: number;
  private readonly rescan: boolean;
  private readonly rescanWindowMs: number;
  private readonly rescanEveryMs: number;
  private readonly pageSize: number;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly wstore: WebhookStore,
    private readonly opts: DispatcherOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 1000;
    this.refreshMs = opts.refreshMs ?? 5000;
    this.rescan = opts.rescan ?? store.engine === "postgres";
    this.rescanWindowMs = opts.rescanWindowMs ?? 120_000;
    this.rescanEveryMs = opts.rescanEveryMs ?? 15_000;
    this.pageSize = opts.pageSize ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Subscriptions changed: re-read them before the next match. */
  invalidate(): void {
    this.subs = null;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.tick()
      .catch((err) => {
        this.opts.log?.warn({ err }, "webhook dispatcher: the event log could not be read; retrying");
        return 0;
      })
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async subscriptions(): Promise<Webhook[]> {
    if (!this.subs || this.now() - this.subsAt > this.refreshMs) {
      this.subs = await this.wstore.activeWebhooks();
      this.subsAt = this.now();
    }
    return this.subs;
  }

  private deliveriesFor(events: StoredEvent[], subs: Webhook[]): NewDelivery[] {
    const out: NewDelivery[] = [];
    const now = this.now();
    for (const e of events)
      for (const w of subs) {
        if (!matches(w, e)) continue;
        out.push({
          project_id: e.project_id,
          webhook_id: w.id,
          url: w.url,
          event_id: e.id,
          event_type: `event.${e.name}`,
          msg_id: newMsgId(),
          payload: eventBody(e, w.format),
          next_attempt_at: now,
          created_at: now,
        });
      }
    return out;
  }

  /** Reads the event log past the cursor (and, on PostgreSQL, re-scans the recent past); returns how many deliveries were queued. */
  async tick(): Promise<number> {
    const subs = await this.subscriptions();
    if (subs.length === 0) {
      // nobody listens: skip ahead, so a first subscription does not start by reading the whole history. Once stored
      // (at the first tick), the position is kept in memory until someone listens: a write every second would wait for
      // SQLite's write lock, held by the event writer thread under load, with the HTTP thread asleep meanwhile
      const max = await this.wstore.maxEventId();
      if (this.skipTo === null) {
        const stored = await this.store.getMeta(CURSOR_KEY);
        if (stored === null || Number(stored) < max) await this.store.setMeta(CURSOR_KEY, String(max));
      }
      this.skipTo = max;
      return 0;
    }
    const stored = await this.store.getMeta(CURSOR_KEY);
    let cursor = stored === null ? Number(await this.store.setMetaIfAbsent(CURSOR_KEY, String(await this.wstore.maxEventId()))) : Number(stored);
    if (this.skipTo !== null) {
      // the first tick since someone listens: past what nobody listened to (their created_at rules out older events)
      if (this.skipTo > cursor) await this.store.setMeta(CURSOR_KEY, String((cursor = this.skipTo)));
      this.skipTo = null;
    }
    let queued = 0;
    for (let page = 0; page < 20 && !this.stopped; page++) {
      const events = await this.wstore.eventsAfter(cursor, this.pageSize);
      if (events.length === 0) break;
      queued += await this.wstore.insertDeliveries(this.deliveriesFor(events, subs));
      cursor = events[events.length - 1]!.id;
      await this.store.setMeta(CURSOR_KEY, String(cursor));
      if (events.length < this.pageSize) break;
    }
    if (this.rescan && this.now() - this.lastRescan >= this.rescanEveryMs) {
      this.lastRescan = this.now();
      queued += await this.rescanRecent(subs, cursor);
    }
    if (queued > 0) this.opts.onEnqueued?.();
    return queued;
  }

  /** Events of the last few minutes at or below the cursor: those whose id committed after a higher one was read. */
  private async rescanRecent(subs: Webhook[], cursor: number): Promise<number> {
    const projects = [...new Set(subs.map((w) => w.project_id))];
    const since = this.now() - this.rescanWindowMs;
    let after = 0;
    let queued = 0;
    for (let page = 0; page < 50 && !this.stopped; page++) {
      const events = await this.wstore.recentEvents(projects, since, after, cursor, this.pageSize);
      if (events.length === 0) break;
      queued += await this.wstore.insertDeliveries(this.deliveriesFor(events, subs));
      after = events[events.length - 1]!.id;
      if (events.length < this.pageSize) break;
    }
    return queued;
  }

  /** Queues a delivery to a URL a tracking token carries (no subscription, so unsigned). Throws UrlRefused on a bad URL. */
  async enqueueDirect(d: DirectDelivery): Promise<{ id: number | null; msg_id: string }> {
    checkUrlSyntax(d.url);
    const now = this.now();
    const msg_id = newMsgId();
    const type = d.format === "pytracking" ? "pytracking" : (d.type ?? "event.tracking");
    await this.wstore.insertDeliveries([
      {
        project_id: d.projectId,
        webhook_id: null,
        url: d.url,
        event_id: null,
        event_type: type,
        msg_id,
        payload: d.format === "pytracking" ? pyDumps(d.payload) : standardBody(type, now, d.payload),
        next_attempt_at: now,
        created_at: now,
      },
    ]);
    this.opts.onEnqueued?.();
    return { id: null, msg_id };
  }

  /** Queues a `webhook.test` message to one subscription. */
  async enqueueTest(w: Webhook): Promise<{ msg_id: string }> {
    const now = this.now();
    const msg_id = newMsgId();
    const data = { webhook_id: w.id, project_id: w.project_id, message: "a test message from Clicktrail" };
    await this.wstore.insertDeliveries([
      {
        project_id: w.project_id,
        webhook_id: w.id,
        url: w.url,
        event_id: null,
        event_type: "webhook.test",
        msg_id,
        payload: standardBody("webhook.test", now, data),
        next_attempt_at: now,
        created_at: now,
      },
    ]);
    this.opts.onEnqueued?.();
    return { msg_id };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
