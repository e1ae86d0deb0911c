import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, type TrackedApp, type TrackedEvent } from "../api";
import { AppFilter, TextFilter } from "../components/Filters";
import { ErrorBox, LoadMore, TableRows } from "../components/ui";
import { fmtDateTime, fmtNumber, fmtTime } from "../format";
import { useCursorPages } from "../hooks";
import { navigate } from "../router";
import { useApp } from "../state";
import { useApps } from "./Apps";

/** Rows kept in the live table: the oldest go once there are more. */
export const LIVE_CAP = 500;
const PAGE = 100;

const dataText = (d: unknown) => (d === null || d === undefined ? "" : typeof d === "string" ? d : JSON.stringify(d));
const whereText = (e: TrackedEvent) => [e.browser, e.os, e.device, e.country].filter(Boolean).join(" · ");
const short = (s: string | null | undefined, n = 10) => (!s ? "" : s.length > n ? s.slice(0, n) + "…" : s);

/** Events, one row each; `rowTestid` names the rows for the tests. */
export function EventsTable(props: {
  events: TrackedEvent[] | undefined;
  apps?: Map<number, string>;
  rowTestid: string;
  testid?: string;
  label: string;
  busy?: boolean;
  /** shown in one row while `events` is empty */
  emptyText: string;
  skeletonRows?: number;
}) {
  const { events } = props;
  return (
    <div class="table-wrap">
      <table class="fixed responsive events-table" aria-label={props.label} aria-busy={props.busy} data-testid={props.testid}>
        <colgroup>
          <col class="c-time" />
          <col class="c-ev-name" />
          <col class="c-ev-app" />
          <col class="c-ev-id" />
          <col class="c-ev-id" />
          <col class="c-ev-where" />
          <col />
        </colgroup>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Name</th>
            <th scope="col">App</th>
            <th scope="col">Visitor</th>
            <th scope="col">Session</th>
            <th scope="col">Browser, OS, device</th>
            <th scope="col">Data</th>
          </tr>
        </thead>
        <tbody>
          <TableRows rows={events} cols={7} skeletonRows={props.skeletonRows ?? 5} empty={props.emptyText}>
            {(e) => {
              const data = dataText(e.data);
              const where = whereText(e);
              return (
                <tr key={e.id} data-testid={props.rowTestid} data-name={e.name} class={e.is_bot ? "bot" : undefined}>
                  <td data-label="Time">
                    <time dateTime={e.ts} title={e.client_ts ? `Client time ${fmtDateTime(e.client_ts)}` : undefined}>
                      {fmtTime(e.ts)}
                    </time>
                  </td>
                  <td data-label="Name" class="ev-name">
                    {e.name}
                    {e.is_bot ? <span class="badge">bot</span> : null}
                  </td>
                  <td data-label="App">
                    {e.app_id === null ? (
                      <span class="muted">–</span>
                    ) : (
                      <a href={`#/apps/${e.app_id}`} class="truncate">
                        {props.apps?.get(e.app_id) ?? `#${e.app_id}`}
                      </a>
                    )}
                  </td>
                  <td data-label="Visitor">
                    {e.visitor ? (
                      <code class="truncate" title={e.visitor}>
                        {short(e.visitor)}
                      </code>
                    ) : (
                      <span class="muted">–</span>
                    )}
                  </td>
                  <td data-label="Session">
                    {e.session ? (
                      <code class="truncate" title={e.session}>
                        {short(e.session)}
                      </code>
                    ) : (
                      <span class="muted">–</span>
                    )}
                  </td>
                  <td data-label="Where">
                    <span class="truncate" title={[where, e.user_agent].filter(Boolean).join("\n") || undefined}>
                      {where || <span class="muted">–</span>}
                    </span>
                  </td>
                  <td data-label="Data">
                    {data ? (
                      <code class="truncate" title={data.length > 2000 ? data.slice(0, 2000) + "…" : data}>
                        {data}
                      </code>
                    ) : (
                      <span class="muted">–</span>
                    )}
                  </td>
                </tr>
              );
            }}
          </TableRows>
        </tbody>
      </table>
    </div>
  );
}

export type EventQuery = { app?: string; name?: string; visitor?: string; session?: string; order?: "oldest" | "newest" };

/** Pages of events (newest first unless `order` says otherwise), "load more" with the API's cursor. */
export function useEventPages(query: EventQuery, deps: unknown[]) {
  const pages = useCursorPages<TrackedEvent>(
    (after, signal) =>
      api<{ events: TrackedEvent[]; next_cursor: string | null }>("GET", "/api/v1/events", {
        signal,
        query: { ...query, limit: PAGE, cursor: after },
      }).then((r) => ({ items: r.events, next: r.next_cursor })),
    deps,
  );
  return { ...pages, events: pages.items, cursor: pages.next };
}

type Live = "connecting" | "live" | "reconnecting" | "closed";

const LIVE_TEXT: Record<Live, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost; reconnecting…",
  closed: "Disconnected",
};

/** The live tail (Server-Sent Events): newest first, at most LIVE_CAP rows; paused, new events wait in a buffer. */
function useLiveEvents(appId: string, name: string, paused: boolean, projectId: string) {
  const [rows, setRows] = useState<TrackedEvent[]>([]);
  const [state, setState] = useState<Live>("connecting");
  const [waiting, setWaiting] = useState(0);
  const pending = useRef<TrackedEvent[]>([]);
  const pausedRef = useRef(paused);
  const flushTimer = useRef<number | undefined>(undefined);

  const flush = useCallback(() => {
    flushTimer.current = undefined;
    if (pausedRef.current || pending.current.length === 0) return;
    const fresh = pending.current.reverse();
    pending.current = [];
    setWaiting(0);
    setRows((old) => [...fresh, ...old].slice(0, LIVE_CAP));
  }, []);

  useEffect(() => {
    pausedRef.current = paused;
    if (!paused) flush();
  }, [paused, flush]);

  useEffect(() => {
    setRows([]);
    setState("connecting");
    pending.current = [];
    setWaiting(0);
    const qs = new URLSearchParams();
    // EventSource cannot send X-Project-Id: the project goes in the query
    qs.set("project", projectId);
    if (appId) qs.set("app", appId);
    if (name) qs.set("name", name);
    const search = qs.toString();
    const es = new EventSource("/api/v1/events/stream" + (search ? `?${search}` : ""));
    es.onopen = () => setState("live");
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    es.addEventListener("event", (m: MessageEvent<string>) => {
      let e: TrackedEvent;
      try {
        e = JSON.parse(m.data) as TrackedEvent;
      } catch {
        return;
      }
      pending.current.push(e);
      if (pending.current.length > LIVE_CAP) pending.current.splice(0, pending.current.length - LIVE_CAP);
      if (pausedRef.current) setWaiting(pending.current.length);
      // a burst of events renders once
      else flushTimer.current ??= window.setTimeout(flush, 50);
    });
    return () => {
      es.close();
      window.clearTimeout(flushTimer.current);
      flushTimer.current = undefined;
    };
  }, [appId, name, flush, projectId]);

  return { rows, state, waiting, clear: () => setRows([]) };
}

export function EventsPage(props: { query: URLSearchParams }) {
  const ctx = useApp();
  const q = props.query;
  const appId = q.get("app") ?? "";
  const name = q.get("name") ?? "";
  const visitor = q.get("visitor") ?? "";
  const session = q.get("session") ?? "";
  const apps = useApps();
  const appNames = new Map((apps.data?.apps ?? []).map((a: TrackedApp) => [a.id, a.name]));

  const [draft, setDraft] = useState({ app: appId, name, visitor, session });
  useEffect(() => setDraft({ app: appId, name, visitor, session }), [appId, name, visitor, session]);

  const [paused, setPaused] = useState(false);
  const live = useLiveEvents(appId, name, paused, String(ctx.project.id));
  const history = useEventPages({ app: appId, name, visitor, session }, [appId, name, visitor, session, ctx.project.id]);

  const apply = (e: Event) => {
    e.preventDefault();
    navigate("/events", { app: draft.app, name: draft.name.trim(), visitor: draft.visitor.trim(), session: draft.session.trim() });
  };

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Events</h1>
        <div class="actions">
          <a class="btn" href="#/apps" data-testid="events-apps">
            Apps
          </a>
          <a class="btn" href="#/sessions" data-testid="events-sessions">
            Sessions
          </a>
        </div>
      </div>

      <form class="filters card" onSubmit={apply} data-testid="events-filters" aria-label="Filter the events">
        <AppFilter id="events-app" apps={apps.data?.apps ?? []} current={appId} value={draft.app} onChange={(app) => setDraft({ ...draft, app })} />
        <TextFilter id="events-name" label="Name" maxLength={64} value={draft.name} onInput={(name) => setDraft({ ...draft, name })} />
        <TextFilter
          id="events-visitor"
          label="Visitor"
          maxLength={128}
          value={draft.visitor}
          onInput={(visitor) => setDraft({ ...draft, visitor })}
        />
        <TextFilter id="events-session" label="Session" maxLength={64} value={draft.session} onInput={(session) => setDraft({ ...draft, session })} />
        <div class="field actions">
          <button type="submit" class="btn primary" data-testid="events-apply">
            Filter
          </button>
          {(appId || name || visitor || session) && (
            <a class="btn plain" href="#/events" data-testid="events-clear">
              Clear
            </a>
          )}
        </div>
      </form>

      <section aria-labelledby="live-heading" class="live">
        <div class="section-head">
          <h2 id="live-heading">Live</h2>
          <span class={`live-state ${paused ? "paused" : live.state}`} role="status" data-testid="live-state">
            {paused ? (live.waiting ? `Paused · ${fmtNumber(live.waiting)} new` : "Paused") : LIVE_TEXT[live.state]}
          </span>
          <div class="actions">
            <button type="button" class="btn small" aria-pressed={paused} onClick={() => setPaused(!paused)} data-testid="events-pause">
              {paused ? "Resume" : "Pause"}
            </button>
            <button type="button" class="btn small" onClick={live.clear} disabled={live.rows.length === 0} data-testid="events-clear-live">
              Clear
            </button>
          </div>
        </div>
        <p class="muted hint">
          New events as they are recorded{appId || name ? ", filtered by app and name" : ""}; the newest {fmtNumber(LIVE_CAP)} are kept.
          {(visitor || session) && " The visitor and session filters apply to the history below."}
        </p>
        <div class="live-box">
          <EventsTable
            events={live.rows}
            apps={appNames}
            rowTestid="live-event-row"
            testid="live-events"
            label="Live events"
            emptyText={paused ? "Paused." : "Waiting for events…"}
          />
        </div>
      </section>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">History</h2>
        {history.error && <ErrorBox error={history.error} onRetry={history.reload} />}
        <EventsTable
          events={history.events}
          apps={appNames}
          rowTestid="event-row"
          testid="events-history"
          label="Recorded events, newest first"
          busy={history.loading}
          emptyText="No events match."
        />
        <LoadMore pages={history} what="event" testid="events" />
      </section>
    </>
  );
}
