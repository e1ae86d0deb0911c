/**
 * Webhook subscriptions (per project: URL, event filter, secret, format) and the running parts: the dispatcher
 * (events → deliveries) and the sender (deliveries → HTTP). startWebhooks() builds and starts them.
 */
import { badRequest, notFound } from "../errors.js";
import type { Store } from "../store/port.js";
import { iso } from "../util/time.js";
import { WebhookDispatcher, type DispatcherOptions } from "./dispatcher.js";
import { parseAllowlist, UrlRefused, vetUrl, webhookAllowFromEnv, type Allowlist, type Resolver } from "./guard.js";
import { newSecret } from "./payload.js";
import { WebhookSender, type Logger, type SenderOptions } from "./sender.js";
import {
  WEBHOOK_FORMATS,
  webhookStoreFor,
  type Delivery,
  type DeliveryWithLog,
  type Webhook,
  type WebhookFormat,
  type WebhookStore,
} from "./store.js";

export interface WebhookInput {
  url?: string;
  events?: string[];
  format?: WebhookFormat;
  active?: boolean;
  description?: string | null;
}

const EVENT_NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export function publicWebhook(w: Webhook, withSecret = false) {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    format: w.format,
    active: w.active,
    description: w.description,
    ...(withSecret ? { secret: w.secret } : {}),
    created_at: iso(w.created_at),
    updated_at: iso(w.updated_at),
  };
}

const isoOrNull = (v: number | null) => (v === null ? null : iso(v));

export function publicDelivery(d: Delivery | DeliveryWithLog) {
  return {
    id: d.id,
    msg_id: d.msg_id,
    type: d.event_type,
    event_id: d.event_id,
    status: d.status,
    attempts: d.attempts,
    last_status: d.last_status,
    last_error: d.last_error,
    next_attempt_at: d.status === "pending" ? iso(d.next_attempt_at) : null,
    created_at: iso(d.created_at),
    delivered_at: isoOrNull(d.delivered_at),
    attempt_log:
      "log" in d
        ? d.log.map((a) => ({ attempt: a.attempt, at: iso(a.at), status_code: a.status_code, error: a.error, duration_ms: a.duration_ms }))
        : [],
  };
}

function events(v: string[]): string[] {
  if (!Array.isArray(v) || v.length === 0) throw badRequest('events must list at least one event name, or be ["*"]', { field: "events" });
  const out = [...new Set(v.map((e) => String(e).trim()))];
  if (out.includes("*")) return ["*"];
  for (const e of out)
    if (!EVENT_NAME_RE.test(e))
      throw badRequest(`events: ${JSON.stringify(e)} is not an event name (1-64 of A-Z a-z 0-9 _ . : -)`, { field: "events" });
  return out;
}

function format(v: string): WebhookFormat {
  if (!(WEBHOOK_FORMATS as readonly string[]).includes(v))
    throw badRequest(`format must be one of ${WEBHOOK_FORMATS.join(", ")}`, { field: "format" });
  return v as WebhookFormat;
}

export class WebhookService {
  constructor(
    private readonly store: WebhookStore,
    private readonly dispatcher: WebhookDispatcher,
    private readonly allow: Allowlist,
    private readonly resolve?: Resolver,
  ) {}

  /** Checks a subscription's URL: http(s), and its host resolves to allowed addresses only (400 naming `url`). */
  async checkUrl(url: string): Promise<string> {
    if (typeof url !== "string" || url.length > 2048) throw badRequest("url must be a string of at most 2048 characters", { field: "url" });
    try {
      return (await vetUrl(url.trim(), this.allow, this.resolve)).url.toString();
    } catch (e) {
      if (e instanceof UrlRefused) throw badRequest(e.message, { field: "url" });
      throw e;
    }
  }

  async create(projectId: number, input: WebhookInput): Promise<Webhook> {
    if (input.url === undefined) throw badRequest("url is required", { field: "url" });
    const w = await this.store.createWebhook({
      project_id: projectId,
      url: await this.checkUrl(input.url),
      events: events(input.events ?? ["*"]),
      secret: newSecret(),
      format: format(input.format ?? "standard"),
      active: input.active ?? true,
      description: input.description ?? null,
    });
    this.dispatcher.invalidate();
    return w;
  }

  async get(projectId: number, id: number): Promise<Webhook> {
    const w = await this.store.getWebhook(projectId, id);
    if (!w) throw notFound(`webhook ${id}`);
    return w;
  }

  list(projectId: number): Promise<Webhook[]> {
    return this.store.listWebhooks(projectId);
  }

  async update(projectId: number, id: number, input: WebhookInput): Promise<Webhook> {
    await this.get(projectId, id);
    const w = await this.store.updateWebhook(projectId, id, {
      url: input.url === undefined ? undefined : await this.checkUrl(input.url),
      events: input.events === undefined ? undefined : events(input.events),
      format: input.format === undefined ? undefined : format(input.format),
      active: input.active,
      description: input.description,
    });
    if (!w) throw notFound(`webhook ${id}`);
    this.dispatcher.invalidate();
    return w;
  }

  async rotateSecret(projectId: number, id: number): Promise<Webhook> {
    const w = await this.store.updateWebhook(projectId, id, { secret: newSecret() });
    if (!w) throw notFound(`webhook ${id}`);
    return w;
  }

  async delete(projectId: number, id: number): Promise<void> {
    if (!(await this.store.deleteWebhook(projectId, id))) throw notFound(`webhook ${id}`);
    this.dispatcher.invalidate();
  }

  async deliveries(projectId: number, id: number, limit: number, beforeId?: number): Promise<DeliveryWithLog[]> {
    await this.get(projectId, id);
    return this.store.listDeliveries(projectId, id, limit, beforeId);
  }

  async test(projectId: number, id: number): Promise<{ msg_id: string }> {
    return this.dispatcher.enqueueTest(await this.get(projectId, id));
  }
}

export interface WebhookOptions {
  /** CLICKTRAIL_WEBHOOK_ALLOW-style allowlist (default: from the environment) */
  allow?: string;
  /** first retry delay; the schedule scales with it (default 5000, or CLICKTRAIL_WEBHOOK_RETRY_BASE_MS) */
  retryBaseMs?: number;
  /** give up this long after a delivery was created (default 24 h, or CLICKTRAIL_WEBHOOK_MAX_AGE_MS) */
  maxAgeMs?: number;
  /** per attempt (default 10 s, or CLICKTRAIL_WEBHOOK_TIMEOUT_MS) */
  timeoutMs?: number;
  /** queue and event-log polling (default 1 s, or CLICKTRAIL_WEBHOOK_POLL_MS) */
  pollMs?: number;
  sender?: Partial<SenderOptions>;
  dispatcher?: Partial<DispatcherOptions>;
  resolve?: Resolver;
  /** build without starting the intervals (tests drive tick()/runOnce()) */
  manual?: boolean;
}

function envMs(name: string, env: NodeJS.ProcessEnv): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of milliseconds, not ${JSON.stringify(v)}`);
  return n;
}

/** The webhook settings from the environment (to move into config.ts). */
export function webhookOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): WebhookOptions {
  return {
    allow: webhookAllowFromEnv(env),
    retryBaseMs: envMs("CLICKTRAIL_WEBHOOK_RETRY_BASE_MS", env),
    maxAgeMs: envMs("CLICKTRAIL_WEBHOOK_MAX_AGE_MS", env),
    timeoutMs: envMs("CLICKTRAIL_WEBHOOK_TIMEOUT_MS", env),
    pollMs: envMs("CLICKTRAIL_WEBHOOK_POLL_MS", env),
  };
}

export interface Webhooks {
  service: WebhookService;
  dispatcher: WebhookDispatcher;
  sender: WebhookSender;
  store: WebhookStore;
  /** Stops both loops and waits for the attempts in flight; call before the store is closed. */
  stop(): Promise<void>;
}

/** Builds and starts the webhooks on an opened, migrated store. Options not given come from CLICKTRAIL_WEBHOOK_* variables. */
export function startWebhooks(store: Store, log?: Logger, opts: WebhookOptions = {}): Webhooks {
  const o = { ...webhookOptionsFromEnv(), ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as WebhookOptions;
  const allow = parseAllowlist(o.allow ?? "");
  const wstore = webhookStoreFor(store);
  const sender = new WebhookSender(wstore, {
    log,
    allow,
    timeoutMs: o.timeoutMs,
    pollMs: o.pollMs,
    resolve: o.resolve,
    retry: { ...(o.retryBaseMs ? { retryBaseMs: o.retryBaseMs } : {}), ...(o.maxAgeMs ? { maxAgeMs: o.maxAgeMs } : {}) },
    ...o.sender,
  });
  const dispatcher = new WebhookDispatcher(store, wstore, { log, pollMs: o.pollMs, onEnqueued: () => sender.kick(), ...o.dispatcher });
  const service = new WebhookService(wstore, dispatcher, allow, o.resolve);
  if (!o.manual) {
    dispatcher.start();
    sender.start();
  }
  let stopping: Promise<void> | null = null;
  return {
    service,
    dispatcher,
    sender,
    store: wstore,
    stop: () => (stopping ??= Promise.all([dispatcher.stop(), sender.stop()]).then(() => {})),
  };
}
