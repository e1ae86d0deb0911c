import { LRUCache } from "lru-cache";

/**
 * Failed-credential throttling: at most `max` failures per key (a client address) within `windowMs`; past that, every
 * attempt from the key is refused until the window ends, right or wrong (so guessing gains nothing by continuing).
 * In memory, per instance: with several instances an attacker gets `max` tries on each, which is still a handful.
 */
export class FailureThrottle {
  private readonly failures: LRUCache<string, { n: number; until: number }>;

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    size = 100_000,
  ) {
    this.failures = new LRUCache({ max: size });
  }

  /** Milliseconds the key must still wait, 0 when it may try. */
  wait(key: string, now = Date.now()): number {
    const f = this.failures.get(key);
    return f && f.until > now && f.n >= this.max ? f.until - now : 0;
  }

  fail(key: string, now = Date.now()): void {
    const f = this.failures.get(key);
    if (f && f.until > now) f.n++;
    else this.failures.set(key, { n: 1, until: now + this.windowMs });
  }

  reset(key: string): void {
    this.failures.delete(key);
  }
}
