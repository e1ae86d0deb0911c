/** A tracking link that carries a webhook URL: the click is delivered there durably, in pytracking's body. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { req, startApp } from "./helpers.js";

const RECEIVER_HOST = "127.0.0.2";
process.env.CLICKTRAIL_WEBHOOK_ALLOW = RECEIVER_HOST;
process.env.CLICKTRAIL_WEBHOOK_POLL_MS = "100";

test("a click on a tracking link with webhook_url reaches that URL with pytracking's body", async () => {
  const got: { body: string; headers: IncomingHttpHeaders }[] = [];
  const receiver = createServer((r, res) => {
    const chunks: Buffer[] = [];
    r.on("data", (c: Buffer) => chunks.push(c));
    r.on("end", () => {
      got.push({ body: Buffer.concat(chunks).toString("utf8"), headers: r.headers });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, RECEIVER_HOST, resolve));
  const port = (receiver.address() as AddressInfo).port;
  const t = await startApp();
  try {
    const m = await req(t.base, "POST", "/api/v1/tracking/links", {
      body: { url: "https://example.com/offer", metadata: { customer_id: 7 }, webhook_url: `http://${RECEIVER_HOST}:${port}/hook` },
    });
    assert.equal(m.status, 200, m.body);
    const c = await req(t.base, "GET", new URL(m.json.click_url).pathname, { key: null, headers: { "user-agent": "Firefox" } });
    assert.equal(c.status, 302);
    const deadline = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 1, "one delivery");
    const body = JSON.parse(got[0]!.body);
    assert.deepEqual(Object.keys(body), ["is_open_tracking", "is_click_tracking", "metadata", "request_data", "timestamp", "tracked_url"]);
    assert.equal(body.is_click_tracking, true);
    assert.deepEqual(body.metadata, { customer_id: 7 });
    assert.equal(body.tracked_url, "https://example.com/offer");
    assert.equal(body.request_data.user_agent, "Firefox");
    assert.match(got[0]!.body, /^\{"is_open_tracking": false, "is_click_tracking": true, /, "Python json.dumps separators");
  } finally {
    await t.close();
    receiver.close();
  }
});
