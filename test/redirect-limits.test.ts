import { test } from "node:test";
import assert from "node:assert/strict";
import { hit, req, startApp } from "./helpers.js";

test("huge user agents and referrers are stored truncated, and the redirect still answers", async () => {
  const app = await startApp();
  try {
    await req(app.base, "POST", "/api/v1/domains", { body: { hostname: "go.limits.test" } });
    await req(app.base, "POST", "/api/v1/links", { body: { domain: "go.limits.test", slug: "l", target: "https://example.com/" } });
    const r = await hit(app.base, "go.limits.test", "/l", {
      "user-agent": "Mozilla/5.0 " + "x".repeat(6000),
      referer: "https://ref.example/" + "y".repeat(6000),
    });
    assert.equal(r.status, 302);
    const exp = await req(app.base, "GET", "/api/v1/clicks/export?format=ndjson");
    const row = JSON.parse(exp.body.trim().split("\n")[0]!);
    assert.equal(row.user_agent.length, 512);
    assert.equal(row.referrer.length, 2048);
  } finally {
    await app.close();
  }
});

test("max_clicks holds under concurrent clicks while the link cache is dropped every turn, with the event writer on a thread and in process", async () => {
  // a change anywhere drops the whole cache (the 250 ms poll for other processes' changes); the link is then read again
  // from the store while clicks are still on their way to the writer: they must be counted, or a sixth click gets through
  for (const thread of ["true", "false"]) {
    const app = await startApp({ CLICKTRAIL_SQLITE_WRITER_THREAD: thread, CLICKTRAIL_POSTGRES_WRITER_THREAD: thread });
    let dropping = true;
    const drop = () => {
      if (!dropping) return;
      app.app.services.resolver.invalidateAll();
      setImmediate(drop);
    };
    try {
      await req(app.base, "POST", "/api/v1/domains", { body: { hostname: "go.limits.test" } });
      for (let round = 0; round < 3; round++) {
        const slug = `five-${round}`;
        await req(app.base, "POST", "/api/v1/links", { body: { domain: "go.limits.test", slug, target: "https://example.com/", max_clicks: 5 } });
        dropping = true;
        drop();
        const statuses = (await Promise.all(Array.from({ length: 20 }, () => hit(app.base, "go.limits.test", `/${slug}`)))).map((r) => r.status);
        dropping = false;
        assert.equal(statuses.filter((s) => s === 302).length, 5, `writer thread ${thread}, round ${round}: ${JSON.stringify(statuses)}`);
        assert.equal(statuses.filter((s) => s === 410).length, 15);
      }
    } finally {
      dropping = false;
      await app.close();
    }
  }
});
