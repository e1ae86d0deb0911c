import type { ComponentChildren } from "preact";
import { useMemo, useState } from "preact/hooks";
import { api, type EventCounts, type EventReport, type Interval } from "../api";
import { ClicksChart } from "../components/Chart";
import { valueLabel } from "../components/FunnelChart";
import { Crumbs, ErrorBox, Field } from "../components/ui";
import { addDays, browserTimeZone, fmtNumber, startOfDay, today } from "../format";
import { useLoad } from "../hooks";
import { eventReportHref, useEventNames } from "./Funnels";

const RANGES: [days: number, label: string][] = [
  [1, "Today"],
  [7, "Last 7 days"],
  [30, "Last 30 days"],
  [90, "Last 90 days"],
  [365, "Last 365 days"],
];

const dateFormats = new Map<string, Intl.DateTimeFormat>();
/** YYYY-MM-DD of an instant in `tz`. */
function dateIn(ms: number, tz: string): string {
  let f = dateFormats.get(tz);
  if (!f) dateFormats.set(tz, (f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })));
  return f.format(ms);
}

const nextBucket = (ms: number, interval: Interval, tz: string) =>
  interval === "hour" ? ms + 3_600_000 : startOfDay(addDays(dateIn(ms, tz), interval === "day" ? 1 : 7), tz);

/**
 * The report's series lists the buckets that have events; the chart wants every bucket of the range, empty ones at 0
 * (hours and days from the range's start, weeks from the API's first one). Buckets off that grid: the API's as they are.
 */
export function denseSeries(series: EventReport["series"], interval: Interval, tz: string, fromMs: number, toMs: number) {
  const got = new Map(series.map((p) => [Date.parse(p.t), p.total]));
  let start = fromMs;
  if (interval === "week") {
    if (series.length === 0) return [];
    start = Date.parse(series[0]!.t);
    for (;;) {
      const prev = startOfDay(addDays(dateIn(start, tz), -7), tz);
      if (prev + 7 * 86_400_000 <= fromMs) break;
      start = prev;
    }
  }
  const out: { t: string; clicks: number }[] = [];
  const seen = new Set<number>();
  for (let t = start; t < toMs && out.length < 10_000; t = nextBucket(t, interval, tz)) {
    out.push({ t: new Date(t).toISOString(), clicks: got.get(t) ?? 0 });
    seen.add(t);
  }
  if ([...got.keys()].some((t) => !seen.has(t))) return series.map((p) => ({ t: p.t, clicks: p.total }));
  return out;
}

/** A table of counts: one row per event name or value (`label`, its cell), how many times, by how many visitors. */
function CountsTable(props: {
  label: string;
  unit: string;
  rows: { key: string | number; label: ComponentChildren; total: number; visitors: number }[];
  testid?: string;
}) {
  return (
    <table class="bars" data-testid={props.testid}>
      <thead>
        <tr>
          <th scope="col">{props.label}</th>
          <th scope="col" class="num">
            {props.unit}
          </th>
          <th scope="col" class="num">
            Visitors
          </th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <tr key={r.key}>
            <td class="bar-cell">{r.label}</td>
            <td class="num">{fmtNumber(r.total)}</td>
            <td class="num">{fmtNumber(r.visitors)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Preceded(props: { rows: EventCounts[]; testid?: string }) {
  if (props.rows.length === 0) return <p class="muted empty">Nothing came before it.</p>;
  return (
    <CountsTable
      label="Event"
      unit="Times"
      testid={props.testid}
      rows={props.rows.map((r) => ({
        key: r.name,
        label: (
          <a class="bar-label" href={eventReportHref(r.name)}>
            {r.name}
          </a>
        ),
        total: r.total,
        visitors: r.visitors,
      }))}
    />
  );
}

/** One event: totals, unique visitors, a series, what preceded it, and the same per value of a visitor property. */
export function EventReportPage(props: { name: string }) {
  const tz = useMemo(browserTimeZone, []);
  const [days, setDays] = useState(30);
  const [interval, setInterval] = useState<Interval>("day");
  const [property, setProperty] = useState("");
  const [at, setAt] = useState("event");
  const names = useEventNames();
  const range = useMemo(() => {
    const to = today(tz);
    return { from: startOfDay(addDays(to, 1 - days), tz), to: startOfDay(addDays(to, 1), tz) };
  }, [days, tz]);
  const report = useLoad(
    (signal) =>
      api<EventReport>("GET", `/api/v1/reports/events/${encodeURIComponent(props.name)}`, {
        signal,
        query: {
          interval,
          tz,
          from: new Date(range.from).toISOString(),
          to: new Date(range.to).toISOString(),
          property: property || undefined,
          at: property ? at : undefined,
        },
      }),
    [props.name, range, interval, property, at, tz],
  );
  const r = report.data;
  const series = useMemo(() => r && denseSeries(r.series, r.interval ?? interval, r.tz ?? tz, range.from, range.to), [r]);
  const err = report.error;
  const fieldErr = (f: string) => (err?.field === f ? err.problem.detail : undefined);

  return (
    <>
      <Crumbs href="#/funnels">Funnels and events</Crumbs>
      <div class="page-head">
        <h1 tabIndex={-1} data-testid="report-heading">
          {props.name}
        </h1>
      </div>
      <form class="stats-controls report-controls" onSubmit={(e) => e.preventDefault()} data-testid="report-form">
        <Field label="Range" name="range" idPrefix="report">
          {(c) => (
            <select {...c} value={String(days)} onChange={(e) => setDays(Number(e.currentTarget.value))}>
              {RANGES.map(([d, label]) => (
                <option key={d} value={String(d)}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Interval" name="interval" idPrefix="report" error={fieldErr("interval")}>
          {(c) => (
            <select {...c} value={interval} onChange={(e) => setInterval(e.currentTarget.value as Interval)}>
              <option value="hour">Hour</option>
              <option value="day">Day</option>
              <option value="week">Week</option>
            </select>
          )}
        </Field>
        <Field label="Per visitor property" name="property" idPrefix="report" error={fieldErr("property")}>
          {(c) => (
            <select {...c} value={property} onChange={(e) => setProperty(e.currentTarget.value)} data-testid="report-property">
              <option value="">None</option>
              {(names.data?.properties ?? []).map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Its value" name="at" idPrefix="report" error={fieldErr("at")}>
          {(c) => (
            <select {...c} value={at} disabled={!property} onChange={(e) => setAt(e.currentTarget.value)}>
              <option value="event">At the event</option>
              <option value="now">Now</option>
              <option value="ever">Ever held</option>
            </select>
          )}
        </Field>
      </form>
      {err && !["interval", "property", "at"].includes(err.field ?? "") && <ErrorBox error={err} onRetry={report.reload} />}

      <dl class="totals" aria-busy={report.loading}>
        <div>
          <dt>Events</dt>
          <dd data-testid="report-total">{r ? fmtNumber(r.total) : <span class="skeleton num-skeleton" />}</dd>
        </div>
        <div>
          <dt>Unique visitors</dt>
          <dd data-testid="report-visitors">{r ? fmtNumber(r.visitors) : <span class="skeleton num-skeleton" />}</dd>
        </div>
        <div>
          <dt>Per visitor</dt>
          <dd>{r ? r.visitors ? (r.total / r.visitors).toFixed(1) : "–" : <span class="skeleton num-skeleton" />}</dd>
        </div>
      </dl>
      <ClicksChart label="Events" series={series} interval={r?.interval ?? interval} tz={r?.tz ?? tz} loading={report.loading} />

      <div class="breakdowns">
        <section class="breakdown" aria-labelledby="preceded-heading">
          <h2 id="preceded-heading" class="small-heading">
            Preceded by
          </h2>
          {r ? <Preceded rows={r.preceded_by} testid="report-preceded" /> : <span class="skeleton" />}
        </section>
        {r?.property && (
          <section class="breakdown" aria-labelledby="values-heading">
            <h2 id="values-heading" class="small-heading">
              By {r.property.name}
            </h2>
            <CountsTable
              label="Value"
              unit="Events"
              testid="report-values"
              rows={r.property.values.map((v, i) => ({
                key: i,
                label: <span class="bar-label">{valueLabel(v.value)}</span>,
                total: v.total,
                visitors: v.visitors,
              }))}
            />
          </section>
        )}
      </div>
    </>
  );
}
