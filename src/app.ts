import "./util/tick-shape.js";
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { Config } from "./config.js";
import { AppError, problem } from "./errors.js";
import { AuthService } from "./auth/service.js";
import { authRoutes } from "./auth/routes.js";
import { SessionService } from "./auth/sessions.js";
import path from "node:path";
import { EventWriter, type EventLog, type WriterOptions } from "./events/writer.js";
import { ThreadedWriter, type PgWriterFolders, type WriterTarget } from "./events/writer-thread.js";
import { SqliteStore } from "./store/sqlite/index.js";
import { PgStore } from "./store/postgres/index.js";
import { Journal } from "./events/journal.js";
import { Spool } from "./events/spool.js";
import { DailySalt } from "./events/salt.js";
import { GeoIp } from "./events/geoip.js";
import { StatsService } from "./events/stats.js";
import { eventRoutes } from "./events/routes.js";
import { DomainService } from "./links/domains.js";
import { LinkService } from "./links/links.js";
import { LinkResolver } from "./links/resolver.js";
import { createRedirectHandler } from "./links/redirect.js";
import { linkRoutes } from "./links/routes.js";
import { CampaignService } from "./campaigns/service.js";
import { campaignRoutes } from "./campaigns/routes.js";
import { o7trackerRoutes } from "./dialects/o7tracker.js";
import { microticksRoutes } from "./dialects/microticks.js";
import { dashboardRoutes } from "./web/routes.js";
import { IngestService } from "./events/ingest.js";
import { ingestRoutes } from "./events/ingest-routes.js";
import { createRawIngest } from "./events/ingest-raw.js";
import { startWebhooks } from "./webhooks/service.js";
import { webhookRoutes } from "./webhooks/routes.js";
import { createTrackingHandler, trackingRoutes, type TrackingRouteDeps } from "./tracking/server/routes.js";
import { TrackingKeyring } from "./tracking/server/keyring.js";
import { createMetrics, type Metrics } from "./ops/metrics.js";
import { opsRoutes, VERSION } from "./ops/routes.js";
import { hiitrackRoutes } from "./dialects/hiitrack.js";
import { Analytics } from "./funnels/source.js";
import { analyticsStoreFor } from "./funnels/store.js";
import { VisitorService } from "./visitors/service.js";
import { visitorRoutes } from "./visitors/routes.js";
import { FunnelService } from "./funnels/service.js";
import { funnelRoutes } from "./funnels/routes.js";
import { problemSchema } from "./schemas.js";
import { installFastLane, type HotRequest, type HotResponse } from "./http/fast-lane.js";
import { StoreUnavailable, type Domain, type Store } from "./store/port.js";
import { requestHost, trustFunction } from "./util/net.js";
import type { WriterScheduling } from "./util/sched.js";

/** A URL for the log: the values of query parameters that carry secrets (Microticks' ?key=, tokens, passwords) masked. */
export function maskSecrets(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  return url.slice(0, q) + url.slice(q).replace(/([?&](?:key|token|password|secret|api_key)=)[^&#]*/gi, "$1***");
}

/** The path of the first string holding U+0000 in a parsed request part (depth-limited: bodies are validated too), or null. */
function nulField(v: unknown, at: string, depth = 0): string | null {
  if (typeof v === "string") return v.includes("\u0000") ? at : null;
  if (!v || typeof v !== "object" || depth > 16) return null;
  for (const [k, x] of Object.entries(v)) {
    if (k.includes("\u0000")) return at ? `${at}.${k}` : k;
    const f = nulField(x, at ? `${at}.${k}` : k, depth + 1);
    if (f !== null) return f;
  }
  return null;
}

/** Paths the API serves on any host (so they answer while the database is away and a host cannot be looked up). */
const API_PATHS = ["/api", "/healthz", "/metrics", "/docs", "/openapi.json", "/dashboard", "/tracker.js", "/examples"];

export interface Services {
  store: Store;
  auth: AuthService;
  domains: DomainService;
  links: LinkService;
  campaigns: CampaignService;
  ingest: IngestService;
  keyring: TrackingKeyring;
  resolver: LinkResolver;
  stats: StatsService;
  writer: EventLog;
  metrics: Metrics;
  /** each project's events, merges and properties in memory: funnels, event reports, visitor pages */
  analytics: Analytics;
  visitors: VisitorService;
  funnels: FunnelService;
}

export interface ClicktrailApp {
  fastify: FastifyInstance;
  server: Server;
  services: Services;
  /** Stops accepting, answers what is in flight, commits every queued event, closes the store. */
  close(): Promise<void>;
}

/** Idle connections close after this long (longer than the usual load balancer's 60 s, so it is the one that closes) */
const KEEP_ALIVE_MS = 65_000;

/** The services, without HTTP: the CLI uses these directly. */
export function buildServices(
  store: Store,
  /** `thread`: the event log's writer on a thread of its own (SQLite on a file; PostgreSQL: the journal's and spool's folders) */
  writerOptions: WriterOptions & { thread?: boolean | PgWriterFolders; scheduling?: WriterScheduling } = {},
  trackingUnsignedHosts: string[] = [],
): Services {
  const metrics = createMetrics();
  const { thread, scheduling, ...options } = writerOptions;
  // SQLite on a file, PostgreSQL with its journal: the event log's writer runs on a thread of its own (see ThreadedWriter)
  const target: WriterTarget | null =
    thread && store instanceof SqliteStore && store.file !== ":memory:"
      ? { kind: "sqlite", store }
      : typeof thread === "object" && store instanceof PgStore
        ? { kind: "postgres", store, ...thread }
        : null;
  let writer: EventLog;
  if (target) writer = new ThreadedWriter(target, metrics, options, { log: options.log, scheduling });
  else {
    const inProcess = new EventWriter(store, metrics, options);
    // SQLite counts a link's committed clicks in one snapshot with the rollup watermark (see countCommittedIn)
    if (store instanceof SqliteStore) inProcess.countCommittedIn(store);
    writer = inProcess;
  }
  metrics.depth.read = () => writer.depth;
  const resolver = new LinkResolver(store, (id) => writer.pendingClicks(id));
  const domains = new DomainService(store, resolver);
  const auth = new AuthService(store);
  auth.sessions = new SessionService(store);
  const analyticsStore = analyticsStoreFor(store);
  const analytics = new Analytics(analyticsStore, store.engine);
  metrics.analytics.read = () => analytics.stats();
  return {
    analytics,
    visitors: new VisitorService(analyticsStore, analytics),
    funnels: new FunnelService(analyticsStore, analytics),
    store,
    metrics,
    resolver,
    domains,
    auth,
    links: new LinkService(store, domains, resolver, (id) => writer.pendingClicks(id)),
    campaigns: new CampaignService(store, resolver),
    ingest: new IngestService(store, writer),
    keyring: new TrackingKeyring(store, trackingUnsignedHosts, async () => (await auth.ensureDefaultProject()).id),
    stats: new StatsService(store, writer),
    writer,
  };
}

/** Builds the HTTP app from config and an opened, migrated store, without listening. */
export async function buildApp(config: Config, store: Store): Promise<ClicktrailApp> {
  const trust = trustFunction(config.trustedProxies);
  let server!: Server;

  const fastify = Fastify({
    logger: { level: config.logLevel, redact: ["req.headers.authorization", "req.headers.cookie"] },
    // one line per request is logged by the onResponse hook below, with the fields we want
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    // tracking tokens carry their URL and metadata: path parameters are long
    routerOptions: { maxParamLength: 8192 },
    trustProxy: config.trustedProxies.length ? config.trustedProxies : false,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
    // a request node:http cannot parse (bad request line, oversized headers, a timeout): a problem+json, then close
    clientErrorHandler: (err, socket) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ECONNRESET" || socket.destroyed || !socket.writable) return void socket.destroy();
      const status = code === "HPE_HEADER_OVERFLOW" ? 431 : code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      const detail =
        status === 431
          ? "the request's headers are too large"
          : status === 408
            ? "the request was not received in time"
            : "the request could not be parsed as HTTP/1.1";
      const body = JSON.stringify(problem(status, "invalid-request", detail));
      // an answer to HEAD has no body (its client would read the body as the start of the next answer)
      const raw = (err as unknown as { rawPacket?: unknown }).rawPacket;
      const head = Buffer.isBuffer(raw) && raw.subarray(0, 5).toString("latin1") === "HEAD ";
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? "" : body}`,
      );
    },
    frameworkErrors: (err, req, res) => {
      const status = (err as FastifyError).statusCode ?? 400;
      const reply = res as unknown as FastifyReply;
      reply
        .code(status)
        .type("application/problem+json")
        .send(problem(status, "invalid-request", `${err.message}: ${req.url.slice(0, 200)}`));
    },
    serverFactory: (handler) => {
      server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, (req: IncomingMessage, res: ServerResponse) => dispatch(req, res, handler));
      return server;
    },
  });

  // PostgreSQL with its journal: the writer (group commits, rollups, the spool) on a thread of its own, which keeps the
  // spool; the HTTP thread keeps the journal and answers from it (CLICKTRAIL_POSTGRES_WRITER_THREAD)
  const pgJournal = store.engine === "postgres" && config.postgresJournal !== "OFF";
  const pgThread: PgWriterFolders | null =
    pgJournal && config.postgresWriterThread
      ? {
          journalDir: path.join(config.dataDir, "event-journal"),
          journalSync: config.postgresJournal === "FULL",
          spoolDir: path.join(config.dataDir, "spool"),
        }
      : null;
  const services = buildServices(
    store,
    {
      // a stats read flushes its own instance's at once; with several instances, the others' clicks reach the shared
      // rollups within this interval. A flush's work grows with the (link, slot, dimensions) it touches, not with the
      // clicks: measured with 10,000 links hit at random on PostgreSQL, 2 s cost a third of the write throughput, 5 s
      // a tenth; 10 s against 5 s, redirects 0.57-0.68 -> 0.59-0.71 of bare node:http (CLICKTRAIL_ROLLUP_INTERVAL_MS)
      rollupIntervalMs: config.rollupIntervalMs,
      // a PostgreSQL commit is a network round trip: without the journal, the next batch goes out without waiting for
      // it (measured best: 2). With it, answers do not wait for commits, and one at a time keeps the event log in the
      // order of the answers (two commits in flight may take their ids in either order); measured, it costs nothing
      maxInFlight: store.engine === "postgres" && config.postgresJournal === "OFF" ? 2 : 1,
      // row changes per rollup-flush transaction: on SQLite each holds the writer (and the commits queued behind it); 250
      // is at most about 4 ms (1,000 took up to 16 ms, the redirects' p99); on PostgreSQL a chunk is a round trip
      chunkSize: store.engine === "postgres" ? 1000 : 250,
      // several instances on one database: while it is unreachable, each instance spools to its own data directory
      spool: store.appendBatches && !pgThread ? new Spool(path.join(config.dataDir, "spool")) : undefined,
      // and answers from its own event journal there, not waiting for the database's commit (CLICKTRAIL_POSTGRES_JOURNAL)
      journal: pgJournal && !pgThread ? new Journal(path.join(config.dataDir, "event-journal"), config.postgresJournal === "FULL") : undefined,
      log: fastify.log,
      thread: store.engine === "postgres" ? (pgThread ?? false) : config.sqliteWriterThread,
      scheduling: config.writerScheduling,
    },
    config.trackingUnsignedHosts,
  );
  const { auth, resolver, writer, metrics } = services;
  // the hot paths' simple requests are answered before node:http builds its request and response objects (`hot`)
  if (config.httpFastLane) installFastLane(server, hot, { keepAliveMs: KEEP_ALIVE_MS, counts: metrics.fastLane, log: fastify.log });
  await writer.start();
  // subscriptions' deliveries: a durable queue in the database, sent in the background
  const webhooks = startWebhooks(store, fastify.log);
  store.startMaintenance?.((err) => fastify.log.error({ err }, "database upkeep failed; retrying later"));

  const geoip = config.geoipDb ? await GeoIp.open(config.geoipDb) : null;
  const salt = new DailySalt(store);
  const redirect = createRedirectHandler({
    config,
    resolver,
    writer,
    salt,
    metrics,
    trust,
    geoip,
    log: fastify.log,
    claimClick: store.claimClick?.bind(store),
  });

  /** Link domains go to the redirect hot path; every other host to the API, docs and (later) the dashboard. */
  const trackingDeps: TrackingRouteDeps = {
    config,
    auth,
    store,
    writer,
    salt,
    trust,
    geoip,
    keyring: services.keyring,
    log: fastify.log,
    // a token that names a webhook URL: pytracking's body, queued durably like every delivery
    onTracked: (projectId, url, payload) => webhooks.dispatcher.enqueueDirect({ projectId, url, payload, format: "pytracking" }),
  };
  const tracking = createTrackingHandler(trackingDeps);
  const rawIngest = createRawIngest({ config, ingest: services.ingest, trust, geoip, log: fastify.log });

  function dispatch(req: IncomingMessage, res: ServerResponse, api: (req: IncomingMessage, res: ServerResponse) => void) {
    const host = requestHost(req, trust);
    const cached = resolver.cachedDomain(host);
    if (cached) return serveLink(req, res, cached);
    if (cached === null) return hostPaths(req, res, api);
    resolver
      .domain(host)
      .then(
        (d) => (d ? serveLink(req, res, d) : hostPaths(req, res, api)),
        // the database is away and this host is not cached: the API's own paths and the hot paths that do not need the
        // host answer (/healthz says what is down; tracking and ingest spool or answer 503); anything else may be a
        // link of this host, so it is a 503 to retry, never a 404
        (err) => (err instanceof StoreUnavailable ? unresolvedHost(req, res, api) : fail(res, err)),
      )
      .catch((err) => fail(res, err));
  }

  /**
   * The fast lane's requests (fast-lane.ts): a link domain's, and the API host's tracking links and pixels, are answered
   * here; the rest (false) node:http serves, through dispatch.
   */
  function hot(req: HotRequest, res: HotResponse): boolean | Promise<boolean> {
    const host = requestHost(req, trust);
    const cached = resolver.cachedDomain(host);
    if (cached) return (serveLink(req, res, cached), true);
    if (cached === null) return hotHostPath(req, res);
    // (the database away: node:http's path answers what it can, see dispatch)
    return resolver.domain(host).then(
      (d) => (d ? (serveLink(req, res, d), true) : hotHostPath(req, res)),
      () => false,
    );
  }

  function hotHostPath(req: HotRequest, res: HotResponse): boolean {
    const url = req.url ?? "";
    if (!url.startsWith("/t/c/") && !url.startsWith("/t/o/")) return false;
    serveTracking(req, res);
    return true;
  }

  /** A request on a link domain: answered by the redirect handler, or a 503 when it failed without answering. */
  function serveLink(req: HotRequest, res: HotResponse, domain: Domain) {
    try {
      const pending = redirect(req, res, domain);
      if (pending) pending.catch((err) => fail(res, err));
    } catch (err) {
      fail(res, err);
    }
  }

  function unresolvedHost(req: IncomingMessage, res: ServerResponse, api: (req: IncomingMessage, res: ServerResponse) => void) {
    const url = req.url ?? "";
    if (url.startsWith("/t/") || url.startsWith("/api/v1/events")) return hostPaths(req, res, api);
    if (API_PATHS.some((p) => url === p || url.startsWith(`${p}/`) || url.startsWith(`${p}?`))) return api(req, res);
    res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": "2" });
    res.end(
      JSON.stringify(
        problem(503, "database-unavailable", "the database cannot be reached right now, so this link cannot be looked up; retry in a few seconds"),
      ),
    );
  }

  /** The API host: its hot paths (tracking links and pixels, event ingest) outside the web framework, the rest to it. */
  function hostPaths(req: IncomingMessage, res: ServerResponse, api: (req: IncomingMessage, res: ServerResponse) => void) {
    const url = req.url ?? "";
    if (url.startsWith("/t/")) return trackOrApi(req, res, api);
    if (req.method === "POST" && (url === "/api/v1/events" || url.startsWith("/api/v1/events?"))) return rawIngest(req, res);
    return api(req, res);
  }

  function trackOrApi(req: IncomingMessage, res: ServerResponse, api: (req: IncomingMessage, res: ServerResponse) => void) {
    if (!serveTracking(req, res)) api(req, res);
  }

  /** A tracking link or pixel answered (or a 503 when it failed without answering); false: the path is not one. */
  function serveTracking(req: HotRequest, res: HotResponse): boolean {
    try {
      const handled = tracking(req, res);
      if (handled === false) return false;
      if (handled !== true) handled.catch((err) => fail(res, err));
    } catch (err) {
      fail(res, err);
    }
    return true;
  }

  function fail(res: HotResponse, err: unknown) {
    fastify.log.error({ err }, "request on a link domain failed");
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify(problem(503, "unavailable", "the link could not be served right now; try again in a moment"));
    res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": "1" });
    res.end(body);
  }

  fastify.addSchema(problemSchema);
  // the API speaks JSON only: a text/plain body is a 415, not a string that fails validation
  fastify.removeContentTypeParser("text/plain");

  fastify.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    if (err instanceof StoreUnavailable) {
      req.log.warn({ err: err.message }, "database unavailable");
      return reply
        .code(503)
        .header("retry-after", "2")
        .type("application/problem+json")
        .send(problem(503, "database-unavailable", "the database cannot be reached right now; retry in a few seconds"));
    }
    if (err instanceof AppError) {
      return reply
        .code(err.status)
        .type("application/problem+json")
        .send(problem(err.status, err.type, err.message, err.extra));
    }
    if ((err as FastifyError).validation) {
      const v = (err as FastifyError).validation![0]!;
      const field = v.instancePath
        ? v.instancePath.slice(1).replace(/\//g, ".")
        : ((v.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ??
          (v.params as { additionalProperty?: string }).additionalProperty ??
          "");
      let detail = err.message;
      if (v.keyword === "additionalProperties")
        detail = `${(err as FastifyError).validationContext} has an unknown field ${JSON.stringify((v.params as { additionalProperty: string }).additionalProperty)}`;
      return reply
        .code(400)
        .type("application/problem+json")
        .send(problem(400, "validation", detail, { field, errors: (err as FastifyError).validation }));
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const type = status === 413 ? "body-too-large" : status === 415 ? "unsupported-media-type" : "invalid-request";
      let detail = err.message;
      if ((err as FastifyError).code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError)
        detail = `the body is not valid JSON: ${err.message}`;
      if (status === 413) detail = `the body is larger than ${config.bodyLimit} bytes`;
      return reply
        .code(status)
        .type("application/problem+json")
        .send(problem(status, type, detail));
    }
    req.log.error({ err }, "unhandled error");
    return reply
      .code(500)
      .type("application/problem+json")
      .send(problem(500, "internal", `something went wrong on our side (request id ${req.id})`));
  });

  // a dialect mounted at the root answers unmatched paths its own way (o7tracker: a redirect to its fallback URL)
  let rootFallback: ((req: FastifyRequest, reply: FastifyReply) => unknown) | null = null;
  fastify.setNotFoundHandler((req, reply) => {
    if (rootFallback && !req.url.startsWith("/api/")) return rootFallback(req, reply);
    reply
      .code(404)
      .type("application/problem+json")
      .send(problem(404, "not-found", `no route ${req.method} ${req.url.split("?")[0]}`));
  });

  // every API, dialect and dashboard request reads what its client was told is stored (events answered once in the
  // writer thread's journal are committed within a moment: the request waits for that, at once when nothing is pending)
  const settled = writer.settled?.bind(writer);
  if (settled) fastify.addHook("onRequest", async () => settled());

  fastify.addHook("onSend", async (req, reply, payload) => {
    reply.header("x-request-id", req.id);
    reply.header("x-content-type-options", "nosniff");
    return payload;
  });
  fastify.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "(unmatched)";
    metrics.requests.labels(req.method, route, String(reply.statusCode)).inc();
    req.log.info({ method: req.method, url: maskSecrets(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, "request");
  });

  await fastify.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Clicktrail API",
        version: VERSION,
        description: "Links on many domains, their clicks, and one event log. Errors are RFC 9457 problem+json.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "an API key: Authorization: Bearer ct_…" } } },
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (json.$id as string) ?? `def-${i}` },
  });
  await fastify.register(swaggerUi, { routePrefix: "/docs" });
  fastify.get("/openapi.json", { schema: { hide: true } }, async () => fastify.swagger());

  await fastify.register(async (api) => {
    // a NUL character cannot be stored in PostgreSQL's text: refuse it in any parameter, query or body string (400
    // naming the field) instead of letting the database fail the request
    api.addHook("preValidation", async (req) => {
      const bad = nulField(req.params, "") ?? nulField(req.query, "") ?? nulField(req.body, "");
      if (bad !== null) throw new AppError(400, "validation", `${bad || "the body"} must not contain a NUL character (U+0000)`, { field: bad });
    });
    await opsRoutes(api, { store, writer, metrics });
    await authRoutes(api, { auth, store });
    await linkRoutes(api, services);
    await campaignRoutes(api, services);
    await webhookRoutes(api, { auth, webhooks });
    await ingestRoutes(api, { config, auth, store, ingest: services.ingest, stats: services.stats, trust, geoip });
    await eventRoutes(api, services);
    await visitorRoutes(api, services);
    await funnelRoutes(api, services);
  });
  await fastify.register(async (api) => trackingRoutes(api, trackingDeps));
  await dashboardRoutes(fastify);

  for (const d of config.dialects) {
    await fastify.register(
      async (scope) => {
        if (d.name === "microticks") {
          await microticksRoutes(scope, { config, auth, store, ingest: services.ingest, trust });
          return;
        }
        if (d.name === "hiitrack") {
          await hiitrackRoutes(scope, { store, writer, analytics: services.analytics, visitors: services.visitors });
          return;
        }
        const { fallback } = await o7trackerRoutes(scope, {
          config: config.o7tracker,
          mount: d.mount,
          auth,
          domains: services.domains,
          links: services.links,
          resolver,
          store,
          writer,
          track: redirect.track,
        });
        if (d.mount === "") rootFallback = fallback;
      },
      { prefix: d.mount },
    );
    if (d.name === "o7tracker" && (!config.o7tracker.authUser || !config.o7tracker.authPassword))
      fastify.log.warn("o7tracker dialect: AUTH_USER and AUTH_PASSWORD are not both set, so its admin API refuses every request");
  }

  // Another process (the CLI, another instance) may change links: drop caches when it does. Polled 4 times a second,
  // so a change made anywhere is served everywhere within well under a second.
  const poll = setInterval(() => {
    store.externalChange().then(
      (changed) => {
        if (changed) {
          resolver.invalidateAll();
          auth.clearCache();
          services.keyring.invalidate();
        }
      },
      () => {},
    );
  }, 250);
  poll.unref();

  await fastify.ready();

  let closing: Promise<void> | null = null;
  return {
    fastify,
    server,
    services,
    close() {
      return (closing ??= (async () => {
        clearInterval(poll);
        await fastify.close();
        await services.ingest.close();
        await writer.close();
        await webhooks.stop();
        await store.close();
      })());
    },
  };
}
