/**
 * Funnel benchmark (issue 8): a deterministic log of 10 million events for 1 million visitors, ingested over HTTP in
 * batches of 1,000 (goal: >= 200,000 events/s), then 3-step and 5-step funnels with a one-day window, with and
 * without a breakdown, warm and after a restart (goals: every warm funnel under 1 s, the server's peak memory under
 * 1 GB). The server is a real `clicktrail serve` child process; its peak memory is the kernel's high-water mark of its
 * resident set (VmHWM).
 *
 *   npm run bench:funnel
 *   node dist/bench/funnel.js --visitors 1000000 --events-per-visitor 10 [--db postgres]
 */
import { Agent } from "node:http";
import {
  ADMIN_KEY,
  BROWSER_UA,
  cliMain,
  createApp,
  fmtInt,
  fmtMs,
  http,
  installCleanup,
  intFlag,
  log,
  procPeakRssBytes,
  procRssBytes,
  startClicktrail,
  table,
  tempDir,
  withDatabase,
  withDefaults,
  type BenchFigure,
  type BenchResult,
  type BenchRunOptions,
  type ClicktrailProcess,
} from "./common.js";

const GOAL_WARM_MS = 1000;
const GOAL_PEAK_BYTES = 1024 ** 3;
const GOAL_INGEST = 200_000;

const FLAGS = {
  visitors: { default: "1000000", help: "visitors in the generated log" },
  "events-per-visitor": { default: "10", help: "events per visitor (10 x 1,000,000 = 10 million)" },
  batch: { default: "1000", help: "events per POST /api/v1/events" },
  connections: { default: "4", help: "concurrent connections sending batches" },
  repeat: { default: "5", help: "runs of each warm funnel (the median is reported)" },
  db: { default: "sqlite", help: "sqlite or postgres" },
  "pg-url": { default: "postgres://postgres@127.0.0.1:5432/postgres", help: "--db postgres: where the benchmark may create a database" },
};
const USAGE = "Funnel benchmark: ingest a deterministic 10M-event log, then time funnels warm and after a restart, with peak memory.";

/** mulberry32: a small seeded PRNG, so every run generates the same log. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// a visitor's events after its first pageview: mostly more browsing, some progress through the product
const NEXT: [string, number][] = [
  ["pageview", 0.45],
  ["search", 0.15],
  ["signup", 0.1],
  ["activate", 0.09],
  ["purchase", 0.08],
  ["invite", 0.06],
  ["open", 0.04],
  ["click", 0.03],
];
const REFS = ["ads", "search", "direct", "email", "social"];
const PLANS = ["free", "pro", "team"];

/** The events of visitor `v` (deterministic in v). */
function visitorEvents(v: number, perVisitor: number): { name: string; visitor: string; data?: Record<string, string> }[] {
  const r = prng(v * 7919 + 17);
  const visitor = `v${v.toString(36).padStart(5, "0")}`;
  const out: { name: string; visitor: string; data?: Record<string, string> }[] = [
    { name: "pageview", visitor, data: { ref: REFS[Math.floor(r() * REFS.length)] } },
  ];
  while (out.length < perVisitor) {
    let x = r();
    let name = NEXT[NEXT.length - 1][0];
    for (const [n, p] of NEXT) {
      if (x < p) {
        name = n;
        break;
      }
      x -= p;
    }
    out.push(name === "signup" ? { name, visitor, data: { plan: PLANS[Math.floor(r() * PLANS.length)] } } : { name, visitor });
  }
  return out;
}

const QUERIES: { name: string; query: Record<string, unknown> }[] = [
  { name: "3 steps", query: { steps: ["pageview", "signup", "purchase"], window: "1d" } },
  { name: "3 steps, breakdown by ref", query: { steps: ["pageview", "signup", "purchase"], window: "1d", breakdown: { event_field: "ref" } } },
  { name: "5 steps", query: { steps: ["pageview", "search", "signup", "activate", "purchase"], window: "1d" } },
  {
    name: "5 steps, breakdown by ref",
    query: { steps: ["pageview", "search", "signup", "activate", "purchase"], window: "1d", breakdown: { event_field: "ref" } },
  },
];

async function timeFunnel(base: string, query: Record<string, unknown>): Promise<{ ms: number; engineMs: number; steps: number[] }> {
  const t0 = performance.now();
  const r = await http(base, "POST", "/api/v1/funnels/query", { key: ADMIN_KEY, body: query, timeoutMs: 600_000 });
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`funnel query answered ${r.status}: ${r.body.slice(0, 500)}`);
  return { ms, engineMs: r.json.meta.took_ms as number, steps: (r.json.steps as { visitors: number }[]).map((s) => s.visitors) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(opts: BenchRunOptions = {}): Promise<BenchResult> {
  installCleanup();
  const flags = withDefaults(FLAGS, opts);
  const short = opts.short === true;
  const visitors = Math.floor(intFlag(flags.visitors, "visitors") / (short ? 10 : 1));
  const perVisitor = intFlag(flags["events-per-visitor"], "events-per-visitor");
  const batch = intFlag(flags.batch, "batch");
  const connections = intFlag(flags.connections, "connections");
  const repeat = intFlag(flags.repeat, "repeat");
  const total = visitors * perVisitor;
  const dataDir = tempDir("clicktrail-bench-funnel-");
  return withDatabase(flags.db, flags["pg-url"], async (databaseUrl) => {
    const env: Record<string, string> = { CLICKTRAIL_INGEST_RATE_LIMIT: "1000000", CLICKTRAIL_BODY_LIMIT: String(8 * 1024 * 1024) };
    if (databaseUrl) env.CLICKTRAIL_DATABASE_URL = databaseUrl;
    const notes: string[] = [];
    log(
      `funnel benchmark: ${fmtInt(total)} events for ${fmtInt(visitors)} visitors on ${flags.db}${short ? " (short: a tenth of the visitors)" : ""}`,
    );

    let srv: ClicktrailProcess = await startClicktrail(dataDir, env);
    try {
      const { key } = await createApp(srv.base, "bench");

      // ---------------------------------------------------------------- ingest
      const agent = new Agent({ keepAlive: true, maxSockets: connections });
      let next = 0;
      const perBatch = Math.max(1, Math.floor(batch / perVisitor));
      let acknowledged = 0;
      const t0 = performance.now();
      let lastReport = t0;
      const sender = async () => {
        for (;;) {
          const from = next;
          if (from >= visitors) return;
          next = Math.min(visitors, from + perBatch);
          const events = [];
          for (let v = from; v < next; v++) events.push(...visitorEvents(v, perVisitor));
          const r = await http(srv.base, "POST", "/api/v1/events", { body: { key, events }, agent, headers: { "user-agent": BROWSER_UA } });
          if (r.status !== 201) throw new Error(`ingest answered ${r.status}: ${r.body.slice(0, 300)}`);
          acknowledged += r.json.accepted as number;
          const now = performance.now();
          if (now - lastReport > 5000) {
            lastReport = now;
            log(
              `  ${fmtInt(acknowledged)} events, ${fmtInt(acknowledged / ((now - t0) / 1000))}/s, server rss ${fmtInt((procRssBytes(srv.proc.pid) ?? NaN) / 2 ** 20)} MB`,
            );
          }
        }
      };
      await Promise.all(Array.from({ length: connections }, sender));
      const ingestS = (performance.now() - t0) / 1000;
      agent.destroy();
      const rate = acknowledged / ingestS;
      log(`ingested ${fmtInt(acknowledged)} events in ${ingestS.toFixed(1)} s: ${fmtInt(rate)} events/s`);

      // ---------------------------------------------------------------- funnels: first (builds the table), then warm
      const rows: (string | number)[][] = [];
      const figures: BenchFigure[] = [
        {
          name: `ingest ${fmtInt(total)} events (batches of ${batch})`,
          value: Math.round(rate),
          unit: "events/s",
          goal: `>= ${fmtInt(GOAL_INGEST)}`,
          met: rate >= GOAL_INGEST,
          issue: 8,
        },
      ];
      const phase = async (label: string) => {
        const first = await timeFunnel(srv.base, QUERIES[0].query);
        rows.push([`${label}: first query (loads the table)`, QUERIES[0].name, fmtMs(first.ms), fmtMs(first.engineMs), first.steps.join(" > ")]);
        figures.push({ name: `funnel, first query ${label} (loads ${fmtInt(total)} events)`, value: Math.round(first.ms), unit: "ms", issue: 8 });
        for (const q of QUERIES) {
          const runs: { ms: number; engineMs: number; steps: number[] }[] = [];
          for (let i = 0; i < repeat; i++) runs.push(await timeFunnel(srv.base, q.query));
          const ms = median(runs.map((x) => x.ms));
          rows.push([`${label}: warm`, q.name, fmtMs(ms), fmtMs(median(runs.map((x) => x.engineMs))), runs[0].steps.join(" > ")]);
          figures.push({
            name: `funnel ${q.name}, warm, ${label}`,
            value: Math.round(ms),
            unit: "ms",
            goal: `< ${GOAL_WARM_MS}`,
            met: ms < GOAL_WARM_MS,
            issue: 8,
          });
        }
      };
      await phase("after ingest");
      const peak1 = procPeakRssBytes(srv.proc.pid) ?? NaN;

      // ---------------------------------------------------------------- restart
      await srv.stop();
      srv = await startClicktrail(dataDir, env);
      await phase("after a restart");
      const peak2 = procPeakRssBytes(srv.proc.pid) ?? NaN;
      const peak = Math.max(peak1, peak2);
      figures.push({
        name: "server peak memory (VmHWM, ingest + funnels; and after a restart)",
        value: Math.round(peak / 2 ** 20),
        unit: "MB",
        goal: "< 1024",
        met: peak < GOAL_PEAK_BYTES,
        issue: 8,
        note: `${fmtInt(peak1 / 2 ** 20)} MB before the restart, ${fmtInt(peak2 / 2 ** 20)} MB after`,
      });

      log("");
      log(table(["phase", "funnel", "HTTP ms", "engine ms", "visitors per step"], rows));
      log("");
      log(`peak memory of the server: ${fmtInt(peak1 / 2 ** 20)} MB (ingest and funnels), ${fmtInt(peak2 / 2 ** 20)} MB (after a restart)`);
      if (short) notes.push(`short run: ${fmtInt(total)} events for ${fmtInt(visitors)} visitors (the goals are for 10M / 1M)`);
      return { bench: "funnel", figures, notes };
    } finally {
      await srv.stop();
    }
  });
}

cliMain(import.meta.url, FLAGS, USAGE, async (opts) => {
  const r = await run(opts);
  log("");
  log(
    table(
      ["figure", "value", "goal", "met"],
      r.figures.map((f) => [f.name, `${fmtInt(f.value)} ${f.unit}`, f.goal ?? "", f.met === undefined ? "" : f.met ? "yes" : "NO"]),
    ),
  );
});
