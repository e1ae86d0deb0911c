import client from "prom-client";

export const LINK_OUTCOMES = ["redirect", "not_found", "gone", "error"] as const;
export type LinkOutcome = (typeof LINK_OUTCOMES)[number];

/**
 * A labelled counter fed from plain numbers that a hot path increments (`tally`, one per label value): they are added
 * to it, and zeroed, when it is read. (A labelled counter's inc() builds and looks up its labels' key each time.)
 * `labels` renames keys whose label value differs.
 */
function talliedCounter<K extends string>(
  registry: client.Registry,
  name: string,
  help: string,
  labelName: string,
  tally: Record<K, number>,
  labels: Partial<Record<K, string>> = {},
) {
  return new client.Counter({
    name,
    help,
    labelNames: [labelName],
    registers: [registry],
    collect() {
      for (const key of Object.keys(tally) as K[]) {
        const n = tally[key];
        if (n === 0) continue;
        tally[key] = 0;
        this.inc({ [labelName]: labels[key] ?? key }, n);
      }
    },
  });
}

/** One registry per app instance, so tests that build several apps do not collide. */
export function createMetrics() {
  const registry = new client.Registry();
  const depth = { read: () => 0 };
  const analytics = { read: () => ({ projects: 0, events: 0, bytes: 0 }) };
  const linkOutcomes: Record<LinkOutcome, number> = { redirect: 0, not_found: 0, gone: 0, error: 0 };
  const fastLane = { answered: 0, handedOver: 0 };
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    /** Set by the writer: how many events wait for their commit. */
    depth,
    /** Set by the app: what the funnels' in-memory tables hold. */
    analytics,
    requests: new client.Counter({
      name: "clicktrail_http_requests_total",
      help: "HTTP requests answered by the API, by method, route and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    /**
     * Requests on link domains by outcome, counted on the redirect path as plain numbers and added to
     * clicktrail_redirects_total when it is read (a labelled counter's inc() builds and looks up its labels' key: about
     * 0.2 µs a redirect).
     */
    linkOutcomes,
    redirects: talliedCounter(
      registry,
      "clicktrail_redirects_total",
      "Requests on link domains, by outcome (redirect, not_found, gone, error)",
      "outcome",
      linkOutcomes,
    ),
    /** The fast lane's counts (src/http/fast-lane.ts), plain numbers added to clicktrail_http_fast_lane_total when read. */
    fastLane,
    fastLaneTotal: talliedCounter(
      registry,
      "clicktrail_http_fast_lane_total",
      "Requests answered on the fast lane (answered), and connections it handed to node:http (handed_over)",
      "result",
      fastLane,
      { handedOver: "handed_over" },
    ),
    eventsWritten: new client.Counter({
      name: "clicktrail_events_written_total",
      help: "Events committed to the event log",
      registers: [registry],
    }),
    batchSize: new client.Histogram({
      name: "clicktrail_writer_batch_size",
      help: "Events per group commit",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers: [registry],
    }),
    batchLatency: new client.Histogram({
      name: "clicktrail_writer_commit_seconds",
      help: "Time to commit one batch (events + rollups)",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    writerFailures: new client.Counter({
      name: "clicktrail_writer_failures_total",
      help: "Group commits that failed (their requests were answered with an error, nothing acknowledged)",
      registers: [registry],
    }),
    spooled: new client.Counter({
      name: "clicktrail_writer_spooled_events_total",
      help: "Events written to the local spool because the database was unreachable (replayed when it is back)",
      registers: [registry],
    }),
    queueDepth: new client.Gauge({
      name: "clicktrail_writer_queue_depth",
      help: "Events waiting for the next group commit",
      registers: [registry],
      collect() {
        this.set(depth.read());
      },
    }),
    analyticsEvents: new client.Gauge({
      name: "clicktrail_analytics_events",
      help: "Events held in memory for funnels, event reports and visitor pages (all loaded projects)",
      registers: [registry],
      collect() {
        this.set(analytics.read().events);
      },
    }),
    analyticsBytes: new client.Gauge({
      name: "clicktrail_analytics_bytes",
      help: "Bytes of the in-memory event tables' columns (all loaded projects)",
      registers: [registry],
      collect() {
        this.set(analytics.read().bytes);
      },
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
