import { randomBytes } from "node:crypto";
import type { Store } from "../store/port.js";
import { DAY, floorDay } from "../util/time.js";

/**
 * Daily salts for cookieless visitor ids. Stored in the database so that every instance (and a restarted one) hashes
 * a visitor the same way on the same UTC day; yesterday's salt cannot be recomputed, so ids do not link across days.
 */
export class DailySalt {
  private day = -1;
  private salt = "";
  private loading: Promise<string> | null = null;

  constructor(private readonly store: Store) {}

  /** The salt of the day containing `ms`: synchronous when cached. */
  get(ms: number): string | Promise<string> {
    const d = floorDay(ms);
    if (d === this.day) return this.salt;
    return (this.loading ??= this.store
      .setMetaIfAbsent(`visitor_salt:${d / DAY}`, randomBytes(16).toString("hex"))
      .then((s) => {
        this.day = d;
        this.salt = s;
        return s;
      })
      .finally(() => (this.loading = null)));
  }
}
