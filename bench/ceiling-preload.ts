/**
 * Loaded into a Clicktrail server by bench/ceilings.ts (`node --import`), never by the server itself: it takes parts
 * away, so a benchmark measures how fast the rest can go on the same machine.
 *
 *   CLICKTRAIL_BENCH_CEILING=handover events are journaled and handed to the writer thread as shipped, and the writer
 *                                     thread acknowledges them without committing or counting them: the request path
 *                                     and the hand-over, without the writer thread's work (inserts, rollups)
 *   CLICKTRAIL_BENCH_CEILING=discard  every event is dropped and acknowledged at the end of the turn (as the writer
 *                                     acknowledges a group commit): the request path without storage
 *   CLICKTRAIL_BENCH_CEILING=raw      requests matching CLICKTRAIL_BENCH_RAW_MATCH (a regular expression over
 *                                     host + path) are answered by the benchmark's bare handler
 *                                     (CLICKTRAIL_BENCH_RAW_HANDLER, its setup in CLICKTRAIL_BENCH_RAW_SETUP) inside
 *                                     Clicktrail's process: the process without Clicktrail's request path
 *
 * With `raw`, the first CLICKTRAIL_BENCH_RAW_SKIP (default 200) matching requests still take the real path, so the
 * benchmarks' set-up probes see real answers.
 */
import { createRequire, syncBuiltinESMExports } from "node:module";
import { isMainThread } from "node:worker_threads";
import type { IncomingMessage, ServerResponse, RequestListener } from "node:http";
import { EventWriter } from "../src/events/writer.js";
import { ThreadedWriter } from "../src/events/writer-thread.js";

const mode = process.env.CLICKTRAIL_BENCH_CEILING;

if (mode === "handover") {
  // (the preload runs in every thread started from a file, the writer thread too: only its writer is changed)
  if (!isMainThread) {
    const proto = EventWriter.prototype as unknown as Record<string, unknown>;
    proto.append = () => Promise.resolve(0);
    proto.appendAnswered = () => Promise.resolve(0);
  }
} else if (mode === "discard") {
  // acknowledged at the end of the turn, all at once, as the writer does (answering each request at once, in the turn
  // that read it, costs Node more per response: measured on a bare server, 61,000/s at once against 70,000/s at the end
  // of the turn): only the storing is gone
  let waiting: (() => void)[] = [];
  const acknowledge = () => {
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve();
  };
  const discard = () =>
    new Promise<void>((resolve) => {
      if (waiting.push(resolve) === 1) setImmediate(acknowledge);
    });
  for (const proto of [EventWriter.prototype, ThreadedWriter.prototype] as unknown as Record<string, unknown>[]) {
    proto.write = discard;
    proto.writeMany = discard;
  }
  (EventWriter.prototype as unknown as Record<string, unknown>).append = () => discard().then(() => 0);
} else if (mode === "raw") {
  // the bare handler takes node:http's requests: Clicktrail's fast lane (which answers before node:http) stays off
  process.env.CLICKTRAIL_HTTP_FAST_LANE = "false";
  const require = createRequire(import.meta.url);
  const http = require("node:http") as typeof import("node:http");
  const match = new RegExp(process.env.CLICKTRAIL_BENCH_RAW_MATCH ?? "^$");
  const skip = Number(process.env.CLICKTRAIL_BENCH_RAW_SKIP ?? 200);
  const handler = new Function("require", `${process.env.CLICKTRAIL_BENCH_RAW_SETUP ?? ""}\nreturn (${process.env.CLICKTRAIL_BENCH_RAW_HANDLER});`)(
    require,
  ) as RequestListener;
  let seen = 0;
  const createServer = http.createServer;
  const wrap =
    (listener: RequestListener): RequestListener =>
    (req: IncomingMessage, res: ServerResponse) =>
      match.test(`${req.headers.host ?? ""}${req.url ?? ""}`) && ++seen > skip ? handler(req, res) : listener(req, res);
  (http as { createServer: unknown }).createServer = (opts: unknown, listener?: RequestListener) =>
    typeof opts === "function" ? createServer(wrap(opts as RequestListener)) : createServer(opts as object, wrap(listener!));
  // the app imports createServer by name: ES module bindings of built-ins follow their CommonJS objects only after this
  syncBuiltinESMExports();
} else if (mode) {
  throw new Error(`CLICKTRAIL_BENCH_CEILING must be handover, discard or raw, got ${JSON.stringify(mode)}`);
}
