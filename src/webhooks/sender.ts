/**
 * The sender: claims due deliveries from the queue, POSTs them (signed), and moves each on: 2xx delivered, anything
 * else retried with exponential back-off and jitter until 24 hours after the delivery was created, then failed.
 * At least once: a delivery whose sender died mid-attempt is claimed again when its lease runs out.
 */
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { parseAllowlist, vetUrl, webhookAllowFromEnv, type Allowlist, type Resolver, type VettedTarget } from "./guard.js";
import { webhookHeaders } from "./payload.js";
import type { ClaimedDelivery, DeliveryStatus, WebhookStore } from "./store.js";

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The default schedule: delays after the 1st, 2nd, … failed attempt; the last repeats. */
export const RETRY_SCHEDULE_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 3 * 3_600_000];
export const DEFAULT_MAX_AGE_MS = 24 * 3_600_000;
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface RetryPolicy {
  /** the first delay; the whole schedule scales with it (default 5000: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h …) */
  retryBaseMs: number;
  /** no attempt after created_at + this (default 24 h); the delivery is failed then */
  maxAgeMs: number;
  /** ± this fraction of each delay at random (default 0.2) */
  jitter: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retryBaseMs: RETRY_SCHEDULE_MS[0]!, maxAgeMs: DEFAULT_MAX_AGE_MS, jitter: 0.2 };

/** The delay after `failed` failed attempts (1-based), jittered with `random()` in [0, 1). */
export function backoffDelay(failed: number, policy: RetryPolicy = DEFAULT_RETRY, random: () => number = Math.random): number {
  const base = RETRY_SCHEDULE_MS[Math.min(Math.max(failed, 1), RETRY_SCHEDULE_MS.length) - 1]! * (policy.retryBaseMs / RETRY_SCHEDULE_MS[0]!);
  return Math.max(1, Math.round(base * (1 + policy.jitter * (2 * random() - 1))));
}

/**
 * After a failed attempt (the `failed`th) at `now`: when to try again, or null when the delivery has run out of time.
 * The last attempt happens at created_at + maxAgeMs at the latest.
 */
export function nextAttemptAt(
  failed: number,
  createdAt: number,
  now: number,
  policy: RetryPolicy = DEFAULT_RETRY,
  random: () => number = Math.random,
): number | null {
  const deadline = createdAt + policy.maxAgeMs;
  if (now >= deadline) return null;
  return Math.min(now + backoffDelay(failed, policy, random), deadline);
}

export interface PostResult {
  status: number;
  /** the start of the response body (for the delivery log) */
  body: string;
}

export type Transport = (target: VettedTarget, headers: Record<string, string>, body: string, timeoutMs: number) => Promise<PostResult>;

/** POSTs to the vetted address (no DNS lookup of its own), with Host and SNI of the URL's name; redirects are not followed. */
export const httpTransport: Transport = (target, headers, body, timeoutMs) =>
  new Promise((resolve, reject) => {
    const { url, hostname, address, family } = target;
    const lookupVetted = ((_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) => {
      if (opts?.all) cb(null, [{ address, family }]);
      else cb(null, address, family);
    }) as unknown as LookupFunction;
    const mod = url.protocol === "https:" ? https : http;
    const req = mod.request(
      {
        method: "POST",
        hostname,
        port: url.port || undefined,
        path: url.pathname + url.search,
        headers: { ...headers, host: url.host, "content-length": String(Buffer.byteLength(body)) },
        lookup: lookupVetted,
        ...(url.protocol === "https:" && !isIP(hostname) ? { servername: hostname } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          if (size < 1024) chunks.push(c);
          size += c.length;
        });
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8").slice(0, 512) });
        });
        res.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(body);
  });

export interface SenderOptions {
  log?: Logger;
  /** per attempt, connection to end of response (default 10 s) */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** how often the queue is polled for due deliveries (default 1 s) */
  pollMs?: number;
  /** deliveries claimed (and sent concurrently) at a time (default 16) */
  batch?: number;
  /** CLICKTRAIL_WEBHOOK_ALLOW-style allowlist (default: read from the environment) */
  allow?: string | Allowlist;
  /** finished deliveries are deleted after this long (default 30 days; 0 keeps them) */
  keepMs?: number;
  now?: () => number;
  random?: () => number;
  transport?: Transport;
  resolve?: Resolver;
}

const USER_AGENT = "Clicktrail-Webhooks/1";

export class WebhookSender {
  readonly timeoutMs: number;
  readonly policy: RetryPolicy;
  private readonly pollMs: number;
  private readonly batch: number;
  private readonly allow: Allowlist;
  private readonly keepMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly transport: Transport;
  private readonly resolve?: Resolver;
  private readonly log?: Logger;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private again = false;
  private stopped = false;
  private lastPrune = 0;

  constructor(
    private readonly store: WebhookStore,
    opts: SenderOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.policy = { ...DEFAULT_RETRY, ...opts.retry };
    this.pollMs = opts.pollMs ?? 1000;
    this.batch = opts.batch ?? 16;
    this.allow = typeof opts.allow === "object" ? opts.allow : parseAllowlist(opts.allow ?? webhookAllowFromEnv());
    this.keepMs = opts.keepMs ?? 30 * 86_400_000;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.transport = opts.transport ?? httpTransport;
    this.resolve = opts.resolve;
    this.log = opts.log;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Looks at the queue now (the dispatcher calls this after enqueuing). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err) => {
        this.log?.warn({ err }, "webhook sender: the queue could not be read; retrying");
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

  private async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.runOnce();
      total += n;
      if (n < this.batch || this.stopped) break;
    }
    if (this.keepMs > 0 && this.now() - this.lastPrune > 3_600_000) {
      this.lastPrune = this.now();
      await this.store.pruneDeliveries(this.now() - this.keepMs);
    }
    return total;
  }

  /** Claims one batch of due deliveries and attempts each once; returns how many were attempted. */
  async runOnce(): Promise<number> {
    const now = this.now();
    // the lease outlasts an attempt (DNS, connect, timeout) by a margin; a sender that died leaves it to run out
    const claimed = await this.store.claimDue(now, now + this.timeoutMs + 30_000, this.batch);
    await Promise.all(claimed.map((d) => this.attempt(d)));
    return claimed.length;
  }

  private async attempt(d: ClaimedDelivery): Promise<void> {
    const at = this.now();
    const started = performance.now();
    const attempt = d.attempts + 1;
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const target = await vetUrl(d.target_url ?? d.url, this.allow, this.resolve);
      const headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        ...webhookHeaders(d.secret, d.msg_id, d.payload, this.now()),
      };
      const r = await this.transport(target, headers, d.payload, this.timeoutMs);
      statusCode = r.status;
      if (r.status < 200 || r.status > 299) error = `HTTP ${r.status}${r.body ? `: ${r.body.slice(0, 200)}` : ""}`;
    } catch (e) {
      error = (e as Error).message || String(e);
    }
    const duration = Math.round(performance.now() - started);
    let status: DeliveryStatus = "delivered";
    let next: number | null = null;
    if (error !== null) {
      next = nextAttemptAt(attempt, d.created_at, this.now(), this.policy, this.random);
      status = next === null ? "failed" : "pending";
    }
    try {
      await this.store.recordAttempt({
        delivery_id: d.id,
        attempt,
        at,
        status_code: statusCode,
        error,
        duration_ms: duration,
        status,
        next_attempt_at: next,
      });
    } catch (err) {
      // the lease runs out and the delivery is attempted again (at least once)
      this.log?.error({ err, delivery: d.id }, "webhook sender: an attempt could not be recorded");
      return;
    }
    if (status === "failed") this.log?.warn({ delivery: d.id, url: d.url, attempts: attempt, error }, "webhook delivery failed for good");
  }

  /** Stops polling and waits for the attempts in flight (each ends within the timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
