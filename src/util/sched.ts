import { execFileSync } from "node:child_process";
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";

/** How the event log's background threads (the writer, the WAL checkpointer) are scheduled: see backgroundThisThread. */
export type WriterScheduling = "background" | "normal";

/** the background threads' nice value: a tenth of a normal thread's share of a core both want (CFS weights 110 : 1024) */
export const BACKGROUND_NICE = 10;

/**
 * Makes the calling thread a background thread (Linux): nice 10, and the SCHED_BATCH policy. The writer thread wakes
 * every few milliseconds with a burst of commits; nothing waits for them but reads and clicks on links with a
 * `max_clicks`, while every request in flight waits for the HTTP thread. So when they want the same core, the HTTP thread
 * should have it: with nice 10 it gets ten times the writer's share; under SCHED_BATCH a thread that wakes does not
 * preempt the one running, it waits for the end of its slice or a free core. Neither starves the writer: it runs on
 * whatever the HTTP thread leaves, and if that is too little, the uncommitted events reach the back-pressure limit, the
 * answers wait for its commits, and the HTTP thread leaves it more (see MAX_UNCOMMITTED). Measured under redirects on 2
 * cores shared with the load generator: the HTTP thread waited for a CPU 11–12 % of the time with normal threads, 8–9 %
 * with these; 0.05–0.11 more of bare node:http's redirects a second.
 *
 * Node has no call for the policy: `chrt` (util-linux) sets it for the thread's id (nice is node's setPriority, which
 * on Linux takes a thread's id). Returns null when both are set, else why not (not Linux, no `chrt`): the thread then
 * runs as it could be set, which only costs that gain.
 */
export function backgroundThisThread(): string | null {
  if (process.platform !== "linux") return `${process.platform} has no per-thread nice value or SCHED_BATCH`;
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    setPriority(tid, BACKGROUND_NICE);
    execFileSync("chrt", ["--batch", "--pid", "0", String(tid)], { stdio: ["ignore", "ignore", "pipe"], timeout: 5000 });
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") return "chrt (util-linux) is not installed: SCHED_BATCH not set";
    return (e.stderr?.toString().trim() || e.message).slice(0, 300);
  }
}
