import { useEffect, useState } from "preact/hooks";
import { api, type LoggedEvent, type VisitorProfile, type VisitorSummary } from "../api";
import { valueLabel, visitorHref } from "../components/FunnelChart";
import { Crumbs, ErrorBox, ListTable, LoadMore, TableRows } from "../components/ui";
import { fmtCount, fmtDate, fmtDateTime, fmtNumber, fmtTime } from "../format";
import { useCursorPages, useLoad } from "../hooks";
import { href, navigate } from "../router";
import { eventReportHref } from "./Funnels";

const PAGE = 50;
const TIMELINE_PAGE = 50;

export function VisitorsPage(props: { query: URLSearchParams }) {
  const q = props.query.get("q") ?? "";
  const [draft, setDraft] = useState(q);
  const [limit, setLimit] = useState(PAGE);
  useEffect(() => {
    setDraft(q);
    setLimit(PAGE);
  }, [q]);
  const list = useLoad((signal) => api<{ visitors: VisitorSummary[] }>("GET", "/api/v1/visitors", { signal, query: { q, limit } }), [q, limit]);
  const [shown, setShown] = useState<VisitorSummary[] | undefined>(undefined);
  // the rows stay while more load
  useEffect(() => {
    if (list.data) setShown(list.data.visitors);
  }, [list.data]);
  useEffect(() => setShown(undefined), [q]);
  const rows = shown;

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Visitors</h1>
      </div>
      <p class="muted lead">
        Everyone who sent an event or clicked a tracked link, by visitor id (merged ids count as one), most recently active first.
      </p>
      <form
        class="filters card"
        role="search"
        aria-label="Search the visitors"
        data-testid="visitors-search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate("/visitors", { q: draft.trim() });
        }}
      >
        <div class="field grow">
          <label for="visitors-q">Visitor id contains</label>
          <input
            id="visitors-q"
            type="search"
            maxLength={256}
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value)}
            data-testid="visitors-q"
          />
        </div>
        <div class="field actions">
          <button type="submit" class="btn primary" data-testid="visitors-submit">
            Search
          </button>
          {q && (
            <a class="btn plain" href="#/visitors">
              Clear
            </a>
          )}
        </div>
      </form>
      <ListTable
        load={list}
        class="fixed responsive visitors-table"
        testid="visitors-list"
        label="Visitors"
        cols={[undefined, "c-time", "c-time", "c-num-w"]}
        head={
          <>
            <th scope="col">Visitor</th>
            <th scope="col">First seen</th>
            <th scope="col">Last seen</th>
            <th scope="col" class="num">
              Events
            </th>
          </>
        }
      >
        <TableRows rows={rows} cols={4} skeletonRows={5} empty={q ? "No visitor id contains that." : "No visitors yet."}>
          {(v) => (
            <tr key={v.id} data-testid="visitor-row" data-visitor={v.id}>
              <td data-label="Visitor">
                <a href={visitorHref(v.id)} class="truncate" title={v.id}>
                  <code>{v.id}</code>
                </a>
              </td>
              <td data-label="First seen">{fmtDateTime(v.first_seen)}</td>
              <td data-label="Last seen">{fmtDateTime(v.last_seen)}</td>
              <td data-label="Events" class="num">
                {fmtNumber(v.events)}
              </td>
            </tr>
          )}
        </TableRows>
      </ListTable>
      <div class="pager">
        {rows && rows.length >= limit && limit < 500 ? (
          <button type="button" class="btn" disabled={list.loading} onClick={() => setLimit(Math.min(500, limit * 2))} data-testid="visitors-more">
            {list.loading ? "Loading…" : "Show more"}
          </button>
        ) : (
          rows &&
          rows.length > 0 && (
            <span class="muted">
              {rows.length >= 500 ? "The 500 most recent shown; search to find others." : `${fmtCount(rows.length, "visitor")} shown.`}
            </span>
          )
        )}
      </div>
    </>
  );
}

/** A visitor's events, newest first, a page at a time ("load more" asks for those before the oldest shown). */
function useTimeline(id: string) {
  const pages = useCursorPages<LoggedEvent>(
    (before, signal) =>
      api<{ events: LoggedEvent[]; next_before: string | null }>("GET", `/api/v1/visitors/${encodeURIComponent(id)}/events`, {
        signal,
        query: { limit: TIMELINE_PAGE, before },
      }).then((r) => ({ items: r.events, next: r.next_before })),
    [id],
    (old, page) => {
      const seen = new Set(old.map((e) => String(e.id)));
      return [...old, ...page.filter((e) => !seen.has(String(e.id)))];
    },
  );
  return { ...pages, events: pages.items };
}

const FIRST_FIELDS = ["ts", "name", "source"];
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
/** The time of day (the day is the heading above). */
function fmtClock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : clock.format(d);
}
const fieldText = (v: unknown) => (v === null || v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v));
const dataText = (d: unknown) => (d === null || d === undefined ? "" : typeof d === "string" ? d : JSON.stringify(d));

function TimelineItem(props: { e: LoggedEvent; requested: string; merged: boolean }) {
  const { e } = props;
  const data = dataText(e.data);
  const where = [e.browser, e.os, e.device, e.country].filter(Boolean).join(" · ");
  const fields = Object.entries(e).filter(([k, v]) => !FIRST_FIELDS.includes(k) && v !== null && v !== undefined && v !== "");
  return (
    <li class="tl-item" data-testid="timeline-event" data-name={e.name}>
      <time dateTime={e.ts} class="tl-time" title={fmtTime(e.ts)}>
        {fmtClock(e.ts)}
      </time>
      <div class="tl-body">
        <div class="tl-head">
          <a href={eventReportHref(e.name)} class="tl-name">
            {e.name}
          </a>
          {e.source && <span class="badge">{e.source}</span>}
          {e.is_bot ? <span class="badge">bot</span> : null}
          {props.merged && e.visitor && <span class="muted tl-as">as {e.visitor}</span>}
        </div>
        {(data || where) && (
          <div class="tl-sub muted">
            {data && (
              <code class="truncate" title={data.length > 2000 ? data.slice(0, 2000) + "…" : data}>
                {data}
              </code>
            )}
            {data && where && " · "}
            {where}
          </div>
        )}
        <details class="tl-fields">
          <summary>All fields</summary>
          <dl>
            {fields.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>
                  {k === "session" && typeof v === "string" ? (
                    <a href={href("/events", { session: v })}>{v}</a>
                  ) : k === "link_id" && v ? (
                    <a href={`#/links/${String(v)}`}>{fieldText(v)}</a>
                  ) : k === "app_id" && v ? (
                    <a href={`#/apps/${String(v)}`}>{fieldText(v)}</a>
                  ) : (
                    <code>{fieldText(v)}</code>
                  )}
                </dd>
              </div>
            ))}
          </dl>
        </details>
      </div>
    </li>
  );
}

export function VisitorPage(props: { id: string }) {
  const profile = useLoad((signal) => api<VisitorProfile>("GET", `/api/v1/visitors/${encodeURIComponent(props.id)}`, { signal }), [props.id]);
  const timeline = useTimeline(props.id);
  const p = profile.data;
  const props_ = p ? Object.entries(p.properties).sort(([a], [b]) => a.localeCompare(b)) : undefined;
  const counts = p ? Object.entries(p.event_counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) : undefined;

  // the days of the timeline, in the browser's zone
  let lastDay = "";

  return (
    <>
      <Crumbs href="#/visitors">Visitors</Crumbs>
      <div class="page-head">
        <h1 tabIndex={-1} data-testid="visitor-heading">
          {p ? <code>{p.id}</code> : profile.error ? "Visitor" : <span class="skeleton title-skeleton" aria-label="Loading" />}
        </h1>
        <div class="actions">
          <a class="btn" href={href("/events", { visitor: p?.id ?? props.id })}>
            In the event log
          </a>
        </div>
      </div>
      {p && p.requested !== p.id && (
        <p class="alert info" data-testid="visitor-merged">
          <span>
            <code>{p.requested}</code> was merged into this visitor.
          </span>
        </p>
      )}
      {profile.error && <ErrorBox error={profile.error} onRetry={profile.reload} />}

      {!profile.error && (
        <div class="card">
          <dl class="facts">
            <div>
              <dt>First seen</dt>
              <dd>{p ? fmtDateTime(p.first_seen) : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Last seen</dt>
              <dd>{p ? fmtDateTime(p.last_seen) : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Events</dt>
              <dd data-testid="visitor-events">{p ? fmtNumber(p.events) : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Merged ids</dt>
              <dd data-testid="visitor-aliases">
                {p ? (
                  p.aliases.length ? (
                    <ul class="id-list">
                      {p.aliases.map((a) => (
                        <li key={a}>
                          <code>{a}</code>
                        </li>
                      ))}
                    </ul>
                  ) : (
                    <span class="muted">none</span>
                  )
                ) : (
                  <span class="skeleton" />
                )}
              </dd>
            </div>
          </dl>
        </div>
      )}

      {!profile.error && (
        <div class="visitor-grid">
          <section class="breakdown" aria-labelledby="props-heading">
            <h2 id="props-heading" class="small-heading">
              Properties
            </h2>
            <table class="bars" data-testid="visitor-properties">
              <thead>
                <tr>
                  <th scope="col">Property</th>
                  <th scope="col">Value now</th>
                </tr>
              </thead>
              <tbody>
                <TableRows rows={props_} cols={2} skeletonRows={3} empty="No properties." plainEmpty>
                  {([name, values]) => (
                    <tr key={name} data-testid="visitor-property" data-name={name}>
                      <th scope="row" class="prop-name">
                        {name}
                      </th>
                      <td class="prop-values" data-testid="visitor-property-value">
                        {values.map(valueLabel).join(", ")}
                      </td>
                    </tr>
                  )}
                </TableRows>
              </tbody>
            </table>
          </section>
          <section class="breakdown" aria-labelledby="counts-heading">
            <h2 id="counts-heading" class="small-heading">
              Events by name
            </h2>
            <table class="bars" data-testid="visitor-event-counts">
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col" class="num">
                    Count
                  </th>
                </tr>
              </thead>
              <tbody>
                <TableRows rows={counts} cols={2} skeletonRows={3} empty="No events." plainEmpty>
                  {([name, n]) => (
                    <tr key={name}>
                      <td>
                        <a href={eventReportHref(name)}>{name}</a>
                      </td>
                      <td class="num">{fmtNumber(n)}</td>
                    </tr>
                  )}
                </TableRows>
              </tbody>
            </table>
          </section>
        </div>
      )}

      {p && p.property_history.length > 0 && (
        <details class="card history" data-testid="visitor-history">
          <summary>Property history ({fmtCount(p.property_history.length, "change")})</summary>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Property</th>
                  <th scope="col">Change</th>
                  <th scope="col">Value</th>
                </tr>
              </thead>
              <tbody>
                {p.property_history.map((h, i) => (
                  <tr key={i}>
                    <td>{fmtTime(h.ts)}</td>
                    <td>{h.name}</td>
                    <td>{h.op}</td>
                    <td>
                      <code>{h.op === "unset" && h.value === null ? "–" : valueLabel(h.value)}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      )}

      {!profile.error && (
        <section aria-labelledby="timeline-heading">
          <h2 id="timeline-heading">Timeline</h2>
          {timeline.error && <ErrorBox error={timeline.error} onRetry={timeline.reload} />}
          {!timeline.events ? (
            <ol class="timeline" aria-busy="true">
              {Array.from({ length: 4 }, (_, i) => (
                <li class="tl-item" key={i} aria-hidden="true">
                  <span class="skeleton" />
                </li>
              ))}
            </ol>
          ) : timeline.events.length === 0 ? (
            <p class="muted">No events.</p>
          ) : (
            <ol class="timeline" aria-busy={timeline.loading} data-testid="timeline">
              {timeline.events.map((e) => {
                const day = fmtDate(e.ts);
                const head = day !== lastDay;
                lastDay = day;
                return [
                  head ? (
                    <li class="tl-day" key={`d-${day}`}>
                      {day}
                    </li>
                  ) : null,
                  <TimelineItem key={String(e.id)} e={e} requested={props.id} merged={!!p && p.aliases.length > 0} />,
                ];
              })}
            </ol>
          )}
          <LoadMore pages={timeline} what="event" testid="timeline" />
        </section>
      )}
    </>
  );
}
