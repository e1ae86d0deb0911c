/**
 * Unit tests of src/links/targeting.ts: platform spellings, Accept-Language, platform classes, rule matching and the
 * validation and normalisation of rules as a client sends them.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { AppError } from "../src/errors.js";
import {
  compileTargeting,
  explicitPlatform,
  MAX_RULES,
  matchesPlatform,
  matchRule,
  normalizePlatform,
  preferredLanguage,
  publicRules,
  validateAllowedPlatforms,
  validateRules,
  type ClickFacts,
} from "../src/links/targeting.js";

const T0 = Date.parse("2026-03-01T12:00:00Z");

/** Asserts that `fn` throws a 400 AppError whose message mentions every string in `mentions`. */
function rejects(fn: () => unknown, ...mentions: string[]): AppError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
  assert.equal(err.status, 400, err.message);
  assert.equal(err.type, "invalid-request");
  for (const m of mentions) assert.ok(err.message.includes(m), `${JSON.stringify(err.message)} should mention ${JSON.stringify(m)}`);
  assert.equal(typeof err.extra.field, "string", "the error names a field");
  assert.match(String(err.extra.field), /^(rules|allowed_platforms)/);
  return err;
}

function facts(f: Partial<ClickFacts> = {}): ClickFacts {
  return { platform: "linux", device: "desktop", now: T0, country: null, query: "", acceptLanguage: undefined, ...f };
}

/** Compiles client rules the way the resolver does, and answers the matched rule's name (null: the link's target). */
function matcher(rules: unknown[]) {
  const t = compileTargeting(validateRules(rules), null, (target) => target)!;
  return (f: Partial<ClickFacts> = {}) => matchRule(t, facts(f))?.rule.name ?? null;
}

// ---------------------------------------------------------------------------------------------------------------------
describe("normalizePlatform", () => {
  test("canonical names and classes, any case, spaces and underscores as dashes", () => {
    for (const p of ["android", "ios", "windows-phone", "windows", "macos", "linux", "chromeos", "other", "mobile", "desktop"]) {
      assert.equal(normalizePlatform(p), p);
      assert.equal(normalizePlatform(p.toUpperCase()), p);
    }
    assert.equal(normalizePlatform("  Android "), "android");
    assert.equal(normalizePlatform("Windows Phone"), "windows-phone");
    assert.equal(normalizePlatform("windows_phone"), "windows-phone");
    assert.equal(normalizePlatform("MacOS"), "macos");
    assert.equal(normalizePlatform("ChromeOS"), "chromeos");
    assert.equal(normalizePlatform("Chrome OS"), "chromeos");
  });

  test("aliases, including o7tracker's spellings", () => {
    assert.equal(normalizePlatform("IPhone"), "ios");
    assert.equal(normalizePlatform("iPhone"), "ios");
    assert.equal(normalizePlatform("iPad"), "ios");
    assert.equal(normalizePlatform("iPod"), "ios");
    assert.equal(normalizePlatform("iPadOS"), "ios");
    assert.equal(normalizePlatform("WindowsPhone"), "windows-phone");
    assert.equal(normalizePlatform("WinPhone"), "windows-phone");
    assert.equal(normalizePlatform("mac"), "macos");
    assert.equal(normalizePlatform("Mac"), "macos");
    assert.equal(normalizePlatform("OSX"), "macos");
    assert.equal(normalizePlatform("Mac OS"), "macos");
    assert.equal(normalizePlatform("mac_os"), "macos");
  });

  test("anything else is null", () => {
    for (const p of ["", " ", "blackberry", "symbian", "win", "i phone x", "androidx", "ios2", "desk top"])
      assert.equal(normalizePlatform(p), null, p);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("explicitPlatform (?platform=)", () => {
  test("a platform by any accepted spelling; classes, unknown values and other parameters are ignored", () => {
    assert.equal(explicitPlatform("platform=Android"), "android");
    assert.equal(explicitPlatform("a=1&platform=IPhone&b=2"), "ios");
    assert.equal(explicitPlatform("platform=WindowsPhone"), "windows-phone");
    assert.equal(explicitPlatform("platform=Windows%20Phone"), "windows-phone");
    assert.equal(explicitPlatform("platform=mobile"), null, "a class is not a platform");
    assert.equal(explicitPlatform("platform=desktop"), null);
    assert.equal(explicitPlatform("platform=nokia"), null);
    assert.equal(explicitPlatform("platform="), null);
    assert.equal(explicitPlatform("xplatform=android"), null);
    assert.equal(explicitPlatform(""), null);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("preferredLanguage", () => {
  test("absent or empty header: empty", () => {
    assert.equal(preferredLanguage(undefined), "");
    assert.equal(preferredLanguage(""), "");
  });

  test("the highest q wins, whatever the order; lower-cased", () => {
    assert.equal(preferredLanguage("de-AT"), "de-at");
    assert.equal(preferredLanguage("en-US,en;q=0.9,de;q=0.8"), "en-us");
    assert.equal(preferredLanguage("fr;q=0.5, de-CH;q=0.9, en;q=0.7"), "de-ch");
    assert.equal(preferredLanguage("fr;q=0.5, pt-BR"), "pt-br", "no q is q=1");
    assert.equal(preferredLanguage("en;q=0.1,it;q=0.25"), "it");
  });

  test("a header seen before answers the same; past the cache's bound, every answer is still parsed right", () => {
    for (let round = 0; round < 2; round++) assert.equal(preferredLanguage("fr;q=0.5, de-CH;q=0.9"), "de-ch");
    for (let i = 0; i < 2500; i++) assert.equal(preferredLanguage(`x${i};q=0.5, l${i}`), `l${i}`);
    assert.equal(preferredLanguage(`${"zz;q=0.1, ".repeat(40)}it`), "it", "a long header (not cached)");
    // six headers in turn (more than the ones compared before the cache), each a new string as a request's is
    const headers: [string, string][] = [
      ["de-DE,de;q=0.9,en;q=0.5", "de-de"],
      ["en-US,en;q=0.9", "en-us"],
      ["fr;q=0.5, pt-BR", "pt-br"],
      ["", ""],
      ["nl, de", "nl"],
      ["ja;q=0.2, ko;q=0.3", "ko"],
    ];
    for (let round = 0; round < 3; round++)
      for (const [h, want] of headers) assert.equal(preferredLanguage(Buffer.from(h).toString("latin1")), want, `${h} (round ${round})`);
  });

  test("ties: the first of the best", () => {
    assert.equal(preferredLanguage("nl, de"), "nl");
    assert.equal(preferredLanguage("fr;q=0.8, es;q=0.8, en;q=0.5"), "fr");
    assert.equal(preferredLanguage("de;q=1, en;q=1.0"), "de");
  });

  test("the * wildcard is never a preference", () => {
    assert.equal(preferredLanguage("*"), "");
    assert.equal(preferredLanguage("*, en;q=0.5"), "en");
    assert.equal(preferredLanguage("*;q=1, sv;q=0.2"), "sv");
  });

  test("q=0 means not acceptable, and whitespace around ';' is allowed (RFC 9110)", () => {
    assert.equal(preferredLanguage("de;q=0"), "");
    assert.equal(preferredLanguage("de;q=0, en;q=0.1"), "en");
    assert.equal(preferredLanguage("de ; q=0.9, en;q=0.5"), "de");
    assert.equal(preferredLanguage(" de-AT , en;q=0.5"), "de-at");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("matchesPlatform", () => {
  test("a platform matches itself only", () => {
    assert.equal(matchesPlatform(["ios"], "ios", "mobile"), true);
    assert.equal(matchesPlatform(["ios"], "android", "mobile"), false);
    assert.equal(matchesPlatform(["windows"], "windows-phone", "mobile"), false);
    assert.equal(matchesPlatform(["windows-phone"], "windows", "desktop"), false);
    assert.equal(matchesPlatform(["linux", "macos"], "macos", "desktop"), true);
    assert.equal(matchesPlatform(["linux"], "", ""), false, "no user agent matches no platform");
  });

  test("mobile: phone platforms, and any phone or tablet device", () => {
    for (const p of ["android", "ios", "windows-phone"]) assert.equal(matchesPlatform(["mobile"], p, "mobile"), true, p);
    assert.equal(matchesPlatform(["mobile"], "android", "desktop"), true, "?platform=android on a desktop browser is mobile");
    assert.equal(matchesPlatform(["mobile"], "ios", "tablet"), true, "iPad");
    assert.equal(matchesPlatform(["mobile"], "android", "tablet"), true, "Android tablet");
    assert.equal(matchesPlatform(["mobile"], "other", "mobile"), true, "a phone of another OS");
    for (const p of ["windows", "macos", "linux", "chromeos", "other"]) assert.equal(matchesPlatform(["mobile"], p, "desktop"), false, p);
  });

  test("desktop: desktop platforms on a non-mobile, non-tablet device", () => {
    for (const p of ["windows", "macos", "linux", "chromeos"]) assert.equal(matchesPlatform(["desktop"], p, "desktop"), true, p);
    assert.equal(matchesPlatform(["desktop"], "linux", "other"), true, "a smart TV on Linux is not a phone");
    for (const p of ["android", "ios", "windows-phone", "other", ""]) assert.equal(matchesPlatform(["desktop"], p, "desktop"), false, p);
    assert.equal(matchesPlatform(["desktop"], "ios", "tablet"), false, "an iPad is not a desktop");
    assert.equal(matchesPlatform(["desktop"], "android", "tablet"), false);
    assert.equal(matchesPlatform(["desktop"], "windows", "tablet"), false, "a Windows tablet is a tablet");
  });

  test("a list matches when any entry does", () => {
    assert.equal(matchesPlatform(["ios", "desktop"], "linux", "desktop"), true);
    assert.equal(matchesPlatform(["ios", "desktop"], "ios", "tablet"), true);
    assert.equal(matchesPlatform(["ios", "desktop"], "android", "mobile"), false);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("matchRule", () => {
  test("platform", () => {
    const m = matcher([
      { name: "apple", target: "https://a.example/", platform: ["ios", "macos"] },
      { name: "phones", target: "https://b.example/", platform: ["mobile"] },
    ]);
    assert.equal(m({ platform: "ios", device: "mobile" }), "apple");
    assert.equal(m({ platform: "macos", device: "desktop" }), "apple");
    assert.equal(m({ platform: "android", device: "mobile" }), "phones");
    assert.equal(m({ platform: "android", device: "tablet" }), "phones");
    assert.equal(m({ platform: "windows", device: "desktop" }), null);
    assert.equal(m({ platform: "", device: "" }), null);
  });

  test("language: the preferred one, and 'de' also matches 'de-AT' (not the other way round)", () => {
    const m = matcher([
      { name: "german", target: "https://de.example/", language: ["de"] },
      { name: "brazil", target: "https://br.example/", language: ["pt-BR"] },
    ]);
    assert.equal(m({ acceptLanguage: "de" }), "german");
    assert.equal(m({ acceptLanguage: "de-AT,de;q=0.9" }), "german");
    assert.equal(m({ acceptLanguage: "DE-at" }), "german");
    assert.equal(m({ acceptLanguage: "en-US,en;q=0.9,de;q=0.8" }), null, "only the preferred language counts");
    assert.equal(m({ acceptLanguage: "pt-BR" }), "brazil");
    assert.equal(m({ acceptLanguage: "pt-br-x-foo" }), "brazil");
    assert.equal(m({ acceptLanguage: "pt" }), null, "pt-BR does not match plain pt");
    assert.equal(m({ acceptLanguage: "pt-PT" }), null);
    assert.equal(m({ acceptLanguage: "dex" }), null, "a prefix is a whole subtag");
    assert.equal(m({ acceptLanguage: undefined }), null);
    assert.equal(m({ acceptLanguage: "*" }), null);
  });

  test("country (upper-case codes, from GeoIP); no country matches no country rule", () => {
    const m = matcher([{ name: "dach", target: "https://dach.example/", country: ["de", "AT", "ch"] }]);
    assert.equal(m({ country: "DE" }), "dach");
    assert.equal(m({ country: "CH" }), "dach");
    assert.equal(m({ country: "FR" }), null);
    assert.equal(m({ country: null }), null);
  });

  test("query: true is present (any value), a string is equal", () => {
    const m = matcher([
      { name: "ref", target: "https://ref.example/", query: { ref: true } },
      { name: "ads", target: "https://ads.example/", query: { src: "ads" } },
      { name: "empty", target: "https://empty.example/", query: { e: "" } },
    ]);
    assert.equal(m({ query: "ref" }), "ref");
    assert.equal(m({ query: "ref=" }), "ref");
    assert.equal(m({ query: "a=1&ref=xyz" }), "ref");
    assert.equal(m({ query: "src=ads" }), "ads");
    assert.equal(m({ query: "src=ads&x=1" }), "ads");
    assert.equal(m({ query: "src=%61ds" }), "ads", "values are compared decoded");
    assert.equal(m({ query: "src=ADS" }), null, "equality is exact");
    assert.equal(m({ query: "src=adsx" }), null);
    assert.equal(m({ query: "src" }), null);
    assert.equal(m({ query: "e=" }), "empty");
    assert.equal(m({ query: "e=1" }), null);
    assert.equal(m({ query: "" }), null);
    assert.equal(m({ query: "reference=1" }), null);
  });

  test("after (inclusive) and before (exclusive)", () => {
    const start = T0;
    const end = T0 + 3_600_000;
    const m = matcher([
      { name: "window", target: "https://w.example/", after: new Date(start).toISOString(), before: new Date(end).toISOString() },
      { name: "later", target: "https://l.example/", after: end },
      { name: "earlier", target: "https://e.example/", before: start },
    ]);
    assert.equal(m({ now: start - 1 }), "earlier");
    assert.equal(m({ now: start }), "window");
    assert.equal(m({ now: end - 1 }), "window");
    assert.equal(m({ now: end }), "later");
    assert.equal(m({ now: end + 86_400_000 }), "later");
  });

  test("every condition of a rule must hold (AND)", () => {
    const m = matcher([
      {
        name: "all",
        target: "https://all.example/",
        platform: ["android"],
        language: ["de"],
        country: ["DE"],
        query: { src: "ads" },
        after: T0 - 1000,
        before: T0 + 1000,
      },
    ]);
    const ok: Partial<ClickFacts> = { platform: "android", device: "mobile", acceptLanguage: "de-DE", country: "DE", query: "src=ads", now: T0 };
    assert.equal(m(ok), "all");
    assert.equal(m({ ...ok, platform: "ios" }), null);
    assert.equal(m({ ...ok, acceptLanguage: "en" }), null);
    assert.equal(m({ ...ok, country: "AT" }), null);
    assert.equal(m({ ...ok, country: null }), null);
    assert.equal(m({ ...ok, query: "src=mail" }), null);
    assert.equal(m({ ...ok, now: T0 + 1000 }), null);
    assert.equal(m({ ...ok, now: T0 - 1001 }), null);
  });

  test("the first matching rule wins; a rule without conditions matches everything", () => {
    const m = matcher([
      { name: "mobile", target: "https://m.example/", platform: ["mobile"] },
      { name: "iphone", target: "https://i.example/", platform: ["ios"] },
      { name: "catch-all", target: "https://c.example/" },
      { name: "never", target: "https://n.example/", platform: ["linux"] },
    ]);
    assert.equal(m({ platform: "ios", device: "mobile" }), "mobile", "the earlier, broader rule wins");
    assert.equal(m({ platform: "linux", device: "desktop" }), "catch-all");
  });

  test("no match: null; the matched rule's location is the compiled one", () => {
    const rules = validateRules([{ name: "ios", target: "https://ios.example/app", platform: ["ios"] }]);
    const t = compileTargeting(rules, null, (target) => `${target}?utm_source=x`)!;
    assert.equal(matchRule(t, facts({ platform: "android", device: "mobile" })), null);
    const hit = matchRule(t, facts({ platform: "ios", device: "mobile" }));
    assert.equal(hit?.rule.name, "ios");
    assert.equal(hit?.location, "https://ios.example/app?utm_source=x");
  });

  test("compileTargeting: null for a link with neither rules nor allowed platforms", () => {
    assert.equal(
      compileTargeting([], null, (x) => x),
      null,
    );
    const t = compileTargeting([], ["mobile"], (x) => x);
    assert.deepEqual(t?.allowed, ["mobile"]);
    assert.equal(t?.rules.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("validateRules: errors name the rule and the field", () => {
  const ok = { target: "https://example.com/x" };

  test("not a list, not an object", () => {
    rejects(() => validateRules(null), "rules");
    rejects(() => validateRules({}), "rules");
    rejects(() => validateRules("x"), "rules");
    rejects(() => validateRules([ok, "x"]), "rules[1]");
    rejects(() => validateRules([ok, null]), "rules[1]");
    rejects(() => validateRules([[]]), "rules[0]");
  });

  test("unknown field", () => {
    rejects(() => validateRules([ok, { ...ok, device: ["mobile"] }]), "rules[1]", '"device"');
    rejects(() => validateRules([{ ...ok, Platform: ["ios"] }]), "rules[0]", '"Platform"');
  });

  test("missing or non-http target", () => {
    rejects(() => validateRules([ok, { platform: ["ios"] }]), "rules[1].target");
    rejects(() => validateRules([{ target: 42 }]), "rules[0].target");
    for (const target of ["javascript:alert(1)", "ftp://example.com/x", "data:text/html,hi", "/relative", "example.com"]) {
      const e = rejects(() => validateRules([ok, ok, { target }]), "rules[2].target");
      assert.equal(e.extra.field, "rules[2].target");
    }
  });

  test("bad platform", () => {
    rejects(() => validateRules([{ ...ok, platform: ["ios", "blackberry"] }]), "rules[0].platform[1]", "blackberry");
    rejects(() => validateRules([{ ...ok, platform: [] }]), "rules[0].platform");
    rejects(() => validateRules([{ ...ok, platform: "ios" }]), "rules[0].platform");
    rejects(() => validateRules([{ ...ok, platform: [7] }]), "rules[0].platform[0]");
  });

  test("bad language", () => {
    for (const language of [["english"], ["d"], ["de_AT"], ["de-"], [""], [5], "de", []]) {
      rejects(() => validateRules([ok, { ...ok, language }]), "rules[1].language");
    }
  });

  test("bad country", () => {
    for (const country of [["DEU"], ["D"], ["1A"], ["d e"], [null], "DE", []]) rejects(() => validateRules([{ ...ok, country }]), "rules[0].country");
  });

  test("query not an object, empty, or with bad values", () => {
    for (const query of [null, "ref", ["ref"], true, {}, { ref: false }, { ref: 1 }, { ref: null }, { ref: "x".repeat(513) }]) {
      rejects(() => validateRules([{ ...ok, query }]), "rules[0].query");
    }
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, true]));
    rejects(() => validateRules([{ ...ok, query: many }]), "rules[0].query");
  });

  test("bad times; after must be earlier than before", () => {
    rejects(() => validateRules([{ ...ok, after: "tomorrow" }]), "rules[0].after");
    rejects(() => validateRules([{ ...ok, before: "2026-13-45T99:00:00Z" }]), "rules[0].before");
    rejects(() => validateRules([{ ...ok, after: null }]), "rules[0].after");
    rejects(() => validateRules([{ ...ok, after: 1.5 }]), "rules[0].after");
    rejects(() => validateRules([ok, { ...ok, after: "2026-02-01T00:00:00Z", before: "2026-01-01T00:00:00Z" }]), "rules[1]", "after", "before");
    rejects(() => validateRules([{ ...ok, after: "2026-01-01T00:00:00Z", before: "2026-01-01T00:00:00Z" }]), "rules[0]", "after", "before");
  });

  test("bad or duplicate names", () => {
    for (const name of ["", " lead", "-x", "a/b", "x".repeat(65), 3]) rejects(() => validateRules([{ ...ok, name }]), "rules[0].name");
    rejects(() => validateRules([{ ...ok, name: "a" }, ok, { ...ok, name: "a" }]), "rules[2].name", '"a"');
    rejects(() => validateRules([{ ...ok, name: "rule 2" }, ok]), "rules[1].name", '"rule 2"');
  });

  test("too many rules", () => {
    assert.equal(validateRules(Array.from({ length: MAX_RULES }, () => ok)).length, MAX_RULES);
    const e = rejects(() => validateRules(Array.from({ length: MAX_RULES + 1 }, () => ok)), String(MAX_RULES));
    assert.equal(e.extra.field, "rules");
  });

  test("allowed_platforms", () => {
    assert.equal(validateAllowedPlatforms(null), null);
    assert.deepEqual(validateAllowedPlatforms(["IPhone", "iPad", "Android", "mobile"]), ["ios", "android", "mobile"]);
    rejects(() => validateAllowedPlatforms([]), "allowed_platforms");
    rejects(() => validateAllowedPlatforms(["ios", "palm"]), "allowed_platforms[1]", "palm");
    rejects(() => validateAllowedPlatforms("ios"), "allowed_platforms");
    rejects(() => validateAllowedPlatforms(Array.from({ length: 17 }, () => "ios")), "allowed_platforms");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("validateRules: normalisation", () => {
  test("an empty list is no rules", () => {
    assert.deepEqual(validateRules([]), []);
  });

  test("default names 'rule N' by position; given names are kept", () => {
    const r = validateRules([
      { target: "https://a.example/" },
      { name: "Spring sale: DE", target: "https://b.example/" },
      { target: "https://c.example/" },
    ]);
    assert.deepEqual(
      r.map((x) => x.name),
      ["rule 1", "Spring sale: DE", "rule 3"],
    );
  });

  test("platforms canonical and deduplicated, languages lower-case, countries upper-case, targets trimmed", () => {
    const [r] = validateRules([
      {
        target: "  https://example.com/app  ",
        platform: ["IPhone", "iPad", "ios", "WindowsPhone", "mac", "Mobile"],
        language: ["DE", "pt-BR", "de"],
        country: ["de", "At", "DE"],
        query: { ref: true, src: "ads" },
      },
    ]);
    assert.deepEqual(r, {
      name: "rule 1",
      target: "https://example.com/app",
      platform: ["ios", "windows-phone", "macos", "mobile"],
      language: ["de", "pt-br"],
      country: ["DE", "AT"],
      query: { ref: true, src: "ads" },
    });
  });

  test("times: ISO 8601 (any offset) or epoch ms, stored as ms, shown in ISO 8601 UTC", () => {
    const [r] = validateRules([{ target: "https://example.com/", after: "2026-01-01T01:00:00+01:00", before: 1767312000000 }]);
    assert.equal(r!.after, Date.parse("2026-01-01T00:00:00Z"));
    assert.equal(r!.before, 1767312000000);
    const [shown] = publicRules([r!]);
    assert.equal(shown!.after, "2026-01-01T00:00:00.000Z");
    assert.equal(shown!.before, "2026-01-02T00:00:00.000Z");
    assert.equal(shown!.target, "https://example.com/");
    const [plain] = publicRules(validateRules([{ target: "https://example.com/" }]));
    assert.deepEqual(plain, { name: "rule 1", target: "https://example.com/" }, "no times: none shown");
  });
});
