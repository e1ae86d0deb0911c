/**
 * Redirect benchmark: a bare node:http server answering 302 (the ceiling) against Clicktrail's real redirect path
 * (child process, real SQLite file or PostgreSQL database, group commit), then a durability check: every answered
 * redirect must be stored.
 *
 *   npm run bench:redirect
 *   npm run bench:redirect -- --db postgres
 *   npm run bench:redirect -- --rules true     (every link has targeting rules; user agents of four platforms)
 *   node dist/bench/redirect.js --duration 10 --connections 64 [--links 10000] [--profile /tmp/prof]
 */
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";
import {
  BROWSER_UA,
  cliMain,
  countEvents,
  createDomain,
  createLinks,
  fatal,
  fmtCpu,
  fmtInt,
  fmtMs,
  fmtSliceRatios,
  ratioInterval,
  http,
  installCleanup,
  intFlag,
  keepTempDir,
  log,
  promValue,
  requestLists,
  alternateLoad,
  runLoad,
  SLICE_SECONDS,
  sleep,
  startBare,
  startClicktrail,
  summariseCpuProfile,
  table,
  tempDir,
  toolFlag,
  withDatabase,
  withDefaults,
  type BenchFigure,
  type BenchResult,
  type BenchRunOptions,
  type LoadResult,
  type LoadTool,
} from "./common.js";

/**
 * the issues' goals: 0.75 of bare node:http on SQLite, 0.6 on PostgreSQL (a network round trip per commit); with
 * targeting rules (platform detection on every click) 0.7 on SQLite
 */
const GOAL_RATIOS = { sqlite: 0.75, postgres: 0.6 } as const;
const GOAL_RATIO_RULES = 0.7;
const GOAL_P99_MS = 10;
const HOST = "go.bench.test";

const FLAGS = {
  duration: { default: "10", help: "seconds of measured load per server, in alternating slices of 2 s (bare, Clicktrail, Clicktrail, bare, …)" },
  warmup: { default: "2", help: "seconds of warm-up load per server (not measured)" },
  connections: { default: "64", help: "concurrent keep-alive connections" },
  links: { default: "10000", help: "links created on the benchmark domain (random slugs among them are hit)" },
  db: { default: "sqlite", help: "sqlite or postgres" },
  "pg-url": {
    default: "postgres://postgres@127.0.0.1:5432/postgres",
    help: "--db postgres: a server where the benchmark may create (and afterwards drop) a database of its own",
  },
  "sqlite-sync": { default: "", help: "CLICKTRAIL_SQLITE_SYNCHRONOUS for the server (FULL or NORMAL; empty = the server's default)" },
  rules: {
    default: "false",
    help: "true = every link has three targeting rules (iOS, Android, German speakers) and clicks come from four platforms",
  },
  tool: { default: "auto", help: "load generator: wrk, autocannon, or auto (wrk when it is on PATH)" },
  baseline: {
    default: "node-http",
    help: "the bare server: node-http (the issues' baseline) or fast-lane (node:http behind Clicktrail's fast lane answering the same 302: what Clicktrail's own work costs, without the fast lane's saving)",
  },
  profile: { default: "", help: "directory: run the Clicktrail server with --cpu-prof and summarise the profile" },
  keep: { default: "false", help: "true = keep the temporary data directory" },
};
const USAGE = "Redirect benchmark: bare node:http 302 vs Clicktrail's redirect path, then an every-answered-click-is-stored check.";

/** One run's settings (run() sets them; the functions below read them). */
interface Config {
  flags: { [K in keyof typeof FLAGS]: string };
  duration: number;
  warmup: number;
  connections: number;
  nLinks: number;
  db: "sqlite" | "postgres";
  withRules: boolean;
  goalRatio: number;
  tool: LoadTool;
  /** --baseline fast-lane */
  fastLaneBaseline: boolean;
}
let cfg: Config;

function configure(flags: { [K in keyof typeof FLAGS]: string }): Config {
  const db = flags.db.toLowerCase();
  if (db !== "sqlite" && db !== "postgres") fatal(`--db must be sqlite or postgres, got ${JSON.stringify(flags.db)}`);
  const withRules = flags.rules === "true";
  if (flags.baseline !== "node-http" && flags.baseline !== "fast-lane")
    fatal(`--baseline must be node-http or fast-lane, got ${JSON.stringify(flags.baseline)}`);
  return {
    flags,
    duration: intFlag(flags.duration, "duration"),
    warmup: intFlag(flags.warmup, "warmup", 0),
    connections: intFlag(flags.connections, "connections"),
    nLinks: intFlag(flags.links, "links"),
    db,
    withRules,
    goalRatio: withRules && db === "sqlite" ? GOAL_RATIO_RULES : GOAL_RATIOS[db],
    tool: toolFlag(flags.tool),
    fastLaneBaseline: flags.baseline === "fast-lane",
  };
}

// ---------------------------------------------------------------- load

interface Phase {
  name: string;
  warm: LoadResult | null;
  run: LoadResult;
}

type Load = ReturnType<typeof requestLists>;

/** --rules: clicks from four platforms and two languages, so each rule (and the default) is taken */
const MIXED_UAS = [
  BROWSER_UA,
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
];
const LANGUAGES = ["en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.5"];

/** Random slugs among the created links, a realistic browser (--rules: of four platforms), Host = the link domain. */
function linkRequests(slugs: string[], host: string): Load {
  const headers = (i: number) => ({
    host,
    "user-agent": cfg.withRules ? MIXED_UAS[i % MIXED_UAS.length]! : BROWSER_UA,
    accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": cfg.withRules ? LANGUAGES[(i >> 2) % 2]! : LANGUAGES[0]!,
    referer: "https://www.google.com/",
  });
  return requestLists((i) => ({ method: "GET", headers: headers(i), path: "/" + slugs[(Math.random() * slugs.length) | 0] }));
}

/** --rules: what every link gets */
const RULES = [
  { name: "ios", platform: ["ios"], target: "https://apps.apple.com/app/id1" },
  { name: "android", platform: ["android"], target: "https://play.google.com/store/apps/details?id=x" },
  { name: "german", language: ["de"], target: "https://example.com/de/" },
];

/** Warms both servers up, then measures them side by side (alternateLoad): (a) the bare server, (b) Clicktrail. */
async function load(a: { url: string; pid?: number }, b: { url: string; pid?: number }, requests: Load): Promise<[Phase, Phase]> {
  const { warmup, duration, connections, tool } = cfg;
  log(
    `\n[a) ${bareName()} on ${a.url}, b) Clicktrail on ${b.url}] warm-up ${warmup} s each, then ${duration} s each in alternating slices of ${SLICE_SECONDS} s, ${connections} connections (${tool})`,
  );
  const opts = { connections, requests: requests.requests, perClient: requests.perClient, tool };
  const oa = { ...opts, url: a.url, serverPid: a.pid };
  const ob = { ...opts, url: b.url, serverPid: b.pid };
  const warmA = warmup > 0 ? await runLoad({ ...oa, duration: warmup }) : null;
  const warmB = warmup > 0 ? await runLoad({ ...ob, duration: warmup }) : null;
  const [runA, runB] = await alternateLoad(oa, ob, duration);
  return [
    { name: `a) ${bareName()} 302`, warm: warmA, run: runA },
    { name: "b) Clicktrail redirect", warm: warmB, run: runB },
  ];
}

const bareName = () => (cfg.fastLaneBaseline ? "bare fast lane" : "bare node:http");

const answered = (p: Phase) => (p.warm?.ok ?? 0) + p.run.ok;

function phaseRow(p: Phase): string[] {
  const r = p.run;
  return [
    p.name,
    fmtInt(r.rps),
    fmtMs(r.p50),
    fmtMs(r.p99),
    fmtMs(r.max),
    fmtInt(r.ok),
    fmtInt(r.bad),
    fmtInt(r.errors),
    fmtCpu(r.serverCpu),
    fmtCpu(r.clientCpu),
  ];
}

// ---------------------------------------------------------------- (a) bare node:http

export const BARE = `(req, res) => { res.writeHead(302, { Location: "https://example.com/" }); res.end(); }`;

// ---------------------------------------------------------------- (b) Clicktrail

/** Click events with a link, and all events, in the server's store. */
async function countStored(dataDir: string, databaseUrl: string | null): Promise<{ stored: number; allEvents: number }> {
  return {
    stored: await countEvents(dataDir, databaseUrl, `SELECT count(*) AS n FROM events WHERE name = 'click' AND link_id IS NOT NULL`),
    allEvents: await countEvents(dataDir, databaseUrl, `SELECT count(*) AS n FROM events`),
  };
}

async function setup(base: string, slugs: string[]) {
  const domainId = await createDomain(base, HOST);
  const t0 = Date.now();
  const links = slugs.map((slug, i) => ({
    domain: HOST,
    slug,
    target: `https://example.com/landing/${i}?ref=bench`,
    ...(cfg.withRules ? { rules: RULES } : {}),
  }));
  await createLinks(base, links);
  log(`created domain ${HOST} (id ${domainId}) and ${fmtInt(slugs.length)} links in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

interface Durability {
  stored: number;
  allEvents: number;
  serverRedirects: number | null;
  shutdownMs: number;
  exit: string;
  batches: { count: number; avgSize: number; avgCommitMs: number } | null;
  /** wall time of warm-up + measured load, and from its end to SIGTERM (to cut the profile to the load) */
  loadMs: number;
  afterLoadMs: number;
}

/** Clicktrail, measured side by side with the bare server (which it stops once the load is over). */
async function clicktrail(
  slugs: string[],
  databaseUrl: string | null,
  bare: Awaited<ReturnType<typeof startBare>>,
): Promise<{ a: Phase; phase: Phase; dur: Durability }> {
  const flags = cfg.flags;
  const dataDir = tempDir("clicktrail-bench-redirect-");
  if (flags.keep === "true") keepTempDir(dataDir);
  const env: Record<string, string> = {};
  if (databaseUrl) env.CLICKTRAIL_DATABASE_URL = databaseUrl;
  if (flags["sqlite-sync"]) env.CLICKTRAIL_SQLITE_SYNCHRONOUS = flags["sqlite-sync"];
  const nodeArgs: string[] = [];
  if (flags.profile) {
    mkdirSync(flags.profile, { recursive: true });
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${path.resolve(flags.profile)}`);
  }
  const srv = await startClicktrail(dataDir, env, nodeArgs);
  const where = databaseUrl ? `PostgreSQL ${databaseUrl}` : `data dir ${dataDir}`;
  log(
    `\nClicktrail started on ${srv.base} (${where}${env.CLICKTRAIL_SQLITE_SYNCHRONOUS ? `, synchronous ${env.CLICKTRAIL_SQLITE_SYNCHRONOUS}` : ""})`,
  );
  await setup(srv.base, slugs);

  // one request by hand: the redirect must work before we measure it
  const probe = await http(srv.base, "GET", `/${slugs[0]}`, { headers: { host: HOST, "user-agent": BROWSER_UA } });
  if (probe.status !== 302 || !String(probe.headers.location).startsWith("https://example.com/landing/0")) {
    throw new Error(`GET /${slugs[0]} on ${HOST} answered ${probe.status} ${probe.headers.location ?? ""}: ${probe.body.slice(0, 300)}`);
  }

  const loadStart = Date.now();
  const [a, phase] = await load({ url: bare.url, pid: bare.proc.pid }, { url: srv.base, pid: srv.proc.pid }, linkRequests(slugs, HOST));
  const loadEnd = Date.now();
  await bare.stop();

  await sleep(300); // let requests cut off by the end of the load finish their commit
  const metrics = await http(srv.base, "GET", "/metrics");
  const serverRedirects = promValue(metrics.body, "clicktrail_redirects_total", { outcome: "redirect" });
  const bCount = promValue(metrics.body, "clicktrail_writer_batch_size_count");
  const bSum = promValue(metrics.body, "clicktrail_writer_batch_size_sum");
  const cSum = promValue(metrics.body, "clicktrail_writer_commit_seconds_sum");
  const batches = bCount && bSum !== null && cSum !== null ? { count: bCount, avgSize: bSum / bCount, avgCommitMs: (1000 * cSum) / bCount } : null;

  const t0 = Date.now();
  const afterLoadMs = t0 - loadEnd;
  const { code, exit } = await srv.stop();
  const shutdownMs = Date.now() - t0;
  if (code !== 0) log(`server output:\n${srv.output()}`);

  const { stored, allEvents } = await countStored(dataDir, databaseUrl);
  return { a, phase, dur: { stored, allEvents, serverRedirects, shutdownMs, exit, batches, loadMs: loadEnd - loadStart, afterLoadMs } };
}

// ---------------------------------------------------------------- main

/** Runs the benchmark with `opts` (flag names of --help) over the defaults; prints as it goes; the figures. */
export async function run(opts: BenchRunOptions = {}): Promise<BenchResult> {
  const o: BenchRunOptions = opts.short ? { duration: 5, warmup: 1, ...opts } : { ...opts };
  cfg = configure(withDefaults(FLAGS, o));
  installCleanup();
  return withDatabase(cfg.db, cfg.flags["pg-url"], measure);
}

async function measure(databaseUrl: string | null): Promise<BenchResult> {
  const { db, withRules, duration, warmup, connections, nLinks, tool, flags } = cfg;
  const GOAL_RATIO = cfg.goalRatio;
  const slugs = Array.from({ length: nLinks }, (_, i) => `b${i.toString(36).padStart(4, "0")}`);
  log(
    `Clicktrail redirect benchmark (${db}${withRules ? ", targeting rules" : ""}): ${duration} s per server after ${warmup} s warm-up, ${connections} connections, ${fmtInt(nLinks)} links, 127.0.0.1`,
  );
  log(`node ${process.version}, ${cpus().length} CPUs; load generator: ${tool === "wrk" ? "wrk (a child process)" : "autocannon in this process"}`);

  const { a, phase: b, dur } = await clicktrail(slugs, databaseUrl, await startBare(BARE, "", cfg.fastLaneBaseline));

  const ratio = b.run.rps / a.run.rps;
  const answeredTotal = answered(b) + 1; // and the probe

  log(
    "\n" +
      table(
        ["server", "req/s", "p50 ms", "p99 ms", "max ms", "2xx/3xx", "other status", "errors", "server CPU", "client CPU"],
        [phaseRow(a), phaseRow(b)],
      ),
  );
  log(`\nratio b/a req/s: ${ratio.toFixed(3)}`);
  const spread = fmtSliceRatios(a.run, b.run);
  if (spread) log(spread);
  if ((a.run.clientCpu ?? 0) >= 0.95) {
    log(
      `note: during (a) the load generator used ${fmtCpu(a.run.clientCpu)} of a core: the bare server's req/s is a floor set by the client, so the ratio flatters (b)`,
    );
  }
  if (dur.batches) {
    log(
      `group commit: ${fmtInt(dur.batches.count)} batches, ${dur.batches.avgSize.toFixed(1)} events/batch on average, ${dur.batches.avgCommitMs.toFixed(2)} ms per commit on average`,
    );
  }
  log(`shutdown after SIGTERM: ${dur.shutdownMs} ms, ${dur.exit}`);
  log(
    `stored ${fmtInt(dur.stored)} of ${fmtInt(answeredTotal)} answered redirects` +
      ` (${tool} 2xx/3xx incl. warm-up: ${fmtInt(answered(b))} + 1 probe; server's own redirect counter: ${dur.serverRedirects === null ? "n/a" : fmtInt(dur.serverRedirects)}; events in the log: ${fmtInt(dur.allEvents)})`,
  );
  const lostVsClient = answeredTotal - dur.stored;
  const lostVsServer = dur.serverRedirects === null ? 0 : dur.serverRedirects - dur.stored;
  if (lostVsClient > 0 || lostVsServer > 0) {
    log(`LOSS: ${fmtInt(Math.max(lostVsClient, lostVsServer))} answered redirects are not in the event log`);
  } else if (dur.stored > answeredTotal) {
    log(
      `no loss (${fmtInt(dur.stored - answeredTotal)} more stored than ${tool} counted: requests committed and answered while ${tool} was closing its connections)`,
    );
  } else log("no loss");

  const ok = (b: boolean) => (b ? "PASS" : "MISS");
  const stored = lostVsClient <= 0 && lostVsServer <= 0 && dur.exit === "exit code 0";
  log(
    `\ngoals: ratio >= ${GOAL_RATIO}: ${ratio.toFixed(2)} ${ok(ratio >= GOAL_RATIO)} | p99 <= ${GOAL_P99_MS} ms: ${fmtMs(b.run.p99)} ms ${ok(b.run.p99 <= GOAL_P99_MS)} | every answered request stored: ${ok(stored)}`,
  );

  if (flags.profile) {
    const dir = path.resolve(flags.profile);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => path.join(dir, f))
      .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs);
    if (files[0]) {
      const window = { skipEndMs: dur.shutdownMs + dur.afterLoadMs, lengthMs: dur.loadMs };
      log(
        `\nClicktrail server CPU profile, warm-up + measured load only (${(dur.loadMs / 1000).toFixed(1)} s):\n${summariseCpuProfile(files[0], 25, window)}`,
      );
    } else log(`\nno .cpuprofile was written in ${dir}`);
  }

  const what = `redirect, ${db === "postgres" ? "PostgreSQL" : "SQLite"}${withRules ? ", targeting rules" : ""}`;
  const issue = withRules ? 4 : db === "postgres" ? 3 : 2;
  const figures: BenchFigure[] = [
    {
      name: `${what} (${connections} conn., ${fmtInt(nLinks)} links)`,
      value: b.run.rps,
      unit: "req/s",
      baseline: a.run.rps,
      ratio,
      ratioInterval: ratioInterval(a.run, b.run),
      goal: `ratio ≥ ${GOAL_RATIO}`,
      met: ratio >= GOAL_RATIO,
      issue,
    },
  ];
  if (!withRules && db === "sqlite") {
    figures.push({
      name: `${what}: p99 latency`,
      value: b.run.p99,
      unit: "ms",
      baseline: a.run.p99,
      ratio: b.run.p99 / a.run.p99,
      goal: `p99 ≤ ${GOAL_P99_MS} ms`,
      met: b.run.p99 <= GOAL_P99_MS,
      issue,
    });
  }
  figures.push({
    name: `${what}: answered redirects stored`,
    value: dur.stored,
    unit: `of ${fmtInt(answeredTotal)}`,
    goal: "every answered request stored",
    met: stored,
    issue,
  });
  const notes: string[] = [];
  if ((a.run.clientCpu ?? 0) >= 0.95)
    notes.push(`${what}: the load generator used ${fmtCpu(a.run.clientCpu)} of a core against the bare server (its figure is a floor)`);
  return { bench: "redirect", tool, figures, notes };
}

cliMain(import.meta.url, FLAGS, USAGE, run);
