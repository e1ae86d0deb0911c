import { useEffect, useState } from "preact/hooks";
import { api, type TrackedSession } from "../api";
import { AppFilter, TextFilter } from "../components/Filters";
import { ErrorBox, ListTable, LoadMore, TableRows } from "../components/ui";
import { fmtCount, fmtDateTime, fmtDuration, fmtNumber, fmtTime } from "../format";
import { useLoad } from "../hooks";
import { navigate } from "../router";
import { useApps } from "./Apps";
import { EventsTable, useEventPages } from "./Events";

const PAGE = 100;

function stopText(s: TrackedSession): { text: string; cls: string; title?: string } {
  if (!s.stopped_at) return { text: "Open", cls: "open" };
  const at = fmtDateTime(s.stopped_at);
  if (s.stop_reason === "client") return { text: "By the client", cls: "client", title: at };
  if (s.stop_reason === "idle") return { text: "Idle time-out", cls: "idle", title: at };
  return { text: s.stop_reason ?? "Stopped", cls: "other", title: at };
}

export function SessionsPage(props: { query: URLSearchParams }) {
  const appId = props.query.get("app") ?? "";
  const visitor = props.query.get("visitor") ?? "";
  const selected = props.query.get("session") ?? "";
  const apps = useApps();
  const appNames = new Map((apps.data?.apps ?? []).map((a) => [a.id, a.name]));
  const [draft, setDraft] = useState({ app: appId, visitor });
  useEffect(() => setDraft({ app: appId, visitor }), [appId, visitor]);

  // pages after the first, appended by "load more"
  const [extra, setExtra] = useState<{ sessions: TrackedSession[]; cursor: string | null } | undefined>(undefined);
  const [moreBusy, setMoreBusy] = useState(false);
  const first = useLoad(
    (signal) =>
      api<{ sessions: TrackedSession[]; next_cursor: string | null }>("GET", "/api/v1/sessions", {
        signal,
        query: { app: appId, visitor, limit: PAGE },
      }),
    [appId, visitor],
  );
  useEffect(() => setExtra(undefined), [appId, visitor]);
  const sessions = first.data ? [...first.data.sessions, ...(extra?.sessions ?? [])] : undefined;
  const cursor = extra ? extra.cursor : (first.data?.next_cursor ?? null);

  const more = async () => {
    if (!cursor || moreBusy) return;
    setMoreBusy(true);
    try {
      const r = await api<{ sessions: TrackedSession[]; next_cursor: string | null }>("GET", "/api/v1/sessions", {
        query: { app: appId, visitor, limit: PAGE, cursor },
      });
      setExtra({ sessions: [...(extra?.sessions ?? []), ...r.sessions], cursor: r.next_cursor });
    } catch {
      first.reload();
    } finally {
      setMoreBusy(false);
    }
  };

  const query = (session: string) => ({ app: appId, visitor, session });
  const open = (token: string) => navigate("/sessions", query(selected === token ? "" : token));
  const chosen = sessions?.find((s) => s.token === selected);

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Sessions</h1>
        <div class="actions">
          <a class="btn" href="#/events" data-testid="sessions-events">
            Live events
          </a>
        </div>
      </div>
      <form
        class="filters card"
        aria-label="Filter the sessions"
        data-testid="sessions-filters"
        onSubmit={(e) => {
          e.preventDefault();
          navigate("/sessions", { app: draft.app, visitor: draft.visitor.trim() });
        }}
      >
        <AppFilter id="sessions-app" apps={apps.data?.apps ?? []} current={appId} value={draft.app} onChange={(app) => setDraft({ ...draft, app })} />
        <TextFilter
          id="sessions-visitor"
          label="Visitor"
          maxLength={128}
          class="grow"
          value={draft.visitor}
          onInput={(visitor) => setDraft({ ...draft, visitor })}
        />
        <div class="field actions">
          <button type="submit" class="btn primary" data-testid="sessions-apply">
            Filter
          </button>
          {(appId || visitor) && (
            <a class="btn plain" href="#/sessions">
              Clear
            </a>
          )}
        </div>
      </form>

      <ListTable
        load={first}
        class="fixed responsive sessions-table"
        testid="sessions-table"
        label="Sessions, newest first"
        cols={["c-time", "c-ev-app", undefined, "c-num-w", "c-num", "c-time", "c-status"]}
        head={
          <>
            <th scope="col">Started</th>
            <th scope="col">App</th>
            <th scope="col">Visitor</th>
            <th scope="col" class="num">
              Duration
            </th>
            <th scope="col" class="num">
              Events
            </th>
            <th scope="col">Last action</th>
            <th scope="col">Stopped</th>
          </>
        }
      >
        <TableRows rows={sessions} cols={7} skeletonRows={5}>
          {(s) => {
            const stop = stopText(s);
            const isOpen = s.token === selected;
            return (
              <tr
                key={s.id}
                class={`clickable${isOpen ? " selected" : ""}`}
                data-testid="session-row"
                data-token={s.token}
                onClick={(e) => {
                  if ((e.target as HTMLElement).closest("a, button")) return;
                  open(s.token);
                }}
              >
                <td data-label="Started">
                  <button
                    type="button"
                    class="linkish"
                    aria-expanded={isOpen}
                    aria-controls="session-events"
                    aria-label={`Events of the session started ${fmtDateTime(s.started_at)}`}
                    onClick={() => open(s.token)}
                    data-testid="session-open"
                  >
                    <time dateTime={s.started_at}>{fmtTime(s.started_at)}</time>
                  </button>
                </td>
                <td data-label="App">
                  <a href={`#/apps/${s.app_id}`} class="truncate">
                    {appNames.get(s.app_id) ?? `#${s.app_id}`}
                  </a>
                </td>
                <td data-label="Visitor">
                  {s.visitor ? (
                    <code class="truncate" title={s.visitor}>
                      {s.visitor}
                    </code>
                  ) : (
                    <span class="muted">–</span>
                  )}
                </td>
                <td data-label="Duration" class="num" data-testid="session-duration">
                  {fmtDuration(s.duration_ms)}
                </td>
                <td data-label="Events" class="num" data-testid="session-count">
                  {fmtNumber(s.event_count)}
                </td>
                <td data-label="Last action">
                  <time dateTime={s.last_event_at}>{fmtTime(s.last_event_at)}</time>
                </td>
                <td data-label="Stopped">
                  <span class={`stop ${stop.cls}`} title={stop.title} data-testid="session-stop">
                    {stop.text}
                  </span>
                </td>
              </tr>
            );
          }}
        </TableRows>
      </ListTable>
      {sessions && sessions.length === 0 && <p class="empty-state">No sessions yet. A front end starts one with POST /api/v1/sessions.</p>}
      <LoadMore pages={{ items: sessions, next: cursor, loading: moreBusy, more }} what="session" testid="sessions" noEnd />

      {selected && (
        <section id="session-events" aria-labelledby="session-events-heading" class="session-detail">
          <div class="section-head">
            <h2 id="session-events-heading">
              Events of session <code>{selected}</code>
            </h2>
            <div class="actions">
              <a class="btn small" href={`#/events?session=${encodeURIComponent(selected)}`}>
                Open in events
              </a>
              <button type="button" class="btn small" onClick={() => open(selected)} data-testid="session-close">
                Close
              </button>
            </div>
          </div>
          {chosen && (
            <p class="muted">
              {fmtCount(chosen.event_count, "event")} over {fmtDuration(chosen.duration_ms)};{" "}
              {chosen.stopped_at
                ? `stopped ${chosen.stop_reason === "client" ? "by the client" : chosen.stop_reason === "idle" ? "by its idle time-out" : ""} ${fmtDateTime(chosen.stopped_at)}`
                : "still open"}
              .
            </p>
          )}
          <SessionEvents token={selected} appNames={appNames} />
        </section>
      )}
    </>
  );
}

function SessionEvents(props: { token: string; appNames: Map<number, string> }) {
  const page = useEventPages({ session: props.token, order: "oldest" }, [props.token]);
  return (
    <>
      {page.error && <ErrorBox error={page.error} onRetry={page.reload} />}
      <EventsTable
        events={page.events}
        apps={props.appNames}
        rowTestid="session-event-row"
        testid="session-events"
        label="Events of the session, oldest first"
        busy={page.loading}
        emptyText="No events in this session."
        skeletonRows={3}
      />
      <LoadMore pages={page} what="event" testid="session-events" noEnd />
    </>
  );
}
