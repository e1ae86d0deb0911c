/**
 * Ingest benchmark: single events per second (POST /api/v1/events, one event each) against a bare node:http server
 * that reads the body and answers 201 in the same run (goal: ratio >= 0.7), then batches of 100 and 1,000 events
 * (goal: >= 200,000 events/s batched on SQLite), and every acknowledged event counted in the store.
 *
 *   npm run bench:ingest
 *   node dist/bench/ingest.js --duration 10 --connections 64
 */
import autocannon, { type Result } from "autocannon";
import Database from "better-sqlite3";
import path from "node:path";
import {
  ADMIN_KEY,
  BROWSER_UA,
  fmtInt,
  fmtMs,
  http,
  installCleanup,
  intFlag,
  log,
  parseFlags,
  runMain,
  startBare,
  startClicktrail,
  table,
  tempDir,
  waitExit,
} from "./common.js";

const GOAL_RATIO = 0.7;
const GOAL_BATCHED = 200_000;

const flags = parseFlags(
  process.argv.slice(2),
  {
    duration: { default: "10", help: "seconds of measured load per phase" },
    connections: { default: "64", help: "concurrent keep-alive connections (single events)" },
    "batch-connections": { default: "8", help: "concurrent connections for batches" },
  },
  "Ingest benchmark: single and batched events vs bare node:http, and stored vs acknowledged.",
);
const duration = intFlag(flags.duration, "duration");
const connections = intFlag(flags.connections, "connections");
const batchConnections = intFlag(flags["batch-connections"], "batch-connections");
installCleanup();

const BARE = `
const http = require("node:http");
const s = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => { JSON.parse(Buffer.concat(chunks).toString() || "{}"); res.writeHead(201, { "Content-Type": "application/json" }); res.end('{"accepted":1}'); });
});
s.keepAliveTimeout = 65000;
s.listen(0, "127.0.0.1", () => process.stdout.write("PORT " + s.address().port + "\\n"));
process.on("SIGTERM", () => process.exit(0));
`;

function cannon(url: string, body: string, conns: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      {
        url: url + "/api/v1/events",
        method: "POST",
        connections: conns,
        duration,
        timeout: 20,
        headers: { "content-type": "application/json", "user-agent": BROWSER_UA },
        body,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    process.once("exit", () => inst.stop());
  });
}

async function main() {
  const dir = tempDir("clicktrail-bench-ingest-");
  const srv = await startClicktrail(dir, { CLICKTRAIL_INGEST_RATE_LIMIT: "100000000" });
  const app = await http(srv.base, "POST", "/api/v1/apps", { key: ADMIN_KEY, body: { name: "bench" } });
  const key = app.json.key as string;
  const event = (i: number) => ({ name: "tap", data: { target: "button#start", x: i % 1000, y: 300 } });
  const single = JSON.stringify({ key, ...event(1) });
  const batch = (n: number) => JSON.stringify({ key, events: Array.from({ length: n }, (_, i) => event(i)) });

  const bare = await startBare(BARE);
  log(`[single] bare node:http, then Clicktrail (${connections} connections, ${duration} s each)`);
  const a = await cannon(bare.url, single, connections);
  await bare.stop();
  const b = await cannon(srv.base, single, connections);
  let acknowledged = b["2xx"];
  const rows: string[][] = [
    ["single", "bare node:http", fmtInt(a.requests.average), fmtInt(a.requests.average), fmtMs(a.latency.p99), fmtInt(a.non2xx)],
    ["single", "Clicktrail", fmtInt(b.requests.average), fmtInt(b.requests.average), fmtMs(b.latency.p99), fmtInt(b.non2xx)],
  ];
  const ratio = b.requests.average / a.requests.average;
  let bestBatched = 0;
  for (const n of [100, 1000]) {
    log(`[batch ${n}] Clicktrail (${batchConnections} connections)`);
    const r = await cannon(srv.base, batch(n), batchConnections);
    acknowledged += r["2xx"] * n;
    bestBatched = Math.max(bestBatched, r.requests.average * n);
    rows.push([`batch ${n}`, "Clicktrail", fmtInt(r.requests.average), fmtInt(r.requests.average * n), fmtMs(r.latency.p99), fmtInt(r.non2xx)]);
  }
  srv.proc.kill("SIGTERM");
  await waitExit(srv.proc, 60_000);
  const db = new Database(path.join(dir, "clicktrail.db"), { readonly: true });
  const stored = (db.prepare(`SELECT count(*) AS n FROM events WHERE source = 'api'`).get() as { n: number }).n;
  db.close();
  log("\n" + table(["load", "server", "req/s", "events/s", "p99 ms", "non-2xx"], rows));
  log(`\nsingle-event ratio b/a: ${ratio.toFixed(2)}`);
  log(
    `stored ${fmtInt(stored)} events for ${fmtInt(acknowledged)} acknowledged (autocannon's 2xx × events per request)${stored >= acknowledged ? ": no loss" : ": LOSS"}`,
  );
  log(
    `\ngoals: single ratio >= ${GOAL_RATIO}: ${ratio.toFixed(2)} ${ratio >= GOAL_RATIO ? "PASS" : "MISS"} | batched >= ${fmtInt(GOAL_BATCHED)} events/s: ${fmtInt(bestBatched)} ${bestBatched >= GOAL_BATCHED ? "PASS" : "MISS"} | every acknowledged event stored: ${stored >= acknowledged ? "PASS" : "MISS"}`,
  );
}

runMain(main);
