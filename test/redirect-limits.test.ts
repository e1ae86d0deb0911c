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
