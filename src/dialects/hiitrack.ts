import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EventLog } from "../events/writer.js";
import type { Analytics } from "../funnels/source.js";
import { analyticsStoreFor } from "../funnels/store.js";
import { UniqueViolation, type EventRow, type Store } from "../store/port.js";
import { MAX_VISITOR_ID, type VisitorService } from "../visitors/service.js";
import { authorizerFor, passwordHash } from "./hiitrack-auth.js";
import { nameId } from "./hiitrack-counts.js";
import { cookieDate, cookieOf, dispatcher, HtError, need, rawBodies, type Params, type Result } from "./hiitrack-http.js";
import { eventBody, eventByIdOf, funnelBody, propertyBody, propertyByIdOf, stepsOf } from "./hiitrack-reports.js";
import { hiitrackStoreFor, type HiiTrackBucket } from "./hiitrack-store.js";

/**
 * The HiiTrack dialect (seed-apis.md §5): users, buckets, event and property tracking, the batch endpoint with its `v`
 * cookie, event and property reports and funnels, with HiiTrack's paths, authentication order (401 before any 404),
 * ujson bodies, JSONP `callback`, `request_id` and base64 ids. A bucket is a Clicktrail project, a tracked event a
 * Clicktrail event, a property a visitor property; counts and funnels are computed from the project's in-memory event
 * table with HiiTrack's semantics (hiitrack-counts.ts, hiitrackFunnel). Deliberate differences: docs/dialects.md.
 *
 * The pieces: hiitrack-http.ts (reading requests, writing answers, error shapes, the dispatcher), hiitrack-auth.ts
 * (Basic authentication and its throttle), hiitrack-reports.ts (report and funnel bodies), hiitrack-store.ts (users
 * and buckets); the routes are here.
 */

export { HT_MAX_FAILURES, bucketPassword, passwordHash } from "./hiitrack-auth.js";
export { ujson } from "./hiitrack-http.js";
export { HT_MAX_STEPS } from "./hiitrack-reports.js";

export interface HiiTrackDeps {
  store: Store;
  writer: EventLog;
  analytics: Analytics;
  visitors: VisitorService;
}

/** Longest event, property, bucket, user and funnel name taken (HiiTrack had no limit). */
export const HT_MAX_NAME = 200;
/** Most events and most properties in one batch message. */
export const HT_MAX_BATCH = 100;

const BATCH_SHAPE = "Batch request must contain base64 encoded list of two values: event_names, properties";

export async function hiitrackRoutes(app: FastifyInstance, deps: HiiTrackDeps): Promise<void> {
  const { store, writer, analytics, visitors } = deps;
  const mount = app.prefix === "/" ? "" : app.prefix;
  const accounts = hiitrackStoreFor(store);
  const funnels = analyticsStoreFor(store);
  const authorize = authorizerFor(accounts);
  /** auto-creations in flight, so concurrent first hits on a bucket create one project */
  const creating = new Map<string, Promise<HiiTrackBucket>>();

  rawBodies(app);

  function checkName(what: string, value: string): void {
    if (value.length > HT_MAX_NAME) throw new HtError(400, `${what} is longer than ${HT_MAX_NAME} characters.`, "ValueError");
  }

  // ---- accounts ------------------------------------------------------------------------------------------------

  /** A new project for a bucket: `hiitrack:user/bucket`, with a suffix when a deleted bucket's project has the name. */
  async function newProject(user: string, bucket: string): Promise<number> {
    const base = `hiitrack:${user}/${bucket}`;
    for (let n = 1; n < 10_000; n++) {
      try {
        return (await store.createProject(n === 1 ? base : `${base}~${n}`)).id;
      } catch (e) {
        if (!(e instanceof UniqueViolation)) throw e;
      }
    }
    throw new HtError(500, `no free project name for bucket ${bucket}`);
  }

  /** Creates a bucket; false when the user has one of that name already. */
  async function createBucket(user: string, bucket: string, description: string): Promise<boolean> {
    const projectId = await newProject(user, bucket);
    return accounts.createBucket({ user_name: user, name: bucket, project_id: projectId, description });
  }

  /** HiiTrack's bucket_create: the tracking routes create a missing bucket (described by its name) of a known user. */
  async function bucketCreate(user: string, bucket: string): Promise<HiiTrackBucket> {
    const b = await accounts.getBucket(user, bucket);
    if (b) return b;
    const key = `${user}\u0000${bucket}`;
    let p = creating.get(key);
    if (!p) {
      p = (async () => {
        if (!(await accounts.getUser(user))) throw new HtError(404, `User ${user} does not exist.`, "UserException");
        checkName("The bucket name", bucket);
        await createBucket(user, bucket, bucket);
        // created here, or meanwhile by another instance
        const made = await accounts.getBucket(user, bucket);
        if (!made) throw new HtError(404, `User ${user} does not exist.`, "UserException");
        return made;
      })().finally(() => creating.delete(key));
      creating.set(key, p);
    }
    return p;
  }

  // ---- tracking --------------------------------------------------------------------------------------------------

  const eventRow = (projectId: number, name: string, visitor: string, ts: number): EventRow => ({
    project_id: projectId,
    ts,
    client_ts: null,
    name,
    visitor,
    session: null,
    link_id: null,
    domain_id: null,
    campaign_id: null,
    source: "api",
    channel: "hiitrack",
    platform: null,
    ip: null,
    ua: null,
    referrer: null,
    browser: null,
    os: null,
    device: null,
    is_bot: false,
    country: null,
    rule: null,
    data: null,
  });

  function visitorParam(v: string): string {
    if (v.length > MAX_VISITOR_ID) throw new HtError(400, `Parameter 'visitor_id' is longer than ${MAX_VISITOR_ID} characters.`, "ValueError");
    return v;
  }

  async function setProperty(projectId: number, visitor: string, name: string, value: unknown): Promise<void> {
    if (value === null || value === undefined) throw new HtError(400, `Property '${name}' may not be null.`, "ValueError");
    // `add`: a visitor may hold several values; adding one it holds already changes nothing
    await visitors.setProperties(projectId, visitor, { add: { [name]: Array.isArray(value) ? [value] : value } });
  }

  function decodeB64Json(text: string): unknown {
    // a `+` that came through a query string unencoded arrives as a space
    const buf = Buffer.from(text.replace(/ /g, "+"), "base64");
    return JSON.parse(buf.toString("utf8"));
  }

  async function batch(req: FastifyRequest, reply: FastifyReply, params: Params, user: string, bucket: string) {
    need(params, "message");
    const b = await bucketCreate(user, bucket);
    const cookie = cookieOf(req, "v");
    const given = params.get("visitor_id")?.[0];
    let visitor: string;
    const setCookie = (id: string) =>
      reply.header("set-cookie", `v=${encodeURIComponent(id)}; Expires=${cookieDate(Date.now() + 100 * 365 * 86_400_000)}; Path=/`);
    if (given) {
      visitor = visitorParam(given);
      if (visitor !== cookie) setCookie(visitor);
    } else if (cookie) visitor = visitorParam(cookie);
    else {
      visitor = randomUUID().replace(/-/g, "");
      setCookie(visitor);
    }
    const fail = (error: string) => ({ visitor_id: visitor, error });
    let data: unknown;
    try {
      data = decodeB64Json(need(params, "message"));
    } catch {
      return fail(BATCH_SHAPE);
    }
    if (!Array.isArray(data) || data.length !== 2) return fail(BATCH_SHAPE);
    const [events, properties] = data as [unknown, unknown];
    if (!Array.isArray(events)) return fail("event_names must be a list.");
    if (!Array.isArray(properties)) return fail("properties must be a list of tuples.");
    if (!properties.every((x) => Array.isArray(x) && x.length === 2)) return fail("properties must be in [key, value] format.");
    const pairs = properties as [unknown, unknown][];
    if (!events.every((x) => typeof x === "string" && x !== "" && x.length <= HT_MAX_NAME)) return fail(BATCH_SHAPE);
    if (!pairs.every(([k]) => typeof k === "string" && k !== "" && k.length <= HT_MAX_NAME)) return fail(BATCH_SHAPE);
    if (events.length > HT_MAX_BATCH || pairs.length > HT_MAX_BATCH)
      return fail(`Batch request may hold at most ${HT_MAX_BATCH} event names and ${HT_MAX_BATCH} properties.`);
    // properties first, so the batch's events are counted in the batch's property values
    for (const [k, v] of pairs) {
      if (v === null) continue;
      await setProperty(b.project_id, visitor, k as string, v);
    }
    const now = Date.now();
    if (events.length) await writer.writeMany((events as string[]).map((n) => eventRow(b.project_id, n, visitor, now)));
    return { visitor_id: visitor };
  }

  // ---- the routes ------------------------------------------------------------------------------------------------

  const ok = (body: unknown = null, status = 200): Result => ({ status, body });

  async function route(req: FastifyRequest, reply: FastifyReply, seg: string[], params: Params): Promise<Result | null> {
    const m = req.method;
    const [user, bucket, kind, name] = seg;
    if (seg.some((s) => s === "")) return null;
    if (seg.length === 1) {
      if (user === "batch" && m === "POST") return null; // HiiTrack's handler-less POST /batch route
      if (m === "POST") {
        const password = need(params, "password");
        checkName("The user name", user!);
        if (!(await accounts.createUser(user!, passwordHash(user!, password)))) throw new HtError(403, "Username exists.", "UserException");
        return ok({}, 201);
      }
      if (m === "GET") {
        await authorize(req, user!, null);
        return ok({});
      }
      if (m === "DELETE") {
        await authorize(req, user!, null);
        await accounts.deleteUser(user!);
        return ok();
      }
      return null;
    }
    if (seg.length === 2) {
      if (m === "POST") {
        // no bucket_check here: the bucket is about to be created (its own password is accepted, as on its other routes)
        await authorize(req, user!, bucket!, false);
        const description = need(params, "description");
        checkName("The bucket name", bucket!);
        if ((await accounts.getBucket(user!, bucket!)) || !(await createBucket(user!, bucket!, description)))
          throw new HtError(403, "Bucket already exists.", "BucketException");
        return ok(null, 201);
      }
      if (m === "GET") {
        const b = (await authorize(req, user!, bucket!))!;
        const p = await analytics.project(b.project_id);
        return ok({
          bucket_name: b.name,
          description: b.description,
          properties: Object.fromEntries([...p.propertyNames.keys()].map((n) => [nameId(n), n])),
          events: Object.fromEntries(p.table.names.map((n) => [n, { id: nameId(n) }])),
        });
      }
      if (m === "DELETE") {
        await authorize(req, user!, bucket!);
        await accounts.deleteBucket(user!, bucket!);
        return ok();
      }
      return null;
    }
    if (seg.length === 3) {
      if (kind === "batch" && m === "GET") return ok(await batch(req, reply, params, user!, bucket!));
      if (kind === "funnel" && m === "GET") {
        const b = (await authorize(req, user!, bucket!))!;
        const p = await analytics.project(b.project_id);
        return ok(funnelBody(p, stepsOf(p, params), params.get("property")?.[0] || null));
      }
      return null;
    }
    if (seg.length !== 4) return null;
    if (kind === "event" && m === "POST") {
      const visitor = visitorParam(need(params, "visitor_id"));
      const b = await bucketCreate(user!, bucket!);
      checkName("The event name", name!);
      await writer.write(eventRow(b.project_id, name!, visitor, Date.now()));
      return ok();
    }
    if (kind === "property" && m === "POST") {
      const visitor = visitorParam(need(params, "visitor_id"));
      const raw = need(params, "value");
      const b = await bucketCreate(user!, bucket!);
      checkName("The property name", name!);
      let value: unknown;
      try {
        value = decodeB64Json(raw);
      } catch {
        throw new HtError(400, "Parameter 'value' must be base64 encoded JSON.", "ValueError");
      }
      await setProperty(b.project_id, visitor, name!, value);
      return ok();
    }
    if (m === "GET" && (kind === "event" || kind === "event_id" || kind === "property" || kind === "property_id" || kind === "funnel")) {
      const b = (await authorize(req, user!, bucket!))!;
      const p = await analytics.project(b.project_id);
      if (kind === "event") return ok(eventBody(p, name!, params));
      if (kind === "event_id") {
        const n = eventByIdOf(p, name!);
        if (n === null) throw new HtError(404, `Event ${name} does not exist.`, "NotFoundException");
        return ok(eventBody(p, n, params));
      }
      if (kind === "property") return ok(propertyBody(p, name!));
      if (kind === "property_id") {
        const n = propertyByIdOf(p, name!);
        if (n === null) throw new HtError(404, `Property ${name} does not exist.`, "NotFoundException");
        return ok(propertyBody(p, n));
      }
      const saved = await funnels.getFunnelByName(b.project_id, name!);
      if (!saved) throw new HtError(404, `Funnel ${name} does not exist.`, "NotFoundException");
      const steps = ((saved.query.steps as { name?: unknown }[] | undefined) ?? []).map((s) => String(s.name));
      const hii = saved.query.hiitrack as { property?: unknown } | undefined;
      const property = typeof hii?.property === "string" ? hii.property : null;
      if (steps.length < 2) throw new HtError(404, `Funnel ${name} does not exist.`, "NotFoundException");
      return ok({ ...funnelBody(p, steps, property), description: saved.description });
    }
    if (kind === "funnel" && m === "POST") {
      const b = (await authorize(req, user!, bucket!))!;
      need(params, "event_id");
      const description = need(params, "description");
      if (params.get("event_id")!.length < 2)
        throw new HtError(403, "Parameter 'event_id' requires at least two values.", "MissingParameterException");
      checkName("The funnel name", name!);
      const p = await analytics.project(b.project_id);
      const steps = stepsOf(p, new Map([["event_id", params.get("event_id")!]]));
      const property = params.get("property")?.[0] || null;
      const query = { steps: steps.map((n) => ({ name: n })), order: "ordered", window: null, hiitrack: { property } };
      // POST overwrites silently
      for (let attempt = 0; attempt < 3; attempt++) {
        const existing = await funnels.getFunnelByName(b.project_id, name!);
        if (existing) {
          await funnels.updateFunnel(b.project_id, existing.id, { description, query });
          return ok(null, 201);
        }
        try {
          await funnels.createFunnel({ project_id: b.project_id, name: name!, description, query });
          return ok(null, 201);
        } catch (e) {
          if (!(e instanceof UniqueViolation)) throw e;
        }
      }
      throw new HtError(500, `Funnel ${name} could not be saved.`);
    }
    if (kind === "funnel" && m === "DELETE") {
      const b = (await authorize(req, user!, bucket!))!;
      const existing = await funnels.getFunnelByName(b.project_id, name!);
      if (existing) await funnels.deleteFunnel(b.project_id, existing.id);
      return ok();
    }
    return null;
  }

  const handle = dispatcher(mount, route);

  app.all("/", { schema: { hide: true } }, handle);
  app.all("/*", { schema: { hide: true } }, handle);
}
