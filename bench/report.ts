/**
 * One report: runs every benchmark with short durations (each benchmark's `run({ short: true })`), then prints one
 * table — each figure, the bare node:http baseline measured in the same run, the ratio and the goal — and writes it
 * with the machine and the date into docs/performance.md.
 *
 *   npm run bench
 *   node dist/bench/report.js [--only redirect,ingest] [--tool wrk|autocannon] [--soak-minutes 1] [--no-write true]
 *
 * bench/funnel.ts joins the report when it exists and exports `run(opts)` resolving to a BenchResult (bench/common.ts).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
  ROOT,
  cliMain,
  fmtInt,
  installCleanup,
  killChildren,
  log,
  machine,
  postgresReachable,
  table,
  toolFlag,
  type BenchFigure,
  type BenchResult,
  type BenchRunOptions,
} from "./common.js";

const FLAGS = {
  only: {
    default: "",
    help: "comma-separated benchmarks to run (redirect, redirect-rules, redirect-pg, stats, links, tracking, ingest, soak, funnel)",
  },
  tool: { default: "auto", help: "load generator for the HTTP benchmarks: wrk, autocannon, or auto (wrk when it is on PATH)" },
  "soak-minutes": { default: "1", help: "minutes of the soak in the report (0 = skip; npm run bench:soak runs 10)" },
  "pg-url": { default: "postgres://postgres@127.0.0.1:5432/postgres", help: "PostgreSQL for the PostgreSQL rows (skipped when it does not answer)" },
  "no-write": { default: "false", help: "true = print the table only, leave docs/performance.md alone" },
};
const USAGE = "Runs every benchmark with short durations and prints one table (and writes docs/performance.md).";

type Runner = (opts: BenchRunOptions) => Promise<BenchResult>;

interface Entry {
  id: string;
  what: string;
  load: () => Promise<Runner | null>;
  opts: BenchRunOptions;
  needsPostgres?: boolean;
}

/** bench/funnel.ts, by whoever writes it: included when it is built and exports run(). */
async function funnelRunner(): Promise<Runner | null> {
  const file = path.join(ROOT, "dist/bench/funnel.js");
  if (!existsSync(path.join(ROOT, "bench/funnel.ts")) || !existsSync(file)) return null;
  const mod = (await import(pathToFileURL(file).href)) as { run?: unknown };
  return typeof mod.run === "function" ? (mod.run as Runner) : null;
}

function fmtValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "-";
  if (unit === "ms") return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  if (unit === "%") return `${v >= 0 ? "+" : ""}${v.toFixed(1)}`;
  return Math.abs(v) >= 100 ? fmtInt(v) : v.toFixed(2);
}

const metText = (f: BenchFigure) => (f.met === undefined ? (f.goal ? "n/a" : "") : f.met ? "met" : "MISSED");

function rows(results: BenchResult[]): string[][] {
  return results.flatMap((r) =>
    r.figures.map((f) => [
      f.name,
      `${fmtValue(f.value, f.unit)} ${f.unit}`,
      f.baseline === undefined ? "" : `${fmtValue(f.baseline, f.unit)}${f.baselineName ? ` (${f.baselineName})` : ""}`,
      f.ratio === undefined
        ? ""
        : f.ratio.toFixed(2) + (f.ratioInterval ? ` (${f.ratioInterval[0].toFixed(2)}–${f.ratioInterval[1].toFixed(2)})` : ""),
      f.goal ? `${f.goal}${f.issue ? ` (#${f.issue})` : ""}` : "",
      metText(f),
      f.unit === "ops/s" ? "" : (r.tool ?? ""),
    ]),
  );
}

/** docs/performance.md: from this line on, the file is written by hand and `npm run bench` leaves it as it is */
const HAND_WRITTEN = "<!-- written by hand from here on: npm run bench rewrites only what is above -->";

const HEADER = ["figure", "value", "bare node:http baseline (same run)", "ratio (95 % interval)", "goal (issue)", "met", "load tool"];

function markdown(header: string[], body: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...body.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

export async function run(opts: BenchRunOptions = {}): Promise<BenchResult[]> {
  installCleanup();
  const tool = toolFlag(String(opts.tool ?? "auto"));
  const pgUrl = String(opts["pg-url"] ?? FLAGS["pg-url"].default);
  const soakMinutes = Number(opts["soak-minutes"] ?? FLAGS["soak-minutes"].default);
  const only = String(opts.only ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const short = { short: true, tool };
  const entries: Entry[] = [
    { id: "redirect", what: "redirect, SQLite", load: async () => (await import("./redirect.js")).run, opts: { ...short } },
    {
      id: "redirect-rules",
      what: "redirect with targeting rules",
      load: async () => (await import("./redirect.js")).run,
      opts: { ...short, rules: "true" },
    },
    {
      id: "redirect-pg",
      what: "redirect, PostgreSQL",
      load: async () => (await import("./redirect.js")).run,
      opts: { ...short, db: "postgres", "pg-url": pgUrl },
      needsPostgres: true,
    },
    { id: "tracking", what: "tracking links and pixels", load: async () => (await import("./tracking.js")).run, opts: { ...short } },
    { id: "ingest", what: "event ingest", load: async () => (await import("./ingest.js")).run, opts: { ...short } },
    { id: "stats", what: "stats latency", load: async () => (await import("./stats.js")).run, opts: { ...short } },
    { id: "links", what: "link listing", load: async () => (await import("./links.js")).run, opts: { ...short } },
    { id: "funnel", what: "funnels", load: funnelRunner, opts: { ...short } },
  ];
  if (soakMinutes > 0)
    entries.push({ id: "soak", what: "soak", load: async () => (await import("./soak.js")).run, opts: { ...short, minutes: soakMinutes } });

  const results: BenchResult[] = [];
  const skipped: string[] = [];
  const t0 = Date.now();
  const pgUp = await postgresReachable(pgUrl);
  for (const e of entries) {
    if (only.length && !only.includes(e.id)) continue;
    if (e.needsPostgres && !pgUp) {
      skipped.push(`${e.what}: PostgreSQL does not answer at ${pgUrl}`);
      continue;
    }
    const runner = await e.load();
    if (!runner) {
      skipped.push(`${e.what}: bench/funnel.ts is not there yet (or does not export run())`);
      continue;
    }
    log(`\n======== ${e.what} (${e.id}) ========`);
    try {
      results.push(await runner(e.opts));
    } catch (err) {
      skipped.push(`${e.what}: failed: ${(err as Error).message.split("\n")[0]}`);
      log(`\n${e.what} failed: ${(err as Error).stack ?? err}`);
    }
    killChildren();
  }
  const minutes = ((Date.now() - t0) / 60_000).toFixed(1);

  const body = rows(results);
  const notes = [...results.flatMap((r) => r.notes ?? []), ...skipped.map((s) => `skipped: ${s}`)];
  const m = machine();
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const toolText =
    tool === "wrk"
      ? "wrk (C, a separate process, one thread) drives the HTTP load"
      : "autocannon (in the benchmark's own Node process; it takes about a core on its own) drives the HTTP load";
  log(`\n\n======== report (${minutes} min) ========\n`);
  log(table(HEADER, body));
  if (notes.length) log(`\n${notes.map((n) => `- ${n}`).join("\n")}`);
  log(`\nmachine: ${m.cpu}, ${m.cores} cores, ${m.ramGB} GB RAM, Node ${m.node}, ${m.os}; ${date}; ${toolText}`);

  if (opts["no-write"] !== "true" && opts["no-write"] !== true) {
    const md = `# Performance

The latest \`npm run bench\` (bench/report.ts): every benchmark with short load phases, one table. Each figure comes
with the bare \`node:http\` server measured in the same run, on the same machine, with the same load generator (or, for
latencies, \`GET /healthz\` of the same server), the ratio, and the goal of the issue that asks for it. Short runs on a
shared 2-core machine are noisy: the standalone benchmarks (\`npm run bench:redirect\`, \`bench:stats\`, …) take longer
and larger settings; \`npm run bench:soak\` runs 10 minutes. A ratio measured in alternating slices comes with its 95 %
confidence interval, from the ratios of its pairs of slices (\`sliceRatios\` in bench/common.ts): a goal is met beyond
the machine's noise when the interval's low end is above it.

- **Measured:** ${date}, in ${minutes} minutes
- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.ramGB} GB RAM
- **Software:** Node ${m.node}, ${m.os}
- **Load generator:** ${toolText}; client and server share the machine's cores.

${markdown(HEADER, body)}
${notes.length ? `\n${notes.map((n) => `- ${n}`).join("\n")}\n` : ""}
Regenerate with \`npm run bench\` (\`-- --only redirect,ingest\` for some rows, \`-- --tool autocannon\` to compare load
generators, \`-- --soak-minutes 0\` to skip the soak).
`;
    // what follows the marker is written by hand (comparisons, full-size runs): kept as it is
    const file = path.join(ROOT, "docs/performance.md");
    const old = existsSync(file) ? readFileSync(file, "utf8") : "";
    const at = old.indexOf(HAND_WRITTEN);
    const text = `${md}\n${at >= 0 ? old.slice(at) : `${HAND_WRITTEN}\n`}`;
    // laid out as `npm run lint` wants it (prettier is a development dependency, as the benchmarks are)
    const prettier = await import("prettier");
    writeFileSync(file, await prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file }));
    log(`\nwrote docs/performance.md`);
  }
  return results;
}

cliMain(import.meta.url, FLAGS, USAGE, run);
