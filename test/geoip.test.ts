import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { GeoIp } from "../src/events/geoip.js";
import { hit, req, startApp, tmpDir } from "./helpers.js";
import { writeCountryDb } from "./mmdb.js";

test("GeoIP: country from a MaxMind database, in clicks and in breakdowns", async () => {
  const dir = tmpDir();
  const db = path.join(dir, "country.mmdb");
  writeCountryDb(db, [
    ["127.0.0.0/8", "FR"],
    ["203.0.113.0/24", "NZ"],
  ]);
  try {
    const geo = await GeoIp.open(db);
    assert.equal(geo.country("127.0.0.1"), "FR");
    assert.equal(geo.country("203.0.113.77"), "NZ");
    assert.equal(geo.country("8.8.8.8"), null);
    assert.equal(geo.country("not an ip"), null);

    const app = await startApp({ CLICKTRAIL_GEOIP_DB: db, CLICKTRAIL_TRUSTED_PROXIES: "127.0.0.1" });
    try {
      await req(app.base, "POST", "/api/v1/domains", { body: { hostname: "go.geo.test" } });
      const l = await req(app.base, "POST", "/api/v1/links", { body: { domain: "go.geo.test", slug: "g", target: "https://example.com/" } });
      assert.equal((await hit(app.base, "go.geo.test", "/g")).status, 302);
      assert.equal((await hit(app.base, "go.geo.test", "/g", { "x-forwarded-for": "203.0.113.9" })).status, 302);
      assert.equal((await hit(app.base, "go.geo.test", "/g", { "x-forwarded-for": "198.51.100.1" })).status, 302);
      const s = await req(app.base, "GET", `/api/v1/links/${l.json.id}/stats`);
      const countries = Object.fromEntries(s.json.breakdowns.country.map((c: { value: string; clicks: number }) => [c.value, c.clicks]));
      assert.deepEqual(countries, { FR: 1, NZ: 1, "(unknown)": 1 });
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("GeoIP: an unreadable database stops start-up naming the variable", async () => {
  await assert.rejects(GeoIp.open("/nonexistent/file.mmdb"), /CLICKTRAIL_GEOIP_DB/);
});
