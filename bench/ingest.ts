/**
 * Ingest benchmark: single events per second (POST /api/v1/events, one event each) against a bare node:http server
 * that reads the body and answers 201 in the same run (goal: ratio >= 0.7), then batches of 100 and 1,000 events
 * (goal: >= 200,000 events/s batched on SQLite), and every acknowledged event counted in the store.
 *
 *   npm run bench:ingest
 *   node dist/bench/ingest.js --duration 10 --connections 64 [--tool wrk|autocannon] [--db postgres]
 */
import {
  BROWSER_UA,
  cliMain,
  countEvents,
  createApp,
  fmtCpu,
  fmtInt,
  fmtMs,
  fmtSliceRatios,
  ratioInterval,
  installCleanup,
  intFlag,
  log,
  runLoad,
  alternateLoad,
  SLICE_SECONDS,
  startBare,
  startClicktrail,
  table,
  tempDir,
  toolFlag,
  withDatabase,
  withDefaults,
  type BenchFigure,
  type BenchResult,
  type BenchRunOptions,
  type LoadOptions,
  type LoadResult,
  type LoadTool,
} from "./common.js";

const GOAL_RATIO = 0.7;
const GOAL_BATCHED = 200_000;

const FLAGS = {
  duration: { default: "10", help: "seconds of measured load per phase" },
  connections: { default: "64", help: "concurrent keep-alive connections (single events)" },
  "batch-connections": { default: "8", help: "concurrent connections for batches" },
  tool: { default: "auto", help: "load generator: wrk, autocannon, or auto (wrk when it is on PATH)" },
  db: { default: "sqlite", help: "sqlite or postgres" },
  "pg-url": {
    default: "postgres://postgres@127.0.0.1:5432/postgres",
    help: "--db postgres: a server where the benchmark may create (and afterwards drop) a database of its own",
  },
};
const USAGE = "Ingest benchmark: single and batched events vs bare node:http, and stored vs acknowledged.";

/** the bare server's request handler: reads the body, parses it, answers 201 */
export const BARE = `(req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => { JSON.parse(Buffer.concat(chunks).toString() || "{}"); res.writeHead(201, { "Content-Type": "application/json" }); res.end('{"accepted":1}'); });
}`;

/** POST /api/v1/events with `body` on every request */
function eventLoad(url: string, body: string, conns: number, tool: LoadTool, pid?: number): Omit<LoadOptions, "duration"> {
  return {
    url: url + "/api/v1/events",
    connections: conns,
    tool,
    timeoutSec: 20,
    requests: [{ method: "POST", path: "/api/v1/events", headers: { "content-type": "application/json", "user-agent": BROWSER_UA }, body }],
    serverPid: pid,
  };
}

function cannon(url: string, body: string, conns: number, o: { duration: number; tool: LoadTool }, pid?: number): Promise<LoadResult> {
  return runLoad({ ...eventLoad(url, body, conns, o.tool, pid), duration: o.duration });
}

/** Runs the benchmark with `opts` (flag names of --help) over the defaults; prints as it goes; the figures. */
export async function run(opts: BenchRunOptions = {}): Promise<BenchResult> {
  const flags = withDefaults(FLAGS, opts.short ? { duration: 5, ...opts } : opts);
  const duration = intFlag(flags.duration, "duration");
  const connections = intFlag(flags.connections, "connections");
  const batchConnections = intFlag(flags["batch-connections"], "batch-connections");
  const tool = toolFlag(flags.tool);
  installCleanup();
  return withDatabase(flags.db, flags["pg-url"], (databaseUrl) => measure({ duration, connections, batchConnections, tool }, databaseUrl));
}

async function measure(
  o: { duration: number; connections: number; batchConnections: number; tool: LoadTool },
  databaseUrl: string | null,
): Promise<BenchResult> {
  const { duration, connections, batchConnections, tool } = o;
  const dir = tempDir("clicktrail-bench-ingest-");
  const srv = await startClicktrail(dir, {
    CLICKTRAIL_INGEST_RATE_LIMIT: "100000000",
    ...(databaseUrl ? { CLICKTRAIL_DATABASE_URL: databaseUrl } : {}),
  });
  const { key } = await createApp(srv.base, "bench");
  const event = (i: number) => ({ name: "tap", data: { target: "button#start", x: i % 1000, y: 300 } });
  const single = JSON.stringify({ key, ...event(1) });
  const batch = (n: number) => JSON.stringify({ key, events: Array.from({ length: n }, (_, i) => event(i)) });
  const db = databaseUrl ? "PostgreSQL" : "SQLite";

  const bare = await startBare(BARE);
  log(
    `[single] bare node:http and Clicktrail on ${db} (${connections} connections, 1 s warm-up each, then ${duration} s each in alternating slices of ${SLICE_SECONDS} s, ${tool})`,
  );
  const oa = eventLoad(bare.url, single, connections, tool, bare.proc.pid);
  const ob = eventLoad(srv.base, single, connections, tool, srv.proc.pid);
  await runLoad({ ...oa, duration: 1 });
  const warmB = await runLoad({ ...ob, duration: 1 });
  const [a, b] = await alternateLoad(oa, ob, duration);
  await bare.stop();
  let acknowledged = warmB.ok + b.ok;
  const row = (load: string, who: string, r: LoadResult, n: number) => [
    load,
    who,
    fmtInt(r.rps),
    fmtInt(r.rps * n),
    fmtMs(r.p99),
    fmtInt(r.bad + r.errors),
    fmtCpu(r.serverCpu),
    fmtCpu(r.clientCpu),
  ];
  const rows: string[][] = [row("single", "bare node:http", a, 1), row("single", "Clicktrail", b, 1)];
  const ratio = b.rps / a.rps;
  let bestBatched = 0;
  let bestN = 0;
  for (const n of [100, 1000]) {
    log(`[batch ${n}] Clicktrail (${batchConnections} connections)`);
    const r = await cannon(srv.base, batch(n), batchConnections, o, srv.proc.pid);
    acknowledged += r.ok * n;
    if (r.rps * n > bestBatched) [bestBatched, bestN] = [r.rps * n, n];
    rows.push(row(`batch ${n}`, "Clicktrail", r, n));
  }
  await srv.stop();
  const stored = await countEvents(dir, databaseUrl, `SELECT count(*) AS n FROM events WHERE source = 'api'`);
  log("\n" + table(["load", "server", "req/s", "events/s", "p99 ms", "non-2xx + errors", "server CPU", "client CPU"], rows));
  log(`\nsingle-event ratio b/a: ${ratio.toFixed(2)}`);
  const spread = fmtSliceRatios(a, b);
  if (spread) log(spread);
  log(
    `stored ${fmtInt(stored)} events for ${fmtInt(acknowledged)} acknowledged (${tool}'s 2xx × events per request)${stored >= acknowledged ? ": no loss" : ": LOSS"}`,
  );
  const batchedGoal = !databaseUrl;
  log(
    `\ngoals: single ratio >= ${GOAL_RATIO}: ${ratio.toFixed(2)} ${ratio >= GOAL_RATIO ? "PASS" : "MISS"} | batched >= ${fmtInt(GOAL_BATCHED)} events/s${batchedGoal ? "" : " (a SQLite goal)"}: ${fmtInt(bestBatched)} ${bestBatched >= GOAL_BATCHED ? "PASS" : "MISS"} | every acknowledged event stored: ${stored >= acknowledged ? "PASS" : "MISS"}`,
  );
  const figures: BenchFigure[] = [
    {
      name: `ingest, single events, ${db} (${connections} conn.)`,
      value: b.rps,
      unit: "events/s",
      baseline: a.rps,
      ratio,
      ratioInterval: ratioInterval(a, b),
      goal: `ratio ≥ ${GOAL_RATIO}`,
      met: ratio >= GOAL_RATIO,
      issue: 7,
    },
    {
      name: `ingest, batches of ${bestN}, ${db} (${batchConnections} conn.)`,
      value: bestBatched,
      unit: "events/s",
      ...(batchedGoal ? { goal: `≥ ${fmtInt(GOAL_BATCHED)} events/s`, met: bestBatched >= GOAL_BATCHED } : {}),
      issue: 7,
    },
    {
      name: `ingest, ${db}: acknowledged events stored`,
      value: stored,
      unit: `of ${fmtInt(acknowledged)}`,
      goal: "every acknowledged event stored",
      met: stored >= acknowledged,
      issue: 7,
    },
  ];
  return { bench: "ingest", tool, figures };
}

cliMain(import.meta.url, FLAGS, USAGE, run);
