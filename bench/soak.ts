/**
 * Soak benchmark: minutes of mixed traffic against a real `clicktrail serve` child process on 127.0.0.1 (SQLite by
 * default, or PostgreSQL): redirects, single events and batches on POST /api/v1/events with an app's ingest key,
 * stats reads and the dashboard's API reads (link lists, event and session lists, stats breakdowns).
 *
 * Every minute it prints requests per second and errors per kind and the server's memory (resident set from /proc,
 * V8 heap from /metrics). At the end it checks that memory in the last minute is within 10 % of minute 2 (growth) and
 * that every acknowledged click and event is in the event log, and exits 1 (saying why) when either fails.
 *
 *   npm run bench:soak                                   (10 minutes)
 *   SOAK_MINUTES=2 npm run bench:soak
 *   node dist/bench/soak.js --minutes 2 [--db postgres] [--minute-seconds 15]
 *
 * The load comes from node:http clients in this process, a fixed number of concurrent requests per kind (closed loop):
 * a steady load rather than a saturating one, with every answer counted per kind and minute (the loss check needs
 * exact counts of what was acknowledged).
 */
import { Agent } from "node:http";
import {
  ADMIN_KEY,
  BROWSER_UA,
  cliMain,
  countEvents,
  createApp,
  createDomain,
  createLinks,
  fatal,
  fmtInt,
  fmtMs,
  http,
  installCleanup,
  intFlag,
  log,
  percentile,
  procRssBytes,
  promValue,
  sleep,
  startClicktrail,
  table,
  tempDir,
  withDatabase,
  withDefaults,
  type BenchFigure,
  type BenchResult,
  type BenchRunOptions,
} from "./common.js";

const HOST = "go.soak.test";
/** memory in the last minute may exceed minute 2 by at most this fraction */
const GOAL_GROWTH = 0.1;

const FLAGS = {
  minutes: { default: process.env.SOAK_MINUTES ?? "10", help: "length of the run in minutes (also SOAK_MINUTES; fractions allowed)" },
  "minute-seconds": { default: "60", help: "seconds per reported 'minute' (shorter to try the machinery quickly)" },
  db: { default: "sqlite", help: "sqlite or postgres" },
  "pg-url": {
    default: "postgres://postgres@127.0.0.1:5432/postgres",
    help: "--db postgres: a server where the benchmark may create (and afterwards drop) a database of its own",
  },
  links: { default: "1000", help: "links on the soak domain" },
  redirect: { default: "16", help: "concurrent redirect requests" },
  event: { default: "8", help: "concurrent single-event POSTs" },
  batch: { default: "2", help: "concurrent batch POSTs" },
  "batch-size": { default: "50", help: "events per batch" },
  stats: { default: "1", help: "concurrent stats reads" },
  dashboard: { default: "2", help: "concurrent dashboard API reads (link lists, event and session lists, breakdowns)" },
  sample: { default: "5", help: "seconds between memory samples" },
};
const USAGE = "Soak benchmark: mixed traffic for minutes; throughput, errors and server memory per minute; memory growth and loss checks.";

const KINDS = ["redirect", "event", "batch", "stats", "dashboard"] as const;
type Kind = (typeof KINDS)[number];

interface Bucket {
  ok: number;
  /** answers with an unexpected status */
  bad: number;
  /** socket errors and timeouts */
  errors: number;
  /** events acknowledged (clicks for redirects) */
  acked: number;
  statuses: Map<number, number>;
  /** latencies (ms) of the answers */
  ms: number[];
}

interface MemSample {
  t: number;
  rss: number | null;
  heap: number | null;
}

const newBucket = (): Bucket => ({ ok: 0, bad: 0, errors: 0, acked: 0, statuses: new Map(), ms: [] });
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const mb = (n: number) => (Number.isFinite(n) ? (n / 2 ** 20).toFixed(1) : "-");

/** Runs the soak with `opts` (flag names of --help) over the defaults; prints as it goes; the figures. */
export async function run(opts: BenchRunOptions = {}): Promise<BenchResult & { failures: string[] }> {
  const flags = withDefaults(FLAGS, opts.short ? { minutes: 1, ...opts } : opts);
  const minutes = Number(flags.minutes);
  if (!(minutes > 0)) fatal(`--minutes / SOAK_MINUTES must be a positive number, got ${JSON.stringify(flags.minutes)}`);
  installCleanup();
  return withDatabase(flags.db, flags["pg-url"], (databaseUrl) => soak(flags, minutes, databaseUrl));
}

async function soak(flags: { [K in keyof typeof FLAGS]: string }, minutes: number, databaseUrl: string | null) {
  const minuteMs = intFlag(flags["minute-seconds"], "minute-seconds") * 1000;
  const totalMs = Math.round(minutes * minuteMs);
  const nMinutes = Math.ceil(totalMs / minuteMs);
  const nLinks = intFlag(flags.links, "links");
  const batchSize = intFlag(flags["batch-size"], "batch-size");
  const conc: Record<Kind, number> = {
    redirect: intFlag(flags.redirect, "redirect", 0),
    event: intFlag(flags.event, "event", 0),
    batch: intFlag(flags.batch, "batch", 0),
    stats: intFlag(flags.stats, "stats", 0),
    dashboard: intFlag(flags.dashboard, "dashboard", 0),
  };
  const sampleMs = intFlag(flags.sample, "sample") * 1000;
  const db = databaseUrl ? "PostgreSQL" : "SQLite";

  // ------------------------------------------------------------ server and data
  const dataDir = tempDir("clicktrail-bench-soak-");
  const srv = await startClicktrail(dataDir, {
    CLICKTRAIL_INGEST_RATE_LIMIT: "100000000",
    ...(databaseUrl ? { CLICKTRAIL_DATABASE_URL: databaseUrl } : {}),
  });
  const pid = srv.proc.pid;
  log(`Soak: ${minutes} × ${minuteMs / 1000} s of mixed traffic on Clicktrail ${srv.base} (${db}, server pid ${pid})`);
  const domainId = await createDomain(srv.base, HOST);
  const slugs = Array.from({ length: nLinks }, (_, i) => `s${i.toString(36)}`);
  const links = slugs.map((slug, i) => ({
    domain: HOST,
    slug,
    target: `https://example.com/p/${i}`,
    title: `Product ${i}`,
    tags: i % 10 ? [] : ["promo"],
  }));
  const linkIds = (await createLinks(srv.base, links)).flatMap((r) => (r.link ? [r.link.id] : []));
  const { id: appId, key: ingestKey } = await createApp(srv.base, "soak");
  const pickLink = () => (linkIds.length ? linkIds[(Math.random() * linkIds.length) | 0]! : 1);
  log(`created ${fmtInt(nLinks)} links and app ${appId}; concurrency ${KINDS.map((k) => `${k} ${conc[k]}`).join(", ")}; batches of ${batchSize}`);

  // ------------------------------------------------------------ the requests of each kind
  type Req = {
    method: string;
    path: string;
    body?: unknown;
    headers?: Record<string, string>;
    key?: string;
    expect: number;
    acked: (json: any) => number;
  };
  const visitors = Array.from({ length: 5000 }, (_, i) => `v${i}`);
  const visitor = () => visitors[(Math.random() * visitors.length) | 0]!;
  const event = (i: number) => ({ name: ["pageview", "tap", "signup"][i % 3], visitor: visitor(), data: { target: "button#start", x: i % 1000 } });
  let seq = 0;
  const dashboardPaths = [
    () => "/api/v1/links?limit=50",
    () => "/api/v1/links?limit=50&sort=-clicks",
    () => `/api/v1/links?limit=50&q=Product%20${(Math.random() * nLinks) | 0}`,
    () => "/api/v1/links?limit=50&tag=promo",
    () => "/api/v1/events?limit=50",
    () => "/api/v1/sessions?limit=50",
    () => `/api/v1/links/${pickLink()}/stats?interval=hour`,
    () => `/api/v1/domains/${domainId}/stats?interval=day&tz=Europe/Paris`,
  ];
  const statsPaths = [
    () => "/api/v1/stats?interval=hour",
    () => `/api/v1/links/${pickLink()}/stats`,
    () => `/api/v1/apps/${appId}/stats`,
    () => `/api/v1/domains/${domainId}/stats`,
  ];
  const next: Record<Kind, () => Req> = {
    redirect: () => ({
      method: "GET",
      path: `/${slugs[(Math.random() * slugs.length) | 0]}`,
      headers: { host: HOST, "user-agent": BROWSER_UA, referer: "https://www.google.com/" },
      expect: 302,
      acked: () => 1,
    }),
    event: () => ({
      method: "POST",
      path: "/api/v1/events",
      body: { key: ingestKey, ...event(seq++) },
      headers: { "user-agent": BROWSER_UA },
      expect: 201,
      acked: (j) => Number(j?.accepted ?? 1),
    }),
    batch: () => ({
      method: "POST",
      path: "/api/v1/events",
      body: { key: ingestKey, events: Array.from({ length: batchSize }, () => event(seq++)) },
      headers: { "user-agent": BROWSER_UA },
      expect: 201,
      acked: (j) => Number(j?.accepted ?? batchSize),
    }),
    stats: () => ({ method: "GET", path: statsPaths[seq++ % statsPaths.length]!(), key: ADMIN_KEY, expect: 200, acked: () => 0 }),
    dashboard: () => ({ method: "GET", path: dashboardPaths[seq++ % dashboardPaths.length]!(), key: ADMIN_KEY, expect: 200, acked: () => 0 }),
  };

  // ------------------------------------------------------------ load and sampling
  const buckets: Record<Kind, Bucket[]> = Object.fromEntries(KINDS.map((k) => [k, Array.from({ length: nMinutes }, newBucket)])) as Record<
    Kind,
    Bucket[]
  >;
  const samples: MemSample[][] = Array.from({ length: nMinutes }, () => []);
  const t0 = Date.now();
  const end = t0 + totalMs;
  const minuteOf = (t: number) => Math.min(nMinutes - 1, Math.floor((t - t0) / minuteMs));

  async function worker(kind: Kind, agent: Agent) {
    while (Date.now() < end) {
      const r = next[kind]();
      let res;
      const t = performance.now();
      try {
        res = await http(srv.base, r.method, r.path, { body: r.body, headers: r.headers, key: r.key, agent, timeoutMs: 30_000 });
      } catch {
        buckets[kind][minuteOf(Date.now())]!.errors++;
        await sleep(50);
        continue;
      }
      const b = buckets[kind][minuteOf(Date.now())]!;
      b.ms.push(performance.now() - t);
      b.statuses.set(res.status, (b.statuses.get(res.status) ?? 0) + 1);
      if (res.status === r.expect) {
        b.ok++;
        b.acked += r.acked(res.json);
      } else b.bad++;
    }
  }

  async function sampler() {
    const metricsAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    while (Date.now() < end) {
      const t = Date.now();
      let heap: number | null = null;
      try {
        const m = await http(srv.base, "GET", "/metrics", { agent: metricsAgent, timeoutMs: 10_000 });
        heap = promValue(m.body, "nodejs_heap_size_used_bytes");
      } catch {
        /* counted as a missing sample */
      }
      samples[minuteOf(t)]!.push({ t, rss: procRssBytes(pid), heap });
      await sleep(Math.max(0, Math.min(sampleMs - (Date.now() - t), end - Date.now())));
    }
    metricsAgent.destroy();
  }

  const memOf = (m: number, f: "rss" | "heap") => mean(samples[m]!.map((s) => s[f]).filter((x): x is number => x !== null));
  const minuteRow = (m: number): string[] => {
    const secs = Math.min(minuteMs, totalMs - m * minuteMs) / 1000;
    const errs = KINDS.reduce((a, k) => a + buckets[k][m]!.bad + buckets[k][m]!.errors, 0);
    return [
      String(m + 1),
      ...KINDS.map((k) => fmtInt(buckets[k][m]!.ok / secs)),
      fmtInt((buckets.event[m]!.acked + buckets.batch[m]!.acked) / secs),
      String(errs),
      mb(memOf(m, "rss")),
      mb(memOf(m, "heap")),
    ];
  };
  const HEADER = ["minute", ...KINDS.map((k) => `${k}/s`), "events/s", "errors", "rss MB", "heap MB"];

  // per-minute progress lines while it runs
  let printed = 0;
  const progress = setInterval(() => {
    const done = Math.floor((Date.now() - t0) / minuteMs);
    while (printed < Math.min(done, nMinutes)) {
      const r = minuteRow(printed++);
      log(
        `  minute ${r[0]}: ${KINDS.map((k, i) => `${k} ${r[i + 1]}/s`).join(", ")}, events ${r[6]}/s, errors ${r[7]}, rss ${r[8]} MB, heap ${r[9]} MB`,
      );
    }
  }, 1000);

  const agents = KINDS.map((k) => new Agent({ keepAlive: true, maxSockets: Math.max(1, conc[k]) }));
  await Promise.all([sampler(), ...KINDS.flatMap((k, i) => Array.from({ length: conc[k] }, () => worker(k, agents[i]!)))]);
  clearInterval(progress);
  const elapsed = (Date.now() - t0) / 1000;
  for (const a of agents) a.destroy();

  // ------------------------------------------------------------ end: counters, shutdown, the event log
  await sleep(500);
  const metrics = await http(srv.base, "GET", "/metrics");
  const serverRedirects = promValue(metrics.body, "clicktrail_redirects_total", { outcome: "redirect" });
  const rssEnd = procRssBytes(pid);
  const { code, exit } = await srv.stop();
  if (code !== 0) log(`server output:\n${srv.output()}`);
  const storedClicks = await countEvents(dataDir, databaseUrl, `SELECT count(*) AS n FROM events WHERE name = 'click' AND link_id IS NOT NULL`);
  const storedEvents = await countEvents(dataDir, databaseUrl, `SELECT count(*) AS n FROM events WHERE source = 'api'`);

  const sum = (k: Kind, f: "ok" | "bad" | "errors" | "acked") => buckets[k].reduce((a, b) => a + b[f], 0);
  const ackedClicks = sum("redirect", "acked");
  const ackedEvents = sum("event", "acked") + sum("batch", "acked");

  log(`\nper minute (requests per second answered as expected, per kind; errors = other statuses + socket errors; memory = mean of the samples):`);
  log(
    table(
      HEADER,
      Array.from({ length: nMinutes }, (_, m) => minuteRow(m)),
    ),
  );

  const p99Row = (m: number) => [
    String(m + 1),
    ...KINDS.map((k) =>
      fmtMs(
        percentile(
          buckets[k][m]!.ms.sort((x, y) => x - y),
          99,
        ),
      ),
    ),
  ];
  log(`\np99 latency per kind (ms):`);
  log(
    table(
      ["minute", ...KINDS],
      Array.from({ length: nMinutes }, (_, m) => p99Row(m)),
    ),
  );

  const statusLines = KINDS.map((k) => {
    const all = new Map<number, number>();
    for (const b of buckets[k]) for (const [s, n] of b.statuses) all.set(s, (all.get(s) ?? 0) + n);
    return `${k}: ${[...all.entries()].map(([s, n]) => `${s} × ${fmtInt(n)}`).join(", ") || "none"}${sum(k, "errors") ? `, socket errors × ${sum(k, "errors")}` : ""}`;
  });
  log(`\nstatuses over the run: ${statusLines.join("; ")}`);

  // ------------------------------------------------------------ checks
  const failures: string[] = [];
  const ref = nMinutes >= 2 ? 1 : 0;
  const last = nMinutes - 1;
  const growth = (f: "rss" | "heap") => memOf(last, f) / memOf(ref, f) - 1;
  const memChecks: [string, "rss" | "heap"][] = [
    ["resident set (rss)", "rss"],
    ["V8 heap used", "heap"],
  ];
  if (nMinutes < 3)
    log(`\nmemory: fewer than 3 minutes, so the last minute is minute ${last + 1} (compared with minute ${ref + 1}); run longer for a real check`);
  for (const [what, f] of memChecks) {
    const g = growth(f);
    const line = `${what}: minute ${last + 1} ${mb(memOf(last, f))} MB vs minute ${ref + 1} ${mb(memOf(ref, f))} MB (${g >= 0 ? "+" : ""}${(100 * g).toFixed(1)} %)`;
    if (!Number.isFinite(g)) failures.push(`${what}: no samples to compare`);
    else if (g > GOAL_GROWTH) failures.push(`memory grew: ${line}, more than ${100 * GOAL_GROWTH} %`);
    log(`memory ${line}`);
  }
  log(`final rss after the load: ${mb(rssEnd ?? NaN)} MB; shutdown: ${exit}`);
  if (code !== 0) failures.push(`the server did not stop cleanly on SIGTERM: ${exit}`);

  log(
    `\nstored clicks ${fmtInt(storedClicks)} for ${fmtInt(ackedClicks)} redirects answered 302 (server's redirect counter: ${serverRedirects === null ? "n/a" : fmtInt(serverRedirects)})`,
  );
  log(`stored events ${fmtInt(storedEvents)} for ${fmtInt(ackedEvents)} acknowledged (201, single and batched)`);
  if (storedClicks < ackedClicks) failures.push(`LOSS: ${fmtInt(ackedClicks - storedClicks)} answered redirects are not in the event log`);
  if (storedEvents < ackedEvents) failures.push(`LOSS: ${fmtInt(ackedEvents - storedEvents)} acknowledged events are not in the event log`);
  const errors = KINDS.reduce((a, k) => a + sum(k, "bad") + sum(k, "errors"), 0);
  const total = KINDS.reduce((a, k) => a + sum(k, "ok"), 0);
  if (errors) log(`note: ${fmtInt(errors)} requests were not answered as expected (see the statuses above)`);
  log(
    failures.length
      ? `\nSOAK FAILED:\n${failures.map((f) => `  - ${f}`).join("\n")}`
      : `\nsoak passed: memory within ${100 * GOAL_GROWTH} % of minute 2, nothing acknowledged lost`,
  );

  const rssGrowth = growth("rss");
  const heapGrowth = growth("heap");
  const label = `soak, ${db}, ${minutes} × ${minuteMs / 1000} s`;
  const figures: BenchFigure[] = [
    { name: `${label}: mixed requests answered`, value: total / elapsed, unit: "req/s", note: `${fmtInt(errors)} errors` },
    {
      name: `${label}: rss growth, last minute vs minute ${ref + 1}`,
      value: 100 * rssGrowth,
      unit: "%",
      goal: `≤ ${100 * GOAL_GROWTH} % (≥ 3 minutes)`,
      ...(nMinutes >= 3 ? { met: rssGrowth <= GOAL_GROWTH } : {}),
      issue: 9,
    },
    {
      name: `${label}: heap growth, last minute vs minute ${ref + 1}`,
      value: 100 * heapGrowth,
      unit: "%",
      goal: `≤ ${100 * GOAL_GROWTH} % (≥ 3 minutes)`,
      ...(nMinutes >= 3 ? { met: heapGrowth <= GOAL_GROWTH } : {}),
      issue: 9,
    },
    {
      name: `${label}: acknowledged clicks and events stored`,
      value: storedClicks + storedEvents,
      unit: `of ${fmtInt(ackedClicks + ackedEvents)}`,
      goal: "every acknowledged event stored",
      met: storedClicks >= ackedClicks && storedEvents >= ackedEvents,
      issue: 9,
    },
  ];
  return { bench: "soak", figures, notes: nMinutes < 3 ? [`${label}: too short for the memory check (needs 3 minutes or more)`] : [], failures };
}

cliMain(import.meta.url, FLAGS, USAGE, async (opts) => ((await run(opts)).failures.length ? 1 : 0));
