/**
 * The side-by-side method's own error: two identical bare node:http servers measured against each other by
 * alternateLoad, exactly as the ratio benchmarks measure Clicktrail against its baseline. The ratio should be 1; how far
 * each round lands from it is the noise (and any lean) that every ratio of the other benchmarks carries.
 *
 *   npm run bench:calibrate
 *   node dist/bench/calibrate.js --rounds 6 --duration 10
 */
import {
  alternateLoad,
  cliMain,
  fmtInt,
  installCleanup,
  intFlag,
  log,
  requestLists,
  runLoad,
  sliceRatios,
  startBare,
  table,
  toolFlag,
  withDefaults,
  type BenchResult,
  type BenchRunOptions,
} from "./common.js";
import { BARE } from "./redirect.js";

const FLAGS = {
  rounds: { default: "6", help: "measurements (each: `duration` seconds per server in alternating slices)" },
  duration: { default: "10", help: "seconds of measured load per server and round" },
  connections: { default: "64", help: "concurrent keep-alive connections" },
  tool: { default: "auto", help: "load generator: wrk, autocannon, or auto (wrk when it is on PATH)" },
};
const USAGE = "Calibration: two identical bare node:http servers through the ratio benchmarks' side-by-side method; the ratio should be 1.";

export async function run(opts: BenchRunOptions): Promise<BenchResult> {
  const flags = withDefaults(FLAGS, opts);
  const rounds = intFlag(flags.rounds, "rounds");
  const duration = intFlag(flags.duration, "duration");
  const connections = intFlag(flags.connections, "connections");
  const tool = toolFlag(flags.tool);
  installCleanup();
  const [one, two] = [await startBare(BARE), await startBare(BARE)];
  const reqs = requestLists((i) => ({ method: "GET", path: `/s${i}`, headers: { host: "go.bench.test" } }));
  const base = { connections, requests: reqs.requests, perClient: reqs.perClient, tool };
  log(`Calibration: two bare node:http servers, ${rounds} rounds of ${duration} s each in alternating slices, ${connections} connections (${tool})`);
  await runLoad({ ...base, url: one.url, duration: 2 });
  await runLoad({ ...base, url: two.url, duration: 2 });
  const rows: string[][] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // each server takes each place in turn: a lean of the method shows as ratios on both sides of 1, not as one server
    const [a, b] = r % 2 === 0 ? [one, two] : [two, one];
    const [ra, rb] = await alternateLoad({ ...base, url: a.url }, { ...base, url: b.url }, duration);
    const ratio = rb.rps / ra.rps;
    ratios.push(ratio);
    const pairs = sliceRatios(ra, rb);
    const interval = pairs ? `${pairs.low.toFixed(3)}–${pairs.high.toFixed(3)}` : "-";
    rows.push([String(r + 1), r % 2 === 0 ? "1, 2" : "2, 1", fmtInt(ra.rps), fmtInt(rb.rps), ratio.toFixed(3), interval]);
  }
  await one.stop();
  await two.stop();
  log("\n" + table(["round", "servers as a, b", "a req/s", "b req/s", "ratio b/a", "95 % interval (slice pairs)"], rows));
  const sorted = [...ratios].sort((x, y) => x - y);
  const mean = ratios.reduce((s, x) => s + x, 0) / ratios.length;
  log(
    `\nratio b/a: mean ${mean.toFixed(3)}, median ${sorted[sorted.length >> 1]!.toFixed(3)}, range ${sorted[0]!.toFixed(3)}–${sorted.at(-1)!.toFixed(3)}` +
      ` (a ratio benchmark's figure is this close to the truth, at best)`,
  );
  return { bench: "calibrate", tool, figures: [] };
}

cliMain(import.meta.url, FLAGS, USAGE, run);
