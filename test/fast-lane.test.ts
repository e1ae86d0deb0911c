/**
 * The fast lane (src/http/fast-lane.ts) in front of a real node:http server, spoken to with raw bytes on loopback: what
 * it answers itself, what it leaves to node:http (and that node:http then parses it from its first byte), keep-alive,
 * pipelining, Connection: close, HEAD, and closing the server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import {
  installFastLane,
  parseHead as parseHeadAlone,
  HeaderTemplate,
  PreparedHead,
  writePrepared,
  type FastLaneCounts,
  type HeadNames,
  type HotRequest,
  type HotResponse,
} from "../src/http/fast-lane.js";

/** answers the fast lane must refuse to send (each thrown before anything is written: node:http then serves the request) */
const BAD_HEADERS: string[][] = [
  ["Location", "https://example.com/\r\nSet-Cookie: evil=1"],
  ["Location", "https://example.com/\nevil"],
  ["X-Evil", "a\x00b"],
  ["X-Evil", "a\x7fb"],
  ["X-Evil", "\u20ac"],
  ["Bad Name", "evil"],
  ["X-Evil:", "x"],
];
import fc from "fast-check";
import { ADMIN_KEY, req, startApp } from "./helpers.js";

interface Lane {
  server: Server;
  port: number;
  counts: FastLaneCounts;
  /** what the fast lane's handler saw */
  seen: HotRequest[];
  close(): Promise<void>;
}

/**
 * node:http answers "node <method> <url> <body>"; the fast lane takes host fast.test (a path /wait/N answers after N
 * ms, /async/... after a lookup, /async-leave/... leaves it after one, /throw throws before answering).
 */
async function lane(): Promise<Lane> {
  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    let body = "";
    req.setEncoding("latin1");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => {
      const text = `node ${req.method} ${req.url} ${body}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  const seen: HotRequest[] = [];
  const handler = (req: HotRequest, res: HotResponse): boolean | Promise<boolean> => {
    if (req.headers.host !== "fast.test") return false;
    seen.push(req);
    const url = req.url!;
    const answer = () => {
      res.writeHead(302, ["Location", `https://example.com${url}`, "Content-Length", "0"]);
      res.end();
    };
    if (url.startsWith("/wait/")) setTimeout(answer, Number(url.slice(6)));
    else if (url.startsWith("/async-leave/")) return new Promise((r) => setTimeout(() => r(false), 20));
    else if (url.startsWith("/async/")) return new Promise((r) => setTimeout(() => (answer(), r(true)), 20));
    else if (url === "/throw") throw new Error("boom");
    else if (url === "/body") {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("grüße");
    } else if (url === "/good-header") {
      res.writeHead(302, ["Location", "https://example.com/", "X-Text", "caf\xe9\tau lait ~"]);
      res.end();
    } else if (url.startsWith("/bad-header/")) {
      res.writeHead(302, BAD_HEADERS[Number(url.slice(12))]!);
      res.end();
    } else answer();
    return true;
  };
  const counts: FastLaneCounts = { answered: 0, handedOver: 0 };
  installFastLane(server, handler, { keepAliveMs: 5000, counts });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    counts,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A raw connection: write bytes, read what comes back until it holds `n` responses (or the connection closes). */
class Raw {
  private data = "";
  closed = false;
  private waiters: (() => void)[] = [];
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.setEncoding("latin1");
    this.socket.on("data", (d: string) => {
      this.data += d;
      this.wake();
    });
    this.socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    this.socket.on("error", () => {});
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  send(bytes: string) {
    this.socket.write(bytes, "latin1");
  }
  /** Resolves with the first `n` responses (head and body, split by Content-Length), consumed. */
  async responses(n: number, timeoutMs = 3000): Promise<{ head: string; status: number; headers: Record<string, string>; body: string }[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = split(this.data);
      if (parsed.length >= n) {
        this.data = this.data.slice(parsed.slice(0, n).reduce((a, p) => a + p.length, 0));
        return parsed.slice(0, n);
      }
      if (this.closed) throw new Error(`connection closed after ${parsed.length} of ${n} responses: ${JSON.stringify(this.data)}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${parsed.length} of ${n} responses: ${JSON.stringify(this.data)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  async closedSoon(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
  end() {
    this.socket.destroy();
  }
}

function split(data: string) {
  const out: { head: string; status: number; headers: Record<string, string>; body: string; length: number }[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end < 0) return out;
    const head = data.slice(at, end);
    const lines = head.split("\r\n");
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":");
      headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    const isHeadAnswer = headers["x-head"] === "1";
    const len = isHeadAnswer ? 0 : Number(headers["content-length"] ?? 0);
    if (data.length < end + 4 + len) return out;
    const body = data.slice(end + 4, end + 4 + len);
    out.push({ head, status: Number(lines[0]!.split(" ")[1]), headers, body, length: end + 4 + len - at });
    at = end + 4 + len;
  }
}

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: fast.test\r\nUser-Agent: t\r\n${extra}\r\n`;

test("a simple GET is answered on the fast lane with node:http's framing", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(GET("/abc?x=1"));
  const [r] = await c.responses(1);
  assert.equal(r!.status, 302);
  assert.match(r!.head, /^HTTP\/1\.1 302 Found\r\n/);
  assert.equal(r!.headers.location, "https://example.com/abc?x=1");
  assert.equal(r!.headers.connection, "keep-alive");
  assert.equal(r!.headers["keep-alive"], "timeout=5");
  assert.equal(r!.headers["content-length"], "0");
  assert.ok(!Number.isNaN(Date.parse(r!.headers.date!)), "a Date header");
  assert.equal(l.seen[0]!.method, "GET");
  assert.equal(l.seen[0]!.headers["user-agent"], "t");
  assert.equal(typeof l.seen[0]!.socket.remoteAddress, "string");
  // the same connection again
  c.send(GET("/second"));
  const [r2] = await c.responses(1);
  assert.equal(r2!.headers.location, "https://example.com/second");
  assert.deepEqual(l.counts, { answered: 2, handedOver: 0 });
  c.end();
  await l.close();
});

test("header values are trimmed, names lower-cased, and a body is framed by its byte length", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(`GET /body HTTP/1.1\r\nHOST: fast.test\r\nX-Thing: \t spaced value \t\r\nReferer:\r\n\r\n`);
  const [r] = await c.responses(1);
  assert.equal(r!.status, 200);
  assert.equal(r!.headers["content-length"], String(Buffer.byteLength("grüße")));
  assert.equal(Buffer.from(r!.body, "latin1").toString("utf8"), "grüße");
  assert.equal(l.seen[0]!.headers["x-thing"], "spaced value");
  assert.equal(l.seen[0]!.headers.referer, "");
  c.end();
  await l.close();
});

test("HEAD: the same head, no body", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(`HEAD /body HTTP/1.1\r\nHost: fast.test\r\n\r\n`);
  c.send(GET("/after"));
  // (the reader cannot tell a HEAD answer's end by its length: read the two answers as one stream)
  const deadline = Date.now() + 3000;
  let text = "";
  c.socket.removeAllListeners("data");
  await new Promise<void>((resolve, reject) => {
    c.socket.on("data", (d: string) => {
      text += d;
      if (text.includes("https://example.com/after")) resolve();
    });
    setTimeout(() => reject(new Error(`no answers: ${text}`)), deadline - Date.now());
  });
  const [head, rest] = text.split("\r\n\r\n");
  assert.match(head!, /^HTTP\/1\.1 200 OK/);
  assert.match(head!, /Content-Length: 7/);
  assert.match(rest!, /^HTTP\/1\.1 302 Found/, "no body between the HEAD answer and the next one");
  c.end();
  await l.close();
});

test("pipelined requests are answered in order, whatever order their answers are ready in", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(GET("/wait/80") + GET("/wait/1") + GET("/now") + GET("/async/x"));
  const rs = await c.responses(4);
  assert.deepEqual(
    rs.map((r) => r.headers.location),
    ["https://example.com/wait/80", "https://example.com/wait/1", "https://example.com/now", "https://example.com/async/x"],
  );
  assert.equal(l.counts.answered, 4);
  c.end();
  await l.close();
});

test("a request with a body after a fast one: node:http takes the connection from that request's first byte on", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(GET("/one") + `POST /api HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 5\r\n\r\nhello` + GET("/three"));
  const rs = await c.responses(3);
  assert.equal(rs[0]!.headers.location, "https://example.com/one");
  assert.equal(rs[1]!.body, "node POST /api hello");
  // once node:http has the connection, it keeps it
  assert.equal(rs[2]!.body, "node GET /three ");
  assert.deepEqual(l.counts, { answered: 1, handedOver: 1 });
  c.end();
  await l.close();
});

test("what the fast lane does not answer, node:http parses from the start", async () => {
  const l = await lane();
  const cases: [string, string, RegExp][] = [
    ["another host", `GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n`, /^node GET \/x $/],
    ["HTTP/1.0", `GET /x HTTP/1.0\r\nHost: fast.test\r\n\r\n`, /^node GET \/x $/],
    ["a body by Content-Length", `GET /x HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 3\r\n\r\nabc`, /^node GET \/x abc$/],
    ["a chunked body", `GET /x HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /^node GET \/x abc$/],
    ["a repeated header", `GET /x HTTP/1.1\r\nHost: fast.test\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n`, /^node GET \/x $/],
    ["a repeated Host", `GET /x HTTP/1.1\r\nHost: fast.test\r\nHost: fast.test\r\n\r\n`, /.*/],
    ["an upgrade", `GET /x HTTP/1.1\r\nHost: fast.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, /.*/],
    ["an absolute-form target", `GET http://fast.test/x HTTP/1.1\r\nHost: fast.test\r\n\r\n`, /^node GET http:\/\/fast.test\/x $/],
    ["a POST", `POST /x HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 0\r\n\r\n`, /^node POST \/x $/],
    ["no Host", `GET /x HTTP/1.1\r\nUser-Agent: t\r\n\r\n`, /.*/],
    ["a header's value on two lines", `GET /x HTTP/1.1\r\nHost: fast.test\r\nX-A: 1\r\n  2\r\n\r\n`, /.*/],
    ["a lone LF", `GET /x HTTP/1.1\r\nHost: fast.test\nX-A: 1\r\n\r\n`, /.*/],
    ["a control character", `GET /x HTTP/1.1\r\nHost: fast.test\r\nX-A: a\x01b\r\n\r\n`, /.*/],
    ["a handler that leaves it after a lookup", GET("/async-leave/x"), /^node GET \/async-leave\/x $/],
    ["a handler that throws", GET("/throw"), /^node GET \/throw $/],
  ];
  for (const [what, bytes, expected] of cases) {
    const c = new Raw(l.port);
    const before = { ...l.counts };
    c.send(bytes);
    const [r] = await c.responses(1).catch((err) => {
      throw new Error(`${what}: ${err.message}`);
    });
    if (r!.status === 200) assert.match(r!.body, expected, what);
    else assert.equal(r!.status, 400, `${what}: node:http refuses it (${r!.head})`);
    assert.equal(l.counts.answered, before.answered, `${what}: not answered on the fast lane`);
    assert.equal(l.counts.handedOver, before.handedOver + 1, `${what}: handed over`);
    c.end();
  }
  await l.close();
});

test("a head that comes in pieces, or is too large, is node:http's (its timeouts and limits)", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(`GET /x HTTP/1.1\r\nHo`);
  await new Promise((r) => setTimeout(r, 50));
  c.send(`st: fast.test\r\n\r\n`);
  const [r] = await c.responses(1);
  assert.equal(r!.body, "node GET /x ");
  c.end();
  const big = new Raw(l.port);
  big.send(`GET /x HTTP/1.1\r\nHost: fast.test\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
  const [r2] = await big.responses(1);
  assert.equal(r2!.status, 431);
  big.end();
  assert.equal(l.counts.answered, 0);
  await l.close();
});

test("Connection: close is answered with Connection: close, then the connection closes", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.send(GET("/bye", "Connection: close\r\n") + GET("/never"));
  const [r] = await c.responses(1);
  assert.equal(r!.headers.connection, "close");
  assert.ok(await c.closedSoon(), "closed after the answer");
  assert.equal(l.seen.length, 1, "nothing after it is read");
  await l.close();
});

test("a client that closes its side after its requests gets every answer, then the connection closes", async () => {
  const l = await lane();
  const c = new Raw(l.port);
  c.socket.end(GET("/wait/50") + GET("/now"), "latin1");
  const rs = await c.responses(2);
  assert.deepEqual(
    rs.map((r) => r.headers.location),
    ["https://example.com/wait/50", "https://example.com/now"],
  );
  assert.ok(await c.closedSoon(1000), "closed after the last answer, not at the idle timeout");
  await l.close();
});

test("a header value with a line break is refused, not sent (no response splitting); so is any value or name node:http refuses", async () => {
  const l = await lane();
  for (let i = 0; i < BAD_HEADERS.length; i++) {
    const c = new Raw(l.port);
    c.send(GET(`/bad-header/${i}`));
    // the handler threw before answering: node:http serves the request
    const [r] = await c.responses(1);
    assert.equal(r!.body, `node GET /bad-header/${i} `, JSON.stringify(BAD_HEADERS[i]));
    assert.ok(!r!.head.includes("evil"));
    c.end();
  }
  // what node:http allows in a value: tabs, visible characters, obs-text
  const c = new Raw(l.port);
  c.send(GET("/good-header"));
  const [r] = await c.responses(1);
  assert.equal(r!.headers["x-text"], "caf\xe9\tau lait ~");
  c.end();
  await l.close();
});

test("a prepared head: checked once as writeHead checks, and answered as writeHead answers, on the fast lane and on node:http", async () => {
  for (const bad of BAD_HEADERS) {
    assert.throws(() => new PreparedHead(bad), TypeError, JSON.stringify(bad));
    assert.throws(() => new HeaderTemplate(bad[0]!, "v=", bad[1]!), TypeError, JSON.stringify(bad));
  }
  const COOKIE = new HeaderTemplate("Set-Cookie", "ct_vid=", "; Path=/; HttpOnly");
  const heads = [
    new PreparedHead(["Location", "https://example.com/a?b=1", "Content-Length", "0", "Cache-Control", "private, max-age=0"]),
    new PreparedHead(["Content-Type", "text/plain", "X-Text", "a\tb ~", "Content-Length", "4"]),
  ];
  const answer = (req: HotRequest, res: HotResponse, listed: boolean) => {
    const [, which, more] = req.url!.split("/");
    const head = heads[Number(which)]!;
    const extra = more === "cookie" ? ["X-More", "m"] : more === "bad" ? ["X-Evil", "a\r\nb"] : null;
    // (a cookie through a template: its fixed parts checked once, the visitor's id per answer)
    const id = more === "cookie" ? "abc" : more === "badcookie" ? "a\r\nX-Evil: 1" : null;
    // listed: the same headers through writeHead, which the prepared ones must answer exactly as
    if (listed) res.writeHead(302, [...head.list, ...(extra ?? []), ...(id !== null ? ["Set-Cookie", `ct_vid=${id}; Path=/; HttpOnly`] : [])]);
    else writePrepared(res, 302, head, extra, id !== null ? COOKIE : null, id ?? "");
    res.end(which === "1" ? "body" : "");
  };
  // (node:http's handler: a header it refuses is a 500 here, not an uncaught exception)
  const viaNode = (listed: boolean) => (req: HotRequest, res: ServerResponse) => {
    try {
      answer(req, res, listed);
    } catch {
      res.writeHead(500, { "content-length": "7" }).end("refused");
    }
  };
  const servers = [
    createServer({ keepAliveTimeout: 5000 }, viaNode(false)), // node:http: no writePreparedHead
    createServer({ keepAliveTimeout: 5000 }, viaNode(true)),
    createServer({ keepAliveTimeout: 5000 }, viaNode(false)),
  ];
  const counts: FastLaneCounts = { answered: 0, handedOver: 0 };
  installFastLane(servers[2]!, (req, res) => (answer(req, res, false), true), { keepAliveMs: 5000, counts });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
  try {
    for (const path of ["/0/", "/0/cookie", "/1/", "/1/cookie"]) {
      const got: string[] = [];
      for (const s of servers) {
        const c = new Raw((s.address() as { port: number }).port);
        c.send(GET(path));
        const [r] = await c.responses(1);
        got.push(r!.head.replace(/\r\nDate: [^\r]*/, "") + r!.body);
        c.end();
      }
      assert.match(got[0]!, path.startsWith("/0/") ? /\r\nCache-Control: private, max-age=0\r\n/ : /\r\nX-Text: a\tb ~\r\n/, path);
      assert.equal(got[0]!.includes("\r\nX-More: m\r\nSet-Cookie: ct_vid=abc; Path=/; HttpOnly\r\n"), path.endsWith("cookie"), path);
      assert.equal(got[1], got[0], `${path}: writeHead with the same headers`);
      assert.equal(got[2], got[0], `${path}: the fast lane`);
    }
    assert.equal(counts.answered, 4);
    // a header added to a prepared head is checked too: the fast lane's handler threw, so node:http answered
    for (const bad of ["/0/bad", "/0/badcookie"]) {
      const before = counts.handedOver;
      const c = new Raw((servers[2]!.address() as { port: number }).port);
      c.send(GET(bad));
      const [r] = await c.responses(1);
      assert.equal(counts.handedOver, before + 1, `${bad}: the fast lane's handler threw before answering`);
      assert.equal(r!.status, 500, `${bad}: refused by node:http's writeHead as well`);
      assert.ok(!r!.head.includes("X-Evil"), r!.head);
      c.end();
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())))));
  }
});

test("closing the server: idle connections close at once, a busy one after its answer", async () => {
  const l = await lane();
  const idle = new Raw(l.port);
  idle.send(GET("/a"));
  await idle.responses(1);
  const busy = new Raw(l.port);
  busy.send(GET("/wait/200"));
  await new Promise((r) => setTimeout(r, 50));
  const closed = l.close();
  assert.ok(await idle.closedSoon(1000), "the idle connection is closed");
  const [r] = await busy.responses(1);
  assert.equal(r!.headers.location, "https://example.com/wait/200");
  assert.equal(r!.headers.connection, "close");
  assert.ok(await busy.closedSoon(1000), "the busy one is closed after its answer");
  await closed;
});

test("parseHead: the heads the fast lane takes, and those it leaves, on their own or one after the other on a connection", () => {
  const sock = {} as never;
  // every head twice: on its own, and through one connection's names (see HeadNames), which each head changes
  const seen: HeadNames = { names: [], keys: [] };
  const parseHead = (head: string, s: Socket) => {
    const alone = parseHeadAlone(head, s);
    const along = parseHeadAlone(head, s, seen);
    assert.deepEqual(
      along && { ...along, headers: { ...along.headers } },
      alone && { ...alone, headers: { ...alone.headers } },
      JSON.stringify(head),
    );
    return alone;
  };
  const s = sock as Socket;
  const ok = parseHead("GET /a/b?c=%20d HTTP/1.1\r\nHost: x.test:8080\r\nAccept: */*\r\n", s);
  assert.equal(ok?.url, "/a/b?c=%20d");
  assert.equal(ok?.headers.host, "x.test:8080");
  for (const head of [
    "get / HTTP/1.1\r\nHost: x\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n__proto__: y\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n",
    "GET /a b HTTP/1.1\r\nHost: x\r\n",
    "GET * HTTP/1.1\r\nHost: x\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n",
  ])
    assert.equal(parseHead(head, s), null, JSON.stringify(head));
  // (a value of many spaces that ends in a lone CR: refused, in one pass; HEADER_LINES has no quantifiers to backtrack)
  assert.equal(parseHead(`GET / HTTP/1.1\r\nHost: x\r\nX: ${" ".repeat(16_000)}\r\r\n`, s), null);
  // names in any spelling, seen before or not (the name cache), values trimmed of spaces and tabs only
  for (let round = 0; round < 2; round++) {
    const r = parseHead("GET / HTTP/1.1\r\nHOST:x\r\nuSeR-aGeNt: \t a b \t\r\nX-Empty:\r\nX-Nbsp: \xa0v\xa0 \r\n", s);
    assert.deepEqual({ ...r?.headers }, { host: "x", "user-agent": "a b", "x-empty": "", "x-nbsp": "\xa0v\xa0" });
    for (const name of ["content-length", "CONTENT-LENGTH", "Transfer-Encoding", "tRANSFER-eNCODING", "UPGRADE", "HTTP2-Settings"])
      assert.equal(parseHead(`GET / HTTP/1.1\r\nHost: x\r\n${name}: 0\r\n`, s), null, name);
    // a repeated header, whatever its spelling
    assert.equal(parseHead("GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n", s), null);
    assert.equal(parseHead("GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nACCEPT: b\r\n", s), null);
  }
  // thousands of distinct names (more than the cache keeps): each read as it is sent
  for (let i = 0; i < 2000; i++) {
    const r = parseHead(`GET / HTTP/1.1\r\nHost: x\r\nX-Name-${i}: ${i}\r\n`, s);
    assert.equal(r?.headers[`x-name-${i}`], String(i));
  }
  // a name at the position of one before that it starts with, or that starts with it, or that differs in case only
  for (const [before, after] of [
    ["Accept: a", "Accept-Language: b"],
    ["Accept-Language: b", "Accept: a"],
    ["Host2: y", "Host: x"],
    ["Referer: r", "REFERER: r"],
    ["Content-Type: t", "Content-Length: 0"],
  ]) {
    parseHead(`GET / HTTP/1.1\r\nHost: x\r\n${before}\r\n`, s);
    parseHead(`GET / HTTP/1.1\r\nHost: x\r\n${after}\r\n`, s);
  }
  assert.equal(parseHead("GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\n", s)?.headers.accept, "a");
  assert.equal(parseHead("GET / HTTP/1.1\r\nHost: x\r\nAccept-Language: b\r\n", s)?.headers["accept-language"], "b");
  assert.equal(parseHead("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n", s), null);
  assert.ok(seen.names.length > 0, "the connection's names were kept");
});

test("parseHead: a connection's header lines sent again, byte for byte, are taken as parsed before; any other lines are parsed", () => {
  const s = {} as Socket;
  const seen: HeadNames = { names: [], keys: [] };
  const lines = "\r\nHost: x.test\r\nUser-Agent: a b\r\nAccept: */*\r\n";
  const first = parseHeadAlone(`GET /one HTTP/1.1${lines}`, s, seen)!;
  assert.ok(Object.isFrozen(first.headers), "a head's headers are frozen (they may be shared)");
  const again = parseHeadAlone(`HEAD /two?x=1 HTTP/1.1${lines}`, s, seen)!;
  assert.equal(again.headers, first.headers, "the same lines: the same headers");
  assert.deepEqual([again.method, again.url, again.keepAlive], ["HEAD", "/two?x=1", true]);
  // one byte changed, a line more, a line less, the same lines in another order: parsed (and kept in their place)
  for (const other of [
    "\r\nHost: x.test\r\nUser-Agent: a c\r\nAccept: */*\r\n",
    `${lines}Connection: close\r\n`,
    "\r\nHost: x.test\r\nUser-Agent: a b\r\n",
    "\r\nAccept: */*\r\nHost: x.test\r\nUser-Agent: a b\r\n",
  ]) {
    const r = parseHeadAlone(`GET /three HTTP/1.1${other}`, s, seen)!;
    assert.notEqual(r.headers, first.headers, JSON.stringify(other));
    assert.deepEqual({ ...r.headers }, { ...parseHeadAlone(`GET /three HTTP/1.1${other}`, s)!.headers }, JSON.stringify(other));
    assert.equal(r.keepAlive, !other.includes("close"));
    assert.equal(parseHeadAlone(`GET /four HTTP/1.1${other}`, s, seen)!.headers, r.headers, `${JSON.stringify(other)} again`);
  }
  // lines refused are refused again (what is kept is only what was taken), and do not replace what was kept
  const refused = "\r\nHost: x.test\r\nContent-Length: 0\r\n";
  for (let i = 0; i < 2; i++) assert.equal(parseHeadAlone(`GET / HTTP/1.1${refused}`, s, seen), null);
  // a request line the fast lane does not take is not taken for its lines' sake
  assert.equal(parseHeadAlone(`GET /a HTTP/1.0\r\nHost: x.test\r\nAccept: */*\r\n`, s, seen), null);
});

/** The fast lane's counts, from /metrics */
async function laneCounts(base: string): Promise<{ answered: number; handedOver: number }> {
  const m = await req(base, "GET", "/metrics", { key: null });
  const read = (result: string) => Number(new RegExp(`clicktrail_http_fast_lane_total\\{result="${result}"\\} (\\d+)`).exec(m.body)?.[1] ?? 0);
  return { answered: read("answered"), handedOver: read("handed_over") };
}

for (const on of [true, false])
  test(`the app: redirects, pixels and API on one connection (CLICKTRAIL_HTTP_FAST_LANE=${on})`, async () => {
    const t = await startApp({ CLICKTRAIL_HTTP_FAST_LANE: String(on) });
    try {
      await req(t.base, "POST", "/api/v1/domains", { body: { hostname: "go.lane.test" } });
      const link = await req(t.base, "POST", "/api/v1/links", { body: { domain: "go.lane.test", slug: "s", target: "https://example.com/x" } });
      assert.equal(link.status, 201);
      const token = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "https://example.com/t", open: true, metadata: { c: 1 } } });
      assert.equal(token.status, 200, token.body);
      const openPath = new URL(token.json.open_url).pathname;
      const before = await laneCounts(t.base);
      const c = new Raw(t.port);
      const ua = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n";
      c.send(`GET /s HTTP/1.1\r\nHost: go.lane.test\r\n${ua}\r\n`);
      const [r1] = await c.responses(1);
      assert.equal(r1!.status, 302);
      assert.equal(r1!.headers.location, "https://example.com/x");
      assert.match(r1!.headers["set-cookie"] ?? "", /^ct_vid=/);
      c.send(`GET /nope HTTP/1.1\r\nHost: go.lane.test\r\n${ua}\r\n`);
      const [r2] = await c.responses(1);
      assert.equal(r2!.status, 404);
      assert.match(r2!.body, /no link here/);
      c.send(`GET ${openPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n${ua}\r\n`);
      const [r3] = await c.responses(1);
      assert.equal(r3!.status, 200);
      assert.equal(r3!.headers["content-type"], "image/png");
      // an API request on the same connection: node:http (and the web framework) from here on
      c.send(`GET /api/v1/links HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`);
      const [r4] = await c.responses(1);
      assert.equal(r4!.status, 200);
      assert.equal(JSON.parse(r4!.body).links[0].clicks, 1, "the redirect's click is counted");
      c.send(`GET /s HTTP/1.1\r\nHost: go.lane.test\r\n${ua}\r\n`);
      const [r5] = await c.responses(1);
      assert.equal(r5!.status, 302);
      c.end();
      const after = await laneCounts(t.base);
      if (on) {
        assert.equal(after.answered - before.answered, 3, "the two redirects and the pixel");
        // (and /metrics reads on new connections, if the client's agent opened any)
        assert.ok(after.handedOver - before.handedOver >= 1, "the API request's connection");
      } else assert.deepEqual(after, { answered: 0, handedOver: 0 });
      const stats = await req(t.base, "GET", "/api/v1/stats");
      assert.equal(stats.json.clicks, 2, "both redirects are stored");
    } finally {
      await t.close();
    }
  });

const NODE_400 = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";

/** Both servers' handler: the request as it was read, as JSON. */
function echo(req: HotRequest, res: HotResponse) {
  const body = JSON.stringify({ m: req.method, u: req.url, h: req.headers });
  res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Writes `bytes` and a last request that closes the connection; everything read until it closes, Date lines removed. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let out = "";
    const done = () => resolve(out.replace(/\r\nDate: [^\r]*/g, ""));
    const timer = setTimeout(() => (s.destroy(), done()), 2000);
    s.setEncoding("latin1");
    s.on("data", (d: string) => (out += d));
    s.on("error", () => {});
    s.on("close", () => (clearTimeout(timer), done()));
    s.end(`${bytes}GET /end HTTP/1.1\r\nHost: end\r\nConnection: close\r\n\r\n`, "latin1");
  });
}

test("differential: whatever the bytes, the fast lane's server answers exactly as node:http alone does", async () => {
  const plain = createServer({ keepAliveTimeout: 5000 }, echo);
  const laned = createServer({ keepAliveTimeout: 5000 }, echo);
  const counts: FastLaneCounts = { answered: 0, handedOver: 0 };
  installFastLane(laned, (req, res) => (echo(req, res), true), { keepAliveMs: 5000, counts });
  await Promise.all([plain, laned].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
  const port = (s: Server) => (s.address() as { port: number }).port;
  // pieces of requests, well-formed and not: methods, targets, versions, header lines, line ends
  const text = (chars: string, max: number) => fc.string({ unit: fc.constantFrom(...chars.split("")), maxLength: max });
  const header = fc.oneof(
    // well-formed ones, mostly
    { weight: 24, arbitrary: fc.tuple(text("xXaA-_09", 10), text("abc XYZ09-_.;=/\t\xe4\"',", 24)).map(([n, v]) => `X-${n}:${v}`) },
    {
      weight: 12,
      arbitrary: fc.constantFrom("User-Agent: Mozilla/5.0 (X11)", "Accept: */*", "Cookie: a=1; b=2", "Connection: close", "Connection: Keep-Alive"),
    },
    // and every kind the fast lane must leave to node:http
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "Host: H.Test:8080",
        "Host:",
        "host: a\r\nHost: b",
        "Cookie: a=1\r\nCookie: b=2",
        "Connection: upgrade",
        "Content-Length: 0",
        "Transfer-Encoding: chunked",
        "Expect: 100-continue",
        "X-Folded: a\r\n b",
        "X-Lone: a\nX-B: c",
        "X-Space : a",
        "X A: b",
        ": empty name",
        "__proto__: x",
        "constructor: x",
        "X-Ctl: a\x01b",
        "X-Del: a\x7f",
        "X-High: \x80\xff",
      ),
    },
    { weight: 1, arbitrary: fc.tuple(text("xXaA-_!#~09 ", 12), text("abc \t\x00\x01\x0b\x7f\x80\xff\r\n", 12)).map(([n, v]) => `${n}:${v}`) },
  );
  const request = fc
    .record({
      method: fc.oneof(
        { weight: 12, arbitrary: fc.constantFrom("GET", "HEAD") },
        { weight: 1, arbitrary: fc.constantFrom("POST", "get", "OPTIONS") },
      ),
      target: fc.oneof(
        { weight: 1, arbitrary: fc.constantFrom("/", "/a?b=c&d", "/%41%zz", "*", "http://h.test/x", "/a b", "/\xe4", "") },
        { weight: 3, arbitrary: text("abc/?&=%.~-09", 16).map((t) => `/${t}`) },
      ),
      version: fc.oneof(
        { weight: 12, arbitrary: fc.constant("HTTP/1.1") },
        { weight: 1, arbitrary: fc.constantFrom("HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ") },
      ),
      headers: fc.array(header, { maxLength: 4 }),
      host: fc.oneof({ weight: 12, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      eol: fc.oneof({ weight: 12, arbitrary: fc.constant("\r\n") }, { weight: 1, arbitrary: fc.constant("\n") }),
    })
    .map((r) => {
      const lines = [`${r.method} ${r.target} ${r.version}`, ...(r.host ? ["Host: h.test"] : []), ...r.headers];
      const head = lines.join(r.eol) + r.eol + r.eol;
      return head + (r.headers.some((h) => h.startsWith("Transfer-Encoding")) ? "0\r\n\r\n" : "");
    });
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 3 }), async (requests) => {
        const bytes = requests.join("");
        const [a, b] = await Promise.all([exchange(port(plain), bytes), exchange(port(laned), bytes)]);
        if (b === a) return;
        // One difference: node:http alone, reading a malformed request among pipelined ones, closes the connection
        // without answering it or the good ones before it that it had not answered yet. With the fast lane in front,
        // those are answered (each exactly as node:http answers it on its own), then node:http's 400 for the malformed
        // one.
        const answers = (text: string) => text.split(/(?=HTTP\/1\.1 \d{3} )/).filter(Boolean);
        const [aa, bb] = [answers(a), answers(b)];
        assert.deepEqual(bb.slice(0, aa.length), aa, `answers to ${JSON.stringify(bytes)}`);
        for (let i = aa.length; i < bb.length; i++) {
          if (i === bb.length - 1 && bb[i] === NODE_400) break;
          const alone = answers(await exchange(port(plain), requests[i] ?? ""))[0];
          assert.equal(bb[i], alone, `answer ${i + 1} to ${JSON.stringify(bytes)}`);
        }
      }),
      { seed: 20261207, numRuns: 300 },
    );
    // (and the lane answered a good share of them itself)
    assert.ok(counts.answered > 150 && counts.handedOver > 150, `answered on the fast lane: ${counts.answered}, handed over: ${counts.handedOver}`);
  } finally {
    await Promise.all([plain, laned].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
});
