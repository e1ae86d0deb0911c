/**
 * Load for the fault tests (test/faults.test.ts, test/postgres/faults-kill.test.ts): real HTTP on loopback against a
 * server process, three kinds of acknowledged writes (a link click answered 302, a tracking pixel open answered 200,
 * an event answered 201), each request carrying a unique id in its Referer, which every kind stores in the event's
 * `referrer`. Afterwards the acknowledged ids are compared with the stored ones: nothing acknowledged may be missing.
 */
import assert from "node:assert/strict";
import { hit, req, type Res } from "./helpers.js";

export type Kind = "click" | "open" | "event";
export const KINDS: Kind[] = ["click", "open", "event"];
/** every id is stored as this prefix + id in the events' referrer */
export const REF = "https://ref.fault.test/";
const UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

export interface Target {
  host: string;
  slugs: string[];
  /** path of an open tracking pixel (/t/o/…) */
  openPath: string;
  ingestKey: string;
}

/** A link domain with `links` links, an open pixel and an ingest app, made through the API. */
export async function setupTarget(base: string, host: string, links = 20): Promise<Target> {
  let r = await req(base, "POST", "/api/v1/domains", { body: { hostname: host } });
  assert.equal(r.status, 201, r.body);
  const slugs = Array.from({ length: links }, (_, i) => `f${i}`);
  r = await req(base, "POST", "/api/v1/links/bulk", {
    body: { links: slugs.map((slug, i) => ({ domain: host, slug, target: `https://example.com/${i}` })) },
  });
  assert.equal(r.json?.created, links, r.body);
  r = await req(base, "POST", "/api/v1/tracking/links", { body: { open: true, metadata: { campaign: "faults" } } });
  assert.equal(r.status, 200, r.body);
  const openPath = new URL(r.json.open_url as string).pathname;
  r = await req(base, "POST", "/api/v1/apps", { body: { name: `faults ${host}` } });
  assert.equal(r.status, 201, r.body);
  return { host, slugs, openPath, ingestKey: r.json.key as string };
}

/** One request of a kind, with its id in the Referer. */
export function send(base: string, t: Target, kind: Kind, id: string, n: number): Promise<Res> {
  const referer = REF + id;
  if (kind === "click") return hit(base, t.host, `/${t.slugs[n % t.slugs.length]}`, { referer });
  if (kind === "open") return req(base, "GET", t.openPath, { key: null, headers: { referer, "user-agent": UA } });
  return req(base, "POST", "/api/v1/events", {
    key: null,
    headers: { referer, "user-agent": UA },
    body: { key: t.ingestKey, name: "fault", visitor: `v${n % 50}`, data: { id } },
  });
}

export const acknowledged = (kind: Kind, status: number) => (kind === "click" ? status === 302 : kind === "open" ? status === 200 : status === 201);

export interface Answer {
  kind: Kind;
  status: number;
  /** problem+json type slug, or the start of the body */
  what: string;
  contentType: string;
  at: number;
}

export interface LoadReport {
  acked: Record<Kind, Set<string>>;
  /** answers that were not acknowledgements */
  refused: Answer[];
  /** requests that got no answer (connection refused or reset: the server was killed or was restarting) */
  noAnswer: number;
  /** latency of each answered request, ms */
  latencies: number[];
}

export interface Load {
  report: LoadReport;
  total(): number;
  stop(): Promise<LoadReport>;
}

/**
 * `perKind` clients per kind, each sending requests one after another (pausing `paceMs` between two) against
 * `base()` until stop() or `maxRequests` requests in all.
 */
export function startLoad(base: () => string, t: Target, opts: { perKind?: number; paceMs?: number; maxRequests?: number; tag?: string } = {}): Load {
  const { perKind = 4, paceMs = 0, maxRequests = 100_000, tag = "r" } = opts;
  const report: LoadReport = { acked: { click: new Set(), open: new Set(), event: new Set() }, refused: [], noAnswer: 0, latencies: [] };
  let stop = false;
  let sent = 0;
  const worker = async (kind: Kind, w: number) => {
    for (let i = 0; !stop && sent < maxRequests; i++) {
      sent++;
      const id = `${kind}-${tag}-${w}-${i}`;
      const start = performance.now();
      try {
        const r = await send(base(), t, kind, id, w * 7 + i);
        report.latencies.push(performance.now() - start);
        if (acknowledged(kind, r.status)) report.acked[kind].add(id);
        else
          report.refused.push({
            kind,
            status: r.status,
            what: typeof r.json?.type === "string" ? String(r.json.type).replace(/^.*\/problems\//, "") : r.body.slice(0, 120),
            contentType: String(r.headers["content-type"] ?? ""),
            at: Date.now(),
          });
      } catch {
        report.noAnswer++;
        await sleep(20);
      }
      if (paceMs) await sleep(paceMs);
    }
  };
  const workers = KINDS.flatMap((kind) => Array.from({ length: perKind }, (_, w) => worker(kind, w)));
  return {
    report,
    total: () => report.acked.click.size + report.acked.open.size + report.acked.event.size,
    async stop() {
      stop = true;
      await Promise.all(workers);
      return report;
    },
  };
}

/** Merges several loads' reports (e.g. one per server run). */
export function merge(reports: LoadReport[]): LoadReport {
  const out: LoadReport = { acked: { click: new Set(), open: new Set(), event: new Set() }, refused: [], noAnswer: 0, latencies: [] };
  for (const r of reports) {
    for (const k of KINDS) for (const id of r.acked[k]) out.acked[k].add(id);
    out.refused.push(...r.refused);
    out.noAnswer += r.noAnswer;
    out.latencies.push(...r.latencies);
  }
  return out;
}

/**
 * Compares the acknowledged ids with the referrers stored (one per stored event, duplicates included): every
 * acknowledged id must be stored exactly once. Returns the figures per kind.
 */
export function checkStored(report: LoadReport, storedReferrers: string[]): Record<Kind, { acked: number; stored: number }> {
  const seen = new Map<string, number>();
  for (const r of storedReferrers) if (r.startsWith(REF)) seen.set(r.slice(REF.length), (seen.get(r.slice(REF.length)) ?? 0) + 1);
  const out = {} as Record<Kind, { acked: number; stored: number }>;
  for (const kind of KINDS) {
    const missing: string[] = [];
    const twice: string[] = [];
    for (const id of report.acked[kind]) {
      const n = seen.get(id) ?? 0;
      if (n === 0) missing.push(id);
      else if (n > 1) twice.push(id);
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${report.acked[kind].size} acknowledged ${kind}s are not stored`);
    assert.deepEqual(twice.slice(0, 10), [], `${twice.length} acknowledged ${kind}s are stored more than once`);
    let stored = 0;
    for (const [id, n] of seen) if (id.startsWith(`${kind}-`)) stored += n;
    out[kind] = { acked: report.acked[kind].size, stored };
  }
  return out;
}

/** Every refused answer is a clear one: one of `allowed` statuses, problem+json, one of the `types`; never a 500. */
export function assertClearRefusals(report: LoadReport, allowed: number[], types: string[]) {
  const bad = report.refused.filter(
    (a) => !allowed.includes(a.status) || !/^application\/problem\+json/.test(a.contentType) || !types.includes(a.what),
  );
  assert.deepEqual(
    bad.slice(0, 5).map((a) => `${a.kind} ${a.status} ${a.contentType} ${a.what}`),
    [],
    `${bad.length} unclear answers out of ${report.refused.length} refusals`,
  );
}

export function p99(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

export const fmt = (n: number) => n.toLocaleString("en-US");

export function summary(figures: Record<Kind, { acked: number; stored: number }>): string {
  return KINDS.map((k) => `${k}s ${fmt(figures[k].acked)} acknowledged / ${fmt(figures[k].stored)} stored`).join(", ");
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
