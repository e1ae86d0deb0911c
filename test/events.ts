import type { EventRow, NewLink } from "../src/store/port.js";

/** A link click as the redirect path records it: every column, nulls where a test does not care, then `over`. */
export function clickEvent(over: Partial<EventRow> = {}): EventRow {
  return {
    project_id: 1,
    ts: Date.now(),
    client_ts: null,
    name: "click",
    visitor: null,
    session: null,
    link_id: null,
    domain_id: null,
    campaign_id: null,
    source: "link",
    channel: "default",
    platform: null,
    ip: null,
    ua: null,
    referrer: null,
    browser: null,
    os: null,
    device: null,
    is_bot: false,
    country: null,
    rule: null,
    data: null,
    ...over,
  };
}

/** A plain link as the store takes it: a 302 to https://e.test/, nothing else set, then `over`. */
export function newLink(projectId: number, domainId: number, slug: string, over: Partial<NewLink> = {}): NewLink {
  return {
    project_id: projectId,
    domain_id: domainId,
    slug,
    target: "https://e.test/",
    redirect_status: 302,
    expires_at: null,
    max_clicks: null,
    tags: [],
    utm: {},
    forward_query: false,
    title: null,
    notes: null,
    rules: [],
    allowed_platforms: null,
    campaign_id: null,
    ...over,
  };
}
