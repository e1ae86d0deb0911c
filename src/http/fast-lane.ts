import { STATUS_CODES, type IncomingHttpHeaders, type Server } from "node:http";
import type { Socket } from "node:net";

/**
 * The fast lane: HTTP/1.1 for the hot paths (redirects, tracking links and pixels) without node:http's per-request
 * objects.
 *
 * Every connection starts here. A request is answered here only when it is one of the simplest kind: its whole head in
 * what has arrived, `GET` or `HEAD`, HTTP/1.1, an origin-form target, one `Host`, no body (no `Content-Length`,
 * `Transfer-Encoding`, `Expect` or `Upgrade`), no repeated header, nothing but visible characters and spaces, and a
 * handler that takes it (a link domain's path, `/t/c/`, `/t/o/`). Anything else, from the first byte of that request
 * on, is handed to node:http, which parses it from the start and keeps the connection: a request the fast lane is not
 * sure of is never answered by it, so the two parsers can never disagree on where a request ends (no smuggling).
 *
 * Why: node:http builds an IncomingMessage and a ServerResponse (two streams) per request, and answers through them.
 * Measured on this project's 2-core machine under wrk (64 connections), the same 302 cost 27–37 µs of CPU per request
 * through node:http and 20–23 µs through a parser like this one: more than all of a redirect's own work (looking up
 * the link, the click event, the journal). See docs/performance.md.
 *
 * Connections answer one request at a time, in order (pipelined requests wait in the buffer). Idle connections close
 * after `keepAliveMs`; `server.closeIdleConnections()` (called by `server.close()`) closes the fast lane's idle ones
 * too, and the busy ones after their answer.
 */

/** What the hot paths read of a request: node's IncomingMessage has it, and so does the fast lane's. */
export interface HotRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string };
}

/** What the hot paths do with an answer: node's ServerResponse can, and so can the fast lane's. */
export interface HotResponse {
  readonly headersSent: boolean;
  /** headers as an object, or as a flat list (name, value, name, value, …) */
  writeHead(status: number, headers?: Record<string, string | number> | string[]): unknown;
  /** the fast lane's: headers checked and written out once, see PreparedHead (node's ServerResponse: writePrepared) */
  writePreparedHead?(status: number, head: PreparedHead, more: string[] | null, templated: HeaderTemplate | null, middle: string): unknown;
  end(body?: string, encoding?: BufferEncoding): unknown;
  destroy(): unknown;
}

/**
 * Response headers that many answers share (a link's Location, a pixel's headers), checked and written out as header
 * lines once: an answer with them skips checking each name and value again and building their lines (measured under
 * redirects, side by side with the same build checking every answer's headers: 15.58 → 15.28 µs of the HTTP thread per
 * redirect, median of six rounds). Invalid ones throw here, as writeHead would.
 */
export class PreparedHead {
  readonly lines: string;
  readonly hasLength: boolean;

  /** `list`: name, value, name, value, … */
  constructor(readonly list: readonly string[]) {
    let lines = "";
    let hasLength = false;
    for (let i = 0; i < list.length; i += 2) {
      const r = headerLine(list[i]!, list[i + 1]!);
      lines += r.line;
      hasLength ||= r.isLength;
    }
    this.lines = flat(lines);
    this.hasLength = hasLength;
  }
}

/**
 * A response header whose value is fixed parts around one part that differs from answer to answer (a new visitor's
 * cookie): the fixed parts are checked and written out once, the part between them is checked per answer (see
 * PreparedHead; the cookie's whole value, checked per answer, was 2.5 % of the HTTP thread under redirects).
 */
export class HeaderTemplate {
  private readonly before: string;
  private readonly after: string;

  constructor(
    readonly name: string,
    private readonly valueBefore: string,
    private readonly valueAfter: string,
  ) {
    headerLine(name, valueBefore + valueAfter);
    this.before = flat(`${name}: ${valueBefore}`);
    this.after = flat(`${valueAfter}\r\n`);
  }

  value(middle: string): string {
    return this.valueBefore + middle + this.valueAfter;
  }

  /** The header's line with `middle` in its place; throws on a character writeHead refuses, as writeHead would. */
  line(middle: string): string {
    if (!validValue(middle)) throw new TypeError(`invalid character in the value of header ${this.name}`);
    return this.before + middle + this.after;
  }
}

/**
 * Answers with a PreparedHead, `more` headers (checked as writeHead checks them) and a templated one (with `middle` in
 * its place), on the fast lane or node:http.
 */
export function writePrepared(
  res: HotResponse,
  status: number,
  head: PreparedHead,
  more: string[] | null = null,
  templated: HeaderTemplate | null = null,
  middle = "",
): void {
  if (res.writePreparedHead) res.writePreparedHead(status, head, more, templated, middle);
  else {
    const list = [...head.list, ...(more ?? [])];
    if (templated) list.push(templated.name, templated.value(middle));
    res.writeHead(status, list);
  }
}

/** `s` as one flat string (a concatenation is a tree of pieces, which every write of it would walk again) */
function flat(s: string): string {
  return Buffer.from(s, "latin1").toString("latin1");
}

/** One response header's line, checked (node:http's rules); whether it is Content-Length. */
function headerLine(name: string, value: string | number): { line: string; isLength: boolean } {
  const v = typeof value === "number" ? String(value) : value;
  if (!validName(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
  if (!validValue(v)) throw new TypeError(`invalid character in the value of header ${name}`);
  return { line: `${name}: ${v}\r\n`, isLength: name.length === 14 && name.toLowerCase() === "content-length" };
}

/**
 * Takes a request and answers it (now or later): true; or leaves it, answered by nothing: false (node:http then serves
 * it). A promise when it must look something up first.
 */
export type FastLaneHandler = (req: HotRequest, res: HotResponse) => boolean | Promise<boolean>;

export interface FastLaneCounts {
  /** requests answered on the fast lane */
  answered: number;
  /** connections handed to node:http (with the request that could not be answered here) */
  handedOver: number;
}

export interface FastLaneOptions {
  /** idle connections close after this long (node:http's keepAliveTimeout) */
  keepAliveMs: number;
  counts?: FastLaneCounts;
  log?: { error(obj: object, msg: string): void };
}

/** node:http's default limit on a request's head: a larger one goes to node:http, which answers 431 */
const MAX_HEAD = 16 * 1024;
/** bytes buffered while a request is answered (pipelined requests) before the connection stops reading */
const MAX_BUFFERED = 64 * 1024;
/** the request line, up to the CRLF that ends it: the method, an origin-form target of visible characters, HTTP/1.1 */
const REQUEST_LINE = /(GET|HEAD) (\/[\x21-\x7e]*) HTTP\/1\.1(?=\r\n)/y;
/**
 * A head's header lines, all of them in one pass (each from the CRLF that ends the line before it: a token, a colon, the
 * value with its spaces), then the CRLF that ends the last: tabs, visible characters and obs-text in values, no control
 * character, so a lone CR or LF anywhere fails the head. The token cannot hold a colon or a CR and the value cannot
 * hold a CR, so each line can end in one place only: linear in the head's length, whatever it holds. (One match for
 * the head, then the lines cut at their CRLFs and colons: measured alone, a browser's head of six lines took 1.00–1.05
 * µs to parse against 1.20–1.25 with a match per line.)
 */
const HEADER_LINES = /(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)*\r\n$/y;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Whether a response header's value holds only what node:http allows in one (tabs, visible characters, obs-text): a
 * loop rather than a regular expression, whose entry cost more than the check of a short value (profiled under
 * redirects: the header checks were 2.5 % of the HTTP thread, mostly entering the two expressions).
 */
function validValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 9) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** headers a request of the fast lane may not carry: a body, an upgrade, an expectation (node:http serves those) */
const REFUSED = new Set(["content-length", "transfer-encoding", "expect", "upgrade", "http2-settings", "__proto__"]);

/**
 * A header name as sent → its key in `headers` (lower case, and interned: V8 stores a property under an interned
 * string without looking it up in its string table first), or null for a refused one. Clients send the same few names
 * in the same spelling, so most heads find every name here (one hash lookup instead of a lower-casing, a set lookup
 * and an interning per line). Names past NAMES_MAX are not kept: random names cannot grow it.
 */
const NAMES = new Map<string, string | null>();
const NAMES_MAX = 512;

function headerKey(name: string): string | null {
  let key = NAMES.get(name);
  if (key !== undefined) return key;
  const lower = name.toLowerCase();
  // (a property name made from it: the interned string)
  key = REFUSED.has(lower) ? null : Object.keys({ [lower]: 0 })[0]!;
  if (NAMES.size < NAMES_MAX) NAMES.set(name, key);
  return key;
}

/** response header names already checked (the hot paths send a few constant ones); at most NAMES_MAX */
const CHECKED_NAMES = new Set<string>();

function validName(name: string): boolean {
  if (CHECKED_NAMES.has(name)) return true;
  if (!TOKEN.test(name)) return false;
  if (CHECKED_NAMES.size < NAMES_MAX) CHECKED_NAMES.add(name);
  return true;
}

let dateString = "";
let dateUntil = 0;
/** The Date header's value, made once a second (as node:http does). */
function httpDate(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateString = new Date(now).toUTCString();
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateString;
}

class FastRequest implements HotRequest {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly headers: IncomingHttpHeaders,
    readonly socket: Socket,
    /** no `Connection: close` */
    readonly keepAlive: boolean,
  ) {}
}

/**
 * What a connection's heads before this one were, to parse the next one faster.
 * - Its header names as its last head sent them, by position, and their keys. A client sends the same names in the same
 *   order every time: a name found again at its position is compared in place, not cut out of the head and looked up
 *   (measured alone, a browser's head of six lines, made a string and parsed: 1.16–1.23 against 1.32 µs).
 * - Its last head taken's header lines, as sent, and what they were parsed into (frozen, as every head's headers are:
 *   shared by the requests that sent the same lines). A client mostly sends the same lines again with each request (a
 *   browser's, a load generator's): equal to the last ones, byte for byte, they are not checked and parsed again.
 */
export interface HeadNames {
  names: string[];
  keys: (string | null)[];
  lines?: string;
  headers?: Readonly<Record<string, string>>;
  keepAlive?: boolean;
}

/** positions a connection's HeadNames keeps (a head's later lines are looked up as they come) */
const HEAD_NAMES_MAX = 32;

/**
 * A request's head parsed, or null when it is not one the fast lane answers (node:http will parse it). `head` is the
 * request line and header lines, each ending in CRLF, without the blank line; `seen`, the connection's names of the heads
 * before.
 */
export function parseHead(head: string, socket: Socket, seen: HeadNames | null = null): FastRequest | null {
  REQUEST_LINE.lastIndex = 0;
  const line = REQUEST_LINE.exec(head);
  if (!line) return null;
  let at = REQUEST_LINE.lastIndex;
  const lines = seen !== null ? head.slice(at) : "";
  if (seen?.lines === lines) return new FastRequest(line[1]!, line[2]!, seen.headers!, socket, seen.keepAlive!);
  HEADER_LINES.lastIndex = at;
  if (!HEADER_LINES.test(head)) return null;
  const headers: Record<string, string> = {};
  const last = head.length - 2;
  for (let i = 0; at < last; i++) {
    // (the match above: a CRLF, a token, a colon, a value up to the next CRLF; a token holds no colon, so the name at
    // this position in the head before is this one if it is here and a colon follows it)
    const known = seen?.names[i];
    let colon: number;
    let key: string | null;
    if (known !== undefined && head.charCodeAt(at + 2 + known.length) === 58 && head.startsWith(known, at + 2)) {
      colon = at + 2 + known.length;
      key = seen!.keys[i] as string | null;
    } else {
      colon = head.indexOf(":", at + 2);
      const name = head.slice(at + 2, colon);
      key = headerKey(name);
      if (seen !== null && i < HEAD_NAMES_MAX) {
        seen.names[i] = name;
        seen.keys[i] = key;
      }
    }
    const end = head.indexOf("\r\n", colon);
    if (key === null || headers[key] !== undefined) return null;
    headers[key] = trimSpaces(head, colon + 1, end);
    at = end;
  }
  if (headers.host === undefined) return null;
  const connection = headers.connection?.toLowerCase();
  if (connection !== undefined && connection !== "keep-alive" && connection !== "close") return null;
  const keepAlive = connection !== "close";
  Object.freeze(headers);
  if (seen !== null) {
    seen.lines = lines;
    seen.headers = headers;
    seen.keepAlive = keepAlive;
  }
  return new FastRequest(line[1]!, line[2]!, headers, socket, keepAlive);
}

/** `s` from `a` to `b`, without the spaces and tabs around it (String.prototype.trim would take other white space too). */
function trimSpaces(s: string, a: number, b: number): string {
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return s.slice(a, b);
}

/** A connection on the fast lane: its unparsed bytes (the request being answered first) and its state. */
class Connection {
  buf: Buffer | null = null;
  /** a request is being answered; its head and blank line are the first `taken` bytes of `buf` */
  busy = false;
  taken = 0;
  /** answer the request being answered with `Connection: close`, then close */
  closing = false;
  /** inside pump(): an answer given at once does not start another pump */
  pumping = false;
  /** the client has closed its side: the requests it sent are answered, then the connection closes */
  ended = false;
  /** what its heads before were: their header names by position, the last one's lines and headers (see HeadNames) */
  readonly names: HeadNames = { names: [], keys: [], lines: undefined, headers: undefined, keepAlive: undefined };
  readonly onData = (chunk: Buffer) => this.data(chunk);
  readonly onEnd = () => {
    this.ended = true;
    if (!this.busy && this.buf === null) this.socket.end();
  };
  readonly onTimeout = () => {
    if (!this.busy) this.socket.destroy();
  };
  readonly onClose = () => this.lane.conns.delete(this);

  constructor(
    readonly socket: Socket,
    readonly lane: Lane,
  ) {}

  data(chunk: Buffer) {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.busy) this.pump();
    else if (this.buf.length > MAX_BUFFERED) this.socket.pause();
  }

  /** Answers the requests in the buffer, one after the other, until one is under way or the buffer is empty. */
  pump() {
    this.pumping = true;
    try {
      while (!this.busy && this.buf !== null && !this.socket.destroyed) {
        const buf = this.buf;
        const end = buf.indexOf("\r\n\r\n", 0, "latin1");
        // a head not all here yet (or too large): node:http waits for it, with its timeouts and limits
        if (end < 0 || end > MAX_HEAD) return this.handOver();
        const req = parseHead(buf.toString("latin1", 0, end + 2), this.socket, this.names);
        if (!req) return this.handOver();
        this.busy = true;
        this.taken = end + 4;
        const res = new FastResponse(this, req.method === "HEAD", req.keepAlive);
        let taken: boolean | Promise<boolean>;
        try {
          taken = this.lane.handler(req, res);
        } catch (err) {
          // the handlers answer their own failures; one that throws without answering leaves the request to node:http
          this.lane.log?.error({ err }, "fast lane: a handler failed");
          taken = res.headersSent;
        }
        if (taken === false) return this.handOver();
        if (taken !== true)
          taken.then(
            (t) => {
              if (!t && !res.headersSent) this.handOver();
            },
            () => {
              if (!res.headersSent) this.handOver();
            },
          );
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The answer to the request under way is written: on to the next one, or closed. */
  answered(close: boolean) {
    const buf = this.buf!;
    this.buf = buf.length > this.taken ? buf.subarray(this.taken) : null;
    this.busy = false;
    this.lane.counts.answered++;
    if (close || (this.ended && this.buf === null)) {
      this.socket.end();
      this.buf = null;
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    if (!this.pumping && this.buf !== null) this.pump();
  }

  /**
   * node:http takes the connection from the request at the start of the buffer on: it parses what is buffered, then
   * what comes (its parser reads the socket itself from then on).
   */
  handOver() {
    const s = this.socket;
    this.lane.conns.delete(this);
    this.lane.counts.handedOver++;
    s.pause();
    s.removeListener("data", this.onData);
    s.removeListener("timeout", this.onTimeout);
    s.removeListener("end", this.onEnd);
    s.removeListener("close", this.onClose);
    s.removeListener("error", ignore);
    s.setTimeout(0);
    if (s.destroyed) return;
    if (this.buf !== null) s.unshift(this.buf);
    this.buf = null;
    this.lane.nodeHttp.call(this.lane.server, s);
    s.resume();
  }
}

const ignore = () => {};

class FastResponse implements HotResponse {
  headersSent = false;
  private status = 200;
  private lines = "";
  private hasLength = false;

  constructor(
    private readonly conn: Connection,
    private readonly head: boolean,
    private readonly keepAlive: boolean,
  ) {}

  writeHead(status: number, headers?: Record<string, string | number> | string[]): this {
    if (this.headersSent) throw new Error("fast lane: writeHead after the head was sent");
    this.status = status;
    if (Array.isArray(headers)) for (let i = 0; i < headers.length; i += 2) this.header(headers[i]!, headers[i + 1]!);
    else if (headers) for (const name in headers) this.header(name, headers[name]!);
    return this;
  }

  writePreparedHead(status: number, head: PreparedHead, more: string[] | null, templated: HeaderTemplate | null, middle: string): this {
    if (this.headersSent) throw new Error("fast lane: writeHead after the head was sent");
    this.status = status;
    this.lines = head.lines;
    this.hasLength = head.hasLength;
    if (more) for (let i = 0; i < more.length; i += 2) this.header(more[i]!, more[i + 1]!);
    if (templated) this.lines += templated.line(middle);
    return this;
  }

  private header(name: string, value: string | number) {
    const { line, isLength } = headerLine(name, value);
    if (isLength) this.hasLength = true;
    this.lines += line;
  }

  end(body = "", encoding: BufferEncoding = "utf8"): this {
    if (this.headersSent) return this;
    this.headersSent = true;
    const conn = this.conn;
    const close = !this.keepAlive || conn.closing;
    let out = `HTTP/1.1 ${this.status} ${STATUS_CODES[this.status] ?? "Unknown"}\r\n${this.lines}Date: ${httpDate()}\r\n`;
    out += close ? "Connection: close\r\n" : conn.lane.keepAliveLines;
    if (!this.hasLength) out += `Content-Length: ${Buffer.byteLength(body, encoding)}\r\n`;
    out += "\r\n";
    const s = conn.socket;
    if (!s.destroyed) {
      if (body === "" || this.head) s.write(out, "latin1");
      else if (encoding === "latin1") s.write(out + body, "latin1");
      else {
        s.cork();
        s.write(out, "latin1");
        s.write(body, encoding);
        s.uncork();
      }
    }
    conn.answered(close);
    return this;
  }

  destroy(): this {
    this.conn.socket.destroy();
    return this;
  }
}

class Lane {
  readonly conns = new Set<Connection>();
  readonly keepAliveLines: string;
  readonly counts: FastLaneCounts;
  readonly log: FastLaneOptions["log"];
  closing = false;

  constructor(
    readonly server: Server,
    /** node:http's own connection listener */
    readonly nodeHttp: (this: Server, socket: Socket) => void,
    readonly handler: FastLaneHandler,
    readonly opts: FastLaneOptions,
  ) {
    this.keepAliveLines = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(opts.keepAliveMs / 1000)}\r\n`;
    this.counts = opts.counts ?? { answered: 0, handedOver: 0 };
    this.log = opts.log;
  }

  accept(socket: Socket) {
    if (this.closing) return this.nodeHttp.call(this.server, socket);
    const c = new Connection(socket, this);
    this.conns.add(c);
    socket.setTimeout(this.opts.keepAliveMs);
    socket.on("data", c.onData);
    socket.on("timeout", c.onTimeout);
    socket.on("end", c.onEnd);
    socket.on("error", ignore);
    socket.on("close", c.onClose);
  }

  /** Closes the idle connections; the busy ones close after their answer. */
  closeIdle() {
    this.closing = true;
    for (const c of this.conns) {
      if (c.busy) c.closing = true;
      else c.socket.destroy();
    }
  }

  closeAll() {
    this.closing = true;
    for (const c of this.conns) c.socket.destroy();
  }
}

/**
 * Puts the fast lane in front of a node:http server: it takes every connection the server accepts, and hands to
 * node:http those it does not answer (see the module comment). `server.close()` and `closeIdleConnections()` close its
 * idle connections too; `closeAllConnections()` all of them.
 */
export function installFastLane(server: Server, handler: FastLaneHandler, opts: FastLaneOptions): { counts: FastLaneCounts } {
  const listeners = server.listeners("connection") as ((this: Server, socket: Socket) => void)[];
  const nodeHttp = listeners.find((l) => l.name === "connectionListener") ?? listeners[0];
  if (!nodeHttp) throw new Error("fast lane: the server has no connection listener (not a node:http server?)");
  server.removeListener("connection", nodeHttp);
  const lane = new Lane(server, nodeHttp, handler, opts);
  server.on("connection", (socket: Socket) => lane.accept(socket));
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    lane.closeIdle();
  };
  const closeAll = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    closeAll();
    lane.closeAll();
  };
  return { counts: lane.counts };
}
