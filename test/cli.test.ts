import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import { cli, hit, req, startApp, tmpDir } from "./helpers.js";

test("users, projects and keys from the CLI", async () => {
  const dir = tmpDir();
  const env = { CLICKTRAIL_DATA_DIR: dir };
  try {
    let r = await cli(["project", "list"], env);
    assert.match(r.stdout, /^1\tdefault$/m, "a fresh data dir already has the default project");
    r = await cli(["project", "create", "marketing"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Created project marketing/);
    r = await cli(["project", "create", "marketing"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /already exists/);
    r = await cli(["user", "create", "--email", "ann@example.com", "--project", "marketing"], { ...env, CLICKTRAIL_PASSWORD: "correct horse" });
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["user", "create", "--email", "bob@example.com", "--password", "short"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /at least 8 characters/);
    r = await cli(["key", "create", "--project", "marketing", "--scopes", "links:read,stats:read"], env);
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.trim();
    assert.match(key, /^ct_/);
    r = await cli(["key", "create", "--scopes", "links:read,everything"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown scope "everything"/);
    r = await cli(["key", "list", "--project", "marketing"], env);
    assert.match(r.stdout, /links:read,stats:read\tactive/);
    assert.ok(!r.stdout.includes(key), "the secret is never listed");
    r = await cli(["project", "list"], env);
    assert.match(r.stdout, /default/);
    assert.match(r.stdout, /marketing/);

    // the key works against a server on the same data dir, on its own project only
    const app = await startApp({ CLICKTRAIL_DATA_DIR: dir });
    try {
      assert.equal((await req(app.base, "GET", "/api/v1/links", { key })).status, 200);
      assert.equal((await req(app.base, "POST", "/api/v1/domains", { key, body: { hostname: "x.test" } })).status, 403);
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("links import: per-row errors, idempotent on a second run; export round-trips", async () => {
  const dir = tmpDir();
  const env = { CLICKTRAIL_DATA_DIR: dir };
  try {
    const rows = ["domain,slug,target,tags,title,utm_source"];
    for (let i = 0; i < 300; i++) rows.push(`go.import.test,p${i},https://example.com/${i},a|b,Title ${i},mail`);
    rows.push("go.import.test,,https://example.com/no-slug,,,");
    rows.push("go.import.test,bad slug!,https://example.com/x,,,");
    rows.push("go.import.test,js,javascript:alert(1),,,");
    rows.push("unknown.test,u1,https://example.com/u,,,");
    const file = `${dir}/links.csv`;
    writeFileSync(file, rows.join("\n") + "\n");

    let r = await cli(["domain", "add", "go.import.test"], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["links", "import", file], env);
    assert.equal(r.code, 1, "failed rows make the exit code non-zero");
    assert.match(r.stdout, /301 created, 0 already present, 3 failed/);
    assert.match(r.stderr, /row 303: slug "bad slug!" is invalid/);
    assert.match(r.stderr, /row 304: target must use http or https/);
    assert.match(r.stderr, /row 305: domain unknown\.test is not registered/);

    r = await cli(["links", "import", file], env);
    assert.match(r.stdout, /0 created, 301 already present, 3 failed/);

    r = await cli(["links", "import", file, "--create-domains"], env);
    assert.match(r.stdout, /1 created, 301 already present, 2 failed/);

    r = await cli(["links", "export", "--out", `${dir}/out.csv`], env);
    assert.equal(r.code, 0, r.stderr);
    const exported = parse(readFileSync(`${dir}/out.csv`), { columns: true }) as Record<string, string>[];
    assert.equal(exported.length, 302);
    const p7 = exported.find((e) => e.slug === "p7")!;
    assert.equal(p7.target, "https://example.com/7");
    assert.equal(p7.tags, "a|b");
    assert.equal(p7.utm_source, "mail");

    // the export imports into a fresh data dir unchanged
    const dir2 = tmpDir();
    try {
      r = await cli(["links", "import", `${dir}/out.csv`, "--create-domains"], { CLICKTRAIL_DATA_DIR: dir2 });
      assert.match(r.stdout, /302 created, 0 already present, 0 failed/);
      assert.equal(r.code, 0);
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }

    r = await cli(["links", "import", `${dir}/missing.csv`], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("clicks export from the CLI (CSV and NDJSON)", async () => {
  const dir = tmpDir();
  try {
    const app = await startApp({ CLICKTRAIL_DATA_DIR: dir });
    await req(app.base, "POST", "/api/v1/domains", { body: { hostname: "go.exp.test" } });
    const l = await req(app.base, "POST", "/api/v1/links", { body: { domain: "go.exp.test", slug: "a", target: "https://example.com/a" } });
    for (let i = 0; i < 7; i++) assert.equal((await hit(app.base, "go.exp.test", "/a/newsletter")).status, 302);
    await app.close();

    let r = await cli(["clicks", "export"], { CLICKTRAIL_DATA_DIR: dir });
    assert.equal(r.code, 0, r.stderr);
    const rows = parse(r.stdout, { columns: true }) as Record<string, string>[];
    assert.equal(rows.length, 7);
    assert.equal(rows[0]!.channel, "newsletter");
    assert.equal(rows[0]!.link_id, String(l.json.id));
    r = await cli(["clicks", "export", "--format", "ndjson", "--link", String(l.json.id)], { CLICKTRAIL_DATA_DIR: dir });
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((x) => JSON.parse(x));
    assert.equal(lines.length, 7);
    assert.equal(lines[0].browser, "Chrome");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
