import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { ADMIN_KEY, cli, hit, req, startProcess, stopProcess, tmpDir, waitExit, type ServerProcess } from "./helpers.js";
import { SqliteStore, sqlitePath } from "../src/store/sqlite/index.js";

async function setupLinks(base: string, n: number) {
  let r = await req(base, "POST", "/api/v1/domains", { body: { hostname: "go.kill.test" } });
  assert.equal(r.status, 201, r.body);
  const links = Array.from({ length: n }, (_, i) => ({ domain: "go.kill.test", slug: `s${i}`, target: `https://example.com/${i}` }));
  r = await req(base, "POST", "/api/v1/links/bulk", { body: { links } });
  assert.equal(r.json.created, n, r.body);
}

/**
 * 16 clients call `request(client, i)` back to back for 1.5 s, then the server is killed with SIGKILL mid-flight; resolves
 * once every client has stopped (a request cut off by the kill throws: it was not answered) and the process is gone.
 */
async function killUnderLoad(srv: ServerProcess, request: (client: number, i: number) => Promise<void>): Promise<void> {
  let stop = false;
  const client = async (c: number) => {
    for (let i = 0; !stop; i++) {
      try {
        await request(c, i);
      } catch {
        return; // connection reset by the kill: not answered
      }
    }
  };
  const clients = Array.from({ length: 16 }, (_, c) => client(c));
  await new Promise((r) => setTimeout(r, 1500));
  srv.proc.kill("SIGKILL");
  stop = true;
  await Promise.all(clients);
  await waitExit(srv.proc);
}

function countClicks(dir: string): number {
  const s = new SqliteStore({ file: sqlitePath(dir) });
  try {
    return (s.db.prepare("SELECT count(*) AS n FROM events WHERE name = 'click' AND link_id IS NOT NULL").get() as { n: number }).n;
  } finally {
    s.db.close();
  }
}

test("SIGKILL loses no click whose redirect was answered", async () => {
  const dir = tmpDir();
  try {
    const srv = await startProcess(dir);
    await setupLinks(srv.base, 50);
    let answered = 0;
    // 16 concurrent clients redirecting as fast as they can; SIGKILL lands mid-flight
    await killUnderLoad(srv, async (w, i) => {
      const r = await hit(srv.base, "go.kill.test", `/s${(w * 7 + i) % 50}`);
      if (r.status === 302) answered++;
    });
    assert.ok(answered > 100, `only ${answered} redirects answered before the kill`);
    // restart: the server recovers the WAL and every answered click is there
    const again = await startProcess(dir);
    const r = await req(again.base, "GET", "/api/v1/stats?bots=include");
    await stopProcess(again.proc);
    const stored = countClicks(dir);
    assert.ok(stored >= answered, `stored ${stored} clicks but answered ${answered} redirects`);
    assert.equal(r.json.clicks, stored, "rollups agree with the event log");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SIGKILL loses no event whose ingest was acknowledged, and commits none twice (the writer thread's journal)", async () => {
  const dir = tmpDir();
  try {
    const srv = await startProcess(dir);
    const app = await req(srv.base, "POST", "/api/v1/apps", { body: { name: "kill" } });
    assert.equal(app.status, 201, app.body);
    const key = app.json.key as string;
    const answered = new Set<string>();
    // 16 clients sending events of 1 to 20 each as fast as they can (answered once in the journal); SIGKILL mid-flight
    await killUnderLoad(srv, async (c, i) => {
      const ids = Array.from({ length: 1 + ((c * 7 + i) % 20) }, (_, j) => `${c}.${i}.${j}`);
      const r = await req(srv.base, "POST", "/api/v1/events", {
        key: null,
        body: { key, events: ids.map((id) => ({ name: "tap", data: { id } })) },
      });
      if (r.status === 201) for (const id of ids) answered.add(id);
    });
    assert.ok(answered.size > 1000, `only ${answered.size} events acknowledged before the kill`);
    // restart: the writer thread commits what the journal holds past what the event log has
    const again = await startProcess(dir);
    await stopProcess(again.proc);
    const s = new SqliteStore({ file: sqlitePath(dir) });
    let ids: string[];
    try {
      ids = s.db.prepare("SELECT json_extract(data, '$.id') FROM events WHERE name = 'tap'").pluck().all() as string[];
    } finally {
      s.db.close();
    }
    assert.equal(new Set(ids).size, ids.length, "no event stored twice");
    const stored = new Set(ids);
    const missing = [...answered].filter((id) => !stored.has(id));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${answered.size} acknowledged events lost`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SIGTERM stops accepting, commits queued clicks and exits 0", async () => {
  const dir = tmpDir();
  try {
    const srv = await startProcess(dir);
    await setupLinks(srv.base, 5);
    const inflight = Array.from({ length: 50 }, (_, i) => hit(srv.base, "go.kill.test", `/s${i % 5}`).catch(() => null));
    await new Promise((r) => setTimeout(r, 5));
    srv.proc.kill("SIGTERM");
    const results = await Promise.all(inflight);
    const { code } = await waitExit(srv.proc);
    assert.equal(code, 0, srv.output());
    const answered = results.filter((r) => r?.status === 302).length;
    assert.ok(countClicks(dir) >= answered);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("invalid configuration stops start-up naming the variable", async () => {
  const dir = tmpDir();
  try {
    for (const [name, value] of [
      ["CLICKTRAIL_PORT", "eighty"],
      ["CLICKTRAIL_TRUSTED_PROXIES", "not-an-ip"],
      ["CLICKTRAIL_IP_MODE", "scramble"],
      ["CLICKTRAIL_ADMIN_KEY", "short"],
    ] as const) {
      const r = await cli(["serve"], { CLICKTRAIL_DATA_DIR: dir, [name]: value });
      assert.equal(r.code, 2, `${name}=${value}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`configuration error: ${name}`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("first start without CLICKTRAIL_ADMIN_KEY prints a generated admin key once", async () => {
  const dir = tmpDir();
  try {
    const srv = await startProcess(dir, { CLICKTRAIL_ADMIN_KEY: "" });
    // the whole token: base64url may end in "-", which a \b-bounded pattern would cut off (a flaky 401)
    const key = /store it now:\s+(ct_[A-Za-z0-9_-]{32})\s/.exec(srv.output())?.[1];
    assert.ok(key, srv.output());
    const r = await req(srv.base, "GET", "/api/v1/links", { key });
    assert.equal(r.status, 200);
    await stopProcess(srv.proc);
    const second = await startProcess(dir, { CLICKTRAIL_ADMIN_KEY: "" });
    assert.doesNotMatch(second.output(), /ct_[A-Za-z0-9_-]{20,}/, "the key is printed only on the first start");
    await stopProcess(second.proc);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a link created by the CLI while the server runs is served within a second", async () => {
  const dir = tmpDir();
  try {
    const srv = await startProcess(dir);
    let r = await req(srv.base, "POST", "/api/v1/domains", { body: { hostname: "go.cli.test" } });
    assert.equal(r.status, 201);
    r = await hit(srv.base, "go.cli.test", "/later");
    assert.equal(r.status, 404); // now cached as missing
    const file = `${dir}/one.csv`;
    writeFileSync(file, "domain,slug,target\ngo.cli.test,later,https://example.com/later\n");
    const imp = await cli(["links", "import", file], { CLICKTRAIL_DATA_DIR: dir });
    assert.equal(imp.code, 0, imp.stderr);
    await new Promise((res) => setTimeout(res, 1200));
    r = await hit(srv.base, "go.cli.test", "/later");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://example.com/later");
    await stopProcess(srv.proc);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("admin key from the environment works, wrong keys do not", async () => {
  const dir = tmpDir();
  try {
    const srv = await startProcess(dir);
    assert.equal((await req(srv.base, "GET", "/api/v1/domains", { key: ADMIN_KEY })).status, 200);
    assert.equal((await req(srv.base, "GET", "/api/v1/domains", { key: ADMIN_KEY + "x" })).status, 401);
    await stopProcess(srv.proc);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
