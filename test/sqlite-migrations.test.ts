import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { SqliteStore } from "../src/store/sqlite/index.js";
import { MIGRATIONS } from "../src/store/sqlite/migrations.js";
import { tmpDir } from "./helpers.js";

test("SQLite: a database of the first release upgrades in place (links, tags and ids kept, foreign keys intact)", async () => {
  const dir = tmpDir();
  const file = path.join(dir, "clicktrail.db");
  try {
    // a database as release 1 left it
    const old = new Database(file);
    old.pragma("foreign_keys = ON");
    old.exec(`CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    old.exec(MIGRATIONS[0]!.sql);
    old.prepare(`INSERT INTO schema_migrations VALUES (1, 'core', 0)`).run();
    old.prepare(`INSERT INTO projects (id, name, created_at) VALUES (1, 'default', 0)`).run();
    old.prepare(`INSERT INTO domains (id, project_id, hostname, created_at, updated_at) VALUES (7, 1, 'go.old.test', 0, 0)`).run();
    old
      .prepare(
        `INSERT INTO links (id, project_id, domain_id, slug, target, tags, created_at, updated_at, clicks) VALUES (42, 1, 7, 'old', 'https://example.com/', '["a"]', 0, 0, 5)`,
      )
      .run();
    old.prepare(`INSERT INTO link_tags (link_id, tag) VALUES (42, 'a')`).run();
    old.close();

    const store = new SqliteStore({ file });
    assert.equal(await store.migrate(), MIGRATIONS.length - 1);
    const l = await store.getLink(1, 42);
    assert.ok(l);
    assert.equal(l.slug, "old");
    assert.equal(l.hostname, "go.old.test");
    assert.equal(l.clicks, 5);
    assert.deepEqual(l.tags, ["a"]);
    assert.deepEqual(l.rules, []);
    assert.equal(l.allowed_platforms, null);
    assert.equal(l.campaign_id, null);
    assert.deepEqual(
      (await store.listLinks({ project_id: 1, tag: "a", limit: 10 })).map((x) => x.id),
      [42],
    );
    // foreign keys are back on: a link on a missing domain is refused, deleting a link drops its tags
    await assert.rejects(() => store.createLink({ ...l, domain_id: 999, slug: "x", rules: [], allowed_platforms: null, campaign_id: null }));
    assert.equal(await store.deleteLink(1, 42), true);
    assert.equal((store.db.prepare(`SELECT count(*) AS n FROM link_tags`).get() as { n: number }).n, 0);
    // ids continue after the highest one, and a deleted newest id is not handed out again
    const next = await store.createLink({ ...l, slug: "new", rules: [], allowed_platforms: null, campaign_id: null });
    assert.equal(next.id, 43);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
