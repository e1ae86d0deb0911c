import { stringify } from "csv-stringify/sync";
import type { EventFilter, Store, StoredEvent } from "../store/port.js";

export const EXPORT_COLUMNS = [
  "id",
  "time",
  "name",
  "link_id",
  "domain_id",
  "campaign_id",
  "channel",
  "visitor",
  "ip",
  "user_agent",
  "referrer",
  "browser",
  "os",
  "device",
  "platform",
  "is_bot",
  "country",
  "rule",
  "source",
  "data",
] as const;

export function exportRecord(e: StoredEvent) {
  return {
    id: e.id,
    time: new Date(e.ts).toISOString(),
    name: e.name,
    link_id: e.link_id,
    domain_id: e.domain_id,
    campaign_id: e.campaign_id,
    channel: e.channel,
    visitor: e.visitor,
    ip: e.ip,
    user_agent: e.ua,
    referrer: e.referrer,
    browser: e.browser,
    os: e.os,
    device: e.device,
    platform: e.platform,
    is_bot: e.is_bot,
    country: e.country,
    rule: e.rule ?? null,
    source: e.source,
    data: e.data ? JSON.parse(e.data) : null,
  };
}

/** Pages through the event log by id, so an export of millions of rows never holds them all in memory. */
export async function* eventPages(store: Store, filter: Omit<EventFilter, "limit" | "after_id">, pageSize = 2000) {
  let after = 0;
  for (;;) {
    const page = await store.listEvents({ ...filter, after_id: after, limit: pageSize });
    if (page.length === 0) return;
    yield page;
    after = page[page.length - 1]!.id;
    if (page.length < pageSize) return;
  }
}

/** Streams events as CSV (with a header) or NDJSON text chunks. */
export async function* exportEvents(store: Store, filter: Omit<EventFilter, "limit" | "after_id">, format: "csv" | "ndjson") {
  let first = true;
  for await (const page of eventPages(store, filter)) {
    const recs = page.map(exportRecord);
    if (format === "ndjson") yield recs.map((r) => JSON.stringify(r)).join("\n") + "\n";
    else {
      yield stringify(
        recs.map((r) => ({ ...r, is_bot: r.is_bot ? "true" : "false", data: r.data === null ? "" : JSON.stringify(r.data) })),
        { header: first, columns: [...EXPORT_COLUMNS] },
      );
    }
    first = false;
  }
  if (first && format === "csv") yield stringify([], { header: true, columns: [...EXPORT_COLUMNS] });
}
