/**
 * The second round of `npm test`: the API suites again, each app on a PostgreSQL database of its own, then the
 * scale-out suites (test/postgres/). Without PostgreSQL and Redis it says so on one line and skips; with CI=true their
 * absence fails the run.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PG_ADMIN_URL, REDIS_URL, reachable } from "./pg.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const API_SUITES = [
  "api-links",
  "api-errors",
  "api-stats",
  "redirect-limits",
  "api-targeting",
  "o7tracker",
  "api-session",
  "tracking-server",
  "webhooks",
  "api-ingest",
  "microticks",
  "tracking-webhook",
  "hiitrack",
  "api-funnels",
  "security",
  "authz-matrix",
  "fast-lane",
].map((n) => path.join(here, `${n}.test.js`));
const SCALE_OUT = readdirSync(path.join(here, "postgres"))
  .filter((f) => f.endsWith(".test.js"))
  .map((f) => path.join(here, "postgres", f));

const [pgUp, redisUp] = await Promise.all([reachable(PG_ADMIN_URL, 5432), reachable(REDIS_URL, 6379)]);
if (!pgUp || !redisUp) {
  const missing = [!pgUp && `PostgreSQL (${PG_ADMIN_URL})`, !redisUp && `Redis (${REDIS_URL})`].filter(Boolean).join(" and ");
  if (process.env.CI === "true") {
    console.error(`FAIL: the PostgreSQL and Redis suites are required in CI, but ${missing} cannot be reached. See DEVELOPERS.md to start them.`);
    process.exit(1);
  }
  console.log(`SKIPPED: the PostgreSQL and Redis suites (${missing} not reachable; see DEVELOPERS.md). With CI=true this fails.`);
  process.exit(0);
}

console.log(`# PostgreSQL round: ${API_SUITES.length} API suites on PostgreSQL, then ${SCALE_OUT.length} scale-out suites`);
// Every test is bounded (--test-timeout) and a file whose handles keep it alive is ended (--test-force-exit); the
// round as a whole is bounded too, so a hang fails the run with a message instead of stalling CI.
const ROUND_LIMIT_MS = 20 * 60_000;
const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-timeout=300000", "--test-force-exit", ...API_SUITES, ...SCALE_OUT], {
  env: { ...process.env, CLICKTRAIL_TEST_DB: "postgres" },
  stdio: "inherit",
});
const limit = setTimeout(() => {
  console.error(`FAIL: the PostgreSQL round did not finish within ${ROUND_LIMIT_MS / 60_000} minutes; stopping it.`);
  child.kill("SIGKILL");
}, ROUND_LIMIT_MS);
child.on("exit", (code, signal) => {
  clearTimeout(limit);
  process.exit(code ?? (signal ? 1 : 0));
});
