/**
 * How far each ratio goal is from what this machine allows: every HTTP benchmark with a ratio goal runs three times,
 * each against its own bare node:http run:
 *
 *   as shipped     Clicktrail as it is
 *   hand-over only events journaled and handed to the writer thread, which acknowledges them without committing or
 *                  counting them (the writer thread's own work taken away: inserts, rollups)
 *   no storage     every event acknowledged at once and dropped (the request path without the event log)
 *   bare in proc   the benchmark's bare handler answering inside Clicktrail's process (the process without the
 *                  request path: what the ratio can reach when Clicktrail does nothing at all)
 *
 * Runs on a shared machine vary by a fifth from one minute to the next, bare baseline included: the modes take turns
 * round after round (--repeat), and the table gives each ratio's median and range.
 *
 * The parts are taken away by bench/ceiling-preload.ts, loaded into the server with `node --import`; the server has no
 * such switch of its own.
 *
 *   npm run bench:ceilings
 *   node dist/bench/ceilings.js [--only redirect,tracking] [--duration 5] [--tool wrk|autocannon]
 */
import { fileURLToPath } from "node:url";
import {
  cliMain,
  installCleanup,
  killChildren,
  log,
  machine,
  postgresReachable,
  table,
  toolFlag,
  type BenchResult,
  type BenchRunOptions,
} from "./common.js";

const FLAGS = {
  only: { default: "", help: "comma-separated benchmarks (redirect, redirect-rules, redirect-pg, tracking, ingest)" },
  duration: { default: "5", help: "seconds of measured load per server and phase" },
  repeat: { default: "3", help: "rounds (each runs every mode once); the table shows each ratio's median and range" },
  tool: { default: "auto", help: "load generator: wrk, autocannon, or auto (wrk when it is on PATH)" },
  "pg-url": { default: "postgres://postgres@127.0.0.1:5432/postgres", help: "PostgreSQL for redirect-pg (skipped when it does not answer)" },
};
const USAGE = "Runs the benchmarks with ratio goals as shipped, without storage, and with a bare handler in Clicktrail's process.";

type Runner = (opts: BenchRunOptions) => Promise<BenchResult>;

interface Entry {
  id: string;
  load: () => Promise<{ run: Runner; bare: string; setup: string }>;
  /** host + path of the load's requests (what the bare handler answers in `raw` mode) */
  match: string;
  opts: BenchRunOptions;
  needsPostgres?: boolean;
}

const MODES = [
  { id: "", name: "as shipped" },
  { id: "handover", name: "hand-over only" },
  { id: "discard", name: "no storage" },
  { id: "raw", name: "bare in proc" },
] as const;

/** "median (min–max)" of ratios, or "-" */
function spread(v: number[]): string {
  if (v.length === 0) return "-";
  const s = [...v].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return s.length === 1 ? median.toFixed(2) : `${median.toFixed(2)} (${s[0]!.toFixed(2)}–${s[s.length - 1]!.toFixed(2)})`;
}

const PRELOAD = fileURLToPath(new URL("./ceiling-preload.js", import.meta.url));

export async function run(opts: BenchRunOptions = {}): Promise<string[][]> {
  installCleanup();
  const tool = toolFlag(String(opts.tool ?? "auto"));
  const pgUrl = String(opts["pg-url"] ?? FLAGS["pg-url"].default);
  const only = String(opts.only ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const repeat = Number(opts.repeat ?? FLAGS.repeat.default);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number of rounds, 1 or more; got ${String(opts.repeat)}`);
  const base = { short: true, tool, duration: Number(opts.duration ?? FLAGS.duration.default) };
  const redirect = async () => {
    const m = await import("./redirect.js");
    return { run: m.run, bare: m.BARE, setup: "" };
  };
  const entries: Entry[] = [
    { id: "redirect", load: redirect, match: "^go\\.bench\\.test", opts: base },
    { id: "redirect-rules", load: redirect, match: "^go\\.bench\\.test", opts: { ...base, rules: "true" } },
    { id: "redirect-pg", load: redirect, match: "^go\\.bench\\.test", opts: { ...base, db: "postgres", "pg-url": pgUrl }, needsPostgres: true },
    {
      id: "tracking",
      load: async () => {
        const m = await import("./tracking.js");
        return { run: m.run, bare: m.BARE, setup: m.BARE_SETUP };
      },
      match: "^[^/]*/t/[co]/",
      opts: base,
    },
    {
      id: "ingest",
      load: async () => {
        const m = await import("./ingest.js");
        return { run: m.run, bare: m.BARE, setup: "" };
      },
      match: "^[^/]*/api/v1/events$",
      opts: base,
    },
  ];
  const pgUp = await postgresReachable(pgUrl);
  const rows: string[][] = [];
  const saved = { ...process.env };
  for (const e of entries) {
    if (only.length && !only.includes(e.id)) continue;
    if (e.needsPostgres && !pgUp) {
      log(`skipped ${e.id}: PostgreSQL does not answer at ${pgUrl}`);
      continue;
    }
    const m = await e.load();
    /** figure name → goal, ratios per mode */
    const byFigure = new Map<string, { goal: string; ratios: number[][] }>();
    for (let round = 1; round <= repeat; round++)
      for (const [i, mode] of MODES.entries()) {
        log(`\n======== ${e.id}: ${mode.name} (round ${round} of ${repeat}) ========`);
        if (mode.id) {
          process.env.BENCH_SERVER_NODE_ARGS = `${saved.BENCH_SERVER_NODE_ARGS ?? ""} --import ${PRELOAD}`;
          process.env.CLICKTRAIL_BENCH_CEILING = mode.id;
          process.env.CLICKTRAIL_BENCH_RAW_MATCH = e.match;
          process.env.CLICKTRAIL_BENCH_RAW_HANDLER = m.bare;
          process.env.CLICKTRAIL_BENCH_RAW_SETUP = m.setup;
        }
        try {
          const r = await m.run(e.opts);
          for (const f of r.figures) {
            if (f.ratio === undefined || f.unit === "ms") continue;
            const row = byFigure.get(f.name) ?? { goal: `${f.goal ?? ""}${f.issue ? ` (#${f.issue})` : ""}`, ratios: MODES.map(() => []) };
            row.ratios[i]!.push(f.ratio);
            byFigure.set(f.name, row);
          }
        } catch (err) {
          log(`\n${e.id} (${mode.name}) failed: ${(err as Error).stack ?? err}`);
        } finally {
          for (const k of [
            "BENCH_SERVER_NODE_ARGS",
            "CLICKTRAIL_BENCH_CEILING",
            "CLICKTRAIL_BENCH_RAW_MATCH",
            "CLICKTRAIL_BENCH_RAW_HANDLER",
            "CLICKTRAIL_BENCH_RAW_SETUP",
          ]) {
            if (saved[k] === undefined) delete process.env[k];
            else process.env[k] = saved[k];
          }
          killChildren();
        }
      }
    for (const [name, f] of byFigure) rows.push([name, f.goal, ...f.ratios.map(spread)]);
  }
  const header = ["figure", "goal (issue)", ...MODES.map((x) => `ratio ${x.name}`)];
  const m = machine();
  log(`\n\n======== ceilings ========\n`);
  log(table(header, rows));
  log(`\nmachine: ${m.cpu}, ${m.cores} cores, ${m.ramGB} GB RAM, Node ${m.node}; ${new Date().toISOString()}; ${tool}`);
  log(`\n| ${header.join(" | ")} |\n| ${header.map(() => "---").join(" | ")} |\n${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}`);
  return rows;
}

cliMain(import.meta.url, FLAGS, USAGE, run);
