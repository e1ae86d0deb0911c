import { useMemo, useState } from "preact/hooks";
import { api, type Interval, type Stats } from "../api";
import { addDays, browserTimeZone, fmtNumber, fmtPercent, isTimeZone, startOfDay, timeZones, today } from "../format";
import { useLoad } from "../hooks";
import { ClicksChart } from "./Chart";
import { ErrorBox, Field } from "./ui";

const BREAKDOWNS: [key: string, title: string, column: string][] = [
  ["referrer", "Referrers", "Referrer"],
  ["browser", "Browsers", "Browser"],
  ["os", "Operating systems", "Operating system"],
  ["device", "Devices", "Device"],
  ["platform", "Platforms", "Platform"],
  ["country", "Countries", "Country"],
  ["channel", "Channels", "Channel"],
  ["rule", "Targeting rules", "Rule"],
];

interface Range {
  interval: Interval;
  from: string; // YYYY-MM-DD, first day shown
  to: string; // YYYY-MM-DD, last day shown (inclusive)
  tz: string;
}

function initialRange(): Range {
  const tz = browserTimeZone();
  const to = today(tz);
  return { interval: "day", from: addDays(to, -29), to, tz };
}

let zoneList: string[] | undefined;

/** An app's events: events by name first; the link-only dimensions (platform, channel, rule) left out. */
const EVENT_BREAKDOWNS: [key: string, title: string, column: string][] = [
  ["name", "Events by name", "Event"],
  ["browser", "Browsers", "Browser"],
  ["os", "Operating systems", "Operating system"],
  ["device", "Devices", "Device"],
  ["country", "Countries", "Country"],
  ["referrer", "Referrers", "Referrer"],
];

/**
 * Controls (interval, range, time zone), totals, the chart and the breakdowns of a link's, a campaign's or an app's stats
 * (`events`: the API's `clicks` count an app's events).
 */
export function StatsView(props: { endpoint: string; platforms?: boolean; events?: boolean; testid?: string }) {
  const unit = props.events ? "Events" : "Clicks";
  const unitLower = unit.toLowerCase();
  const [range, setRange] = useState<Range>(initialRange);
  const [draftTz, setDraftTz] = useState(range.tz);
  const [localError, setLocalError] = useState<{ field: string; message: string } | undefined>(undefined);
  zoneList ??= timeZones();

  const stats = useLoad(
    (signal) =>
      api<Stats>("GET", props.endpoint, {
        signal,
        query: {
          interval: range.interval,
          tz: range.tz,
          from: new Date(startOfDay(range.from, range.tz)).toISOString(),
          to: new Date(startOfDay(addDays(range.to, 1), range.tz)).toISOString(),
        },
      }),
    [props.endpoint, range.interval, range.from, range.to, range.tz],
  );

  const apply = (next: Partial<Range>) => {
    const r = { ...range, ...next };
    if (!r.from || !r.to) return setLocalError({ field: r.from ? "to" : "from", message: "Choose a date." });
    if (r.from > r.to) return setLocalError({ field: "from", message: "The start must not be after the end." });
    if (!isTimeZone(r.tz)) return setLocalError({ field: "tz", message: `"${r.tz}" is not a time zone; use an IANA name such as Europe/Paris.` });
    setLocalError(undefined);
    setRange(r);
  };

  const apiField = stats.error?.field;
  const fieldError = (f: string) =>
    localError?.field === f ? localError.message : apiField === f || (f === "from" && apiField === "to") ? stats.error!.problem.detail : undefined;
  const topError = stats.error && !["from", "to", "interval", "tz"].includes(apiField ?? "") ? stats.error : undefined;
  const data = stats.data;

  return (
    <section class="stats" aria-labelledby="stats-heading" data-testid={props.testid}>
      <h2 id="stats-heading">{unit}</h2>
      <form
        class="stats-controls"
        data-testid="stats-form"
        onSubmit={(e) => {
          e.preventDefault();
          apply({ tz: draftTz.trim() });
        }}
      >
        <Field label="Interval" name="interval" idPrefix="stats" error={fieldError("interval")}>
          {(c) => (
            <select
              {...c}
              value={range.interval}
              data-testid="stats-interval"
              onChange={(e) => apply({ interval: e.currentTarget.value as Interval })}
            >
              <option value="hour">Hour</option>
              <option value="day">Day</option>
              <option value="week">Week</option>
            </select>
          )}
        </Field>
        <Field label="From" name="from" idPrefix="stats" error={fieldError("from")}>
          {(c) => (
            <input
              {...c}
              type="date"
              value={range.from}
              max={range.to}
              data-testid="stats-from"
              onChange={(e) => apply({ from: e.currentTarget.value })}
            />
          )}
        </Field>
        <Field label="To" name="to" idPrefix="stats" error={fieldError("to")}>
          {(c) => (
            <input
              {...c}
              type="date"
              value={range.to}
              min={range.from}
              data-testid="stats-to"
              onChange={(e) => apply({ to: e.currentTarget.value })}
            />
          )}
        </Field>
        <Field label="Time zone" name="tz" idPrefix="stats" error={fieldError("tz")}>
          {(c) => (
            <input
              {...c}
              type="text"
              list="stats-tz-list"
              autocomplete="off"
              spellcheck={false}
              value={draftTz}
              data-testid="stats-tz"
              onInput={(e) => setDraftTz(e.currentTarget.value)}
              onChange={(e) => apply({ tz: e.currentTarget.value.trim() })}
            />
          )}
        </Field>
        <datalist id="stats-tz-list">
          {zoneList.map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
        <div class="field actions">
          <button type="submit" class="btn" data-testid="stats-apply">
            Apply
          </button>
        </div>
      </form>

      {topError && <ErrorBox error={topError} onRetry={stats.reload} />}

      <dl class="totals" aria-busy={stats.loading}>
        <div>
          <dt>{unit}</dt>
          <dd data-testid="total-clicks">{data ? fmtNumber(data.clicks) : <span class="skeleton num-skeleton" />}</dd>
        </div>
        <div>
          <dt>Unique visitors</dt>
          <dd data-testid="total-visitors">{data ? fmtNumber(data.visitors) : <span class="skeleton num-skeleton" />}</dd>
        </div>
        <div class="bots">
          <dt>Bot {unitLower}</dt>
          <dd data-testid="bot-clicks">{data ? fmtNumber(data.bot_clicks ?? 0) : <span class="skeleton num-skeleton" />}</dd>
          <dd class="hint">not counted in {unitLower}</dd>
        </div>
      </dl>

      <ClicksChart label={unit} series={data?.series} interval={data?.interval ?? range.interval} tz={data?.tz ?? range.tz} loading={stats.loading} />

      {props.platforms && (
        <section class="breakdown wide" aria-labelledby="platforms-heading" data-testid="platforms">
          <h3 id="platforms-heading">Platforms</h3>
          <PlatformTable rows={data?.platforms} total={data?.clicks ?? 0} />
        </section>
      )}

      <div class="breakdowns">
        {/* with the platforms table above (clicks and visitors), the platform breakdown would say the same again */}
        {(props.events ? EVENT_BREAKDOWNS : BREAKDOWNS.filter(([key]) => !(props.platforms && key === "platform"))).map(([key, title, column]) => (
          <section class="breakdown" key={key} aria-labelledby={`bd-${key}`} data-testid={`breakdown-${key}`}>
            <h3 id={`bd-${key}`}>{title}</h3>
            <BreakdownTable rows={data?.breakdowns?.[key]} total={data?.clicks ?? 0} label={column} unit={unit} />
          </section>
        ))}
      </div>
    </section>
  );
}

function Bar(props: { value: number; max: number }) {
  const pct = props.max > 0 ? (props.value / props.max) * 100 : 0;
  return (
    <span class="bar" aria-hidden="true">
      <span class="bar-fill" style={{ width: `${pct.toFixed(2)}%` }} />
    </span>
  );
}

/**
 * Counts as bars: one row per value (`label`, with `title` on hover), its count in `unit`, `visitors` when the rows have
 * them, and its share of `total`; three skeleton rows while `rows` load.
 */
function BarsTable(props: {
  rows: { key: string; label: string; title?: string; clicks: number; visitors?: number }[] | undefined;
  total: number;
  label: string;
  unit: string;
  visitors?: boolean;
  rowTestid?: string;
}) {
  const max = useMemo(() => Math.max(0, ...(props.rows ?? []).map((r) => r.clicks)), [props.rows]);
  if (props.rows && props.rows.length === 0) return <p class="muted empty">No {props.unit.toLowerCase()}.</p>;
  return (
    <table class="bars">
      <thead>
        <tr>
          <th scope="col">{props.label}</th>
          <th scope="col" class="num">
            {props.unit}
          </th>
          {props.visitors && (
            <th scope="col" class="num">
              Visitors
            </th>
          )}
          <th scope="col" class="num">
            Share
          </th>
        </tr>
      </thead>
      <tbody>
        {!props.rows
          ? Array.from({ length: 3 }, (_, i) => (
              <tr key={i} aria-hidden="true" class="skeleton-row">
                <td colSpan={props.visitors ? 4 : 3}>
                  <span class="skeleton" />
                </td>
              </tr>
            ))
          : props.rows.map((r) => (
              <tr key={r.key} data-testid={props.rowTestid}>
                <td class="bar-cell">
                  <span class="bar-label" title={r.title}>
                    {r.label}
                  </span>
                  <Bar value={r.clicks} max={max} />
                </td>
                <td class="num">{fmtNumber(r.clicks)}</td>
                {props.visitors && <td class="num">{fmtNumber(r.visitors ?? 0)}</td>}
                <td class="num muted">{props.total > 0 ? fmtPercent(r.clicks / props.total) : "–"}</td>
              </tr>
            ))}
      </tbody>
    </table>
  );
}

function BreakdownTable(props: { rows: { value: string; clicks: number }[] | undefined; total: number; label: string; unit: string }) {
  const rows = useMemo(() => props.rows?.map((r) => ({ key: r.value, label: r.value || "(none)", title: r.value, clicks: r.clicks })), [props.rows]);
  return <BarsTable rows={rows} total={props.total} label={props.label} unit={props.unit} />;
}

function PlatformTable(props: { rows: { platform: string; clicks: number; visitors: number }[] | undefined; total: number }) {
  const rows = useMemo(() => props.rows?.map((r) => ({ key: r.platform, label: r.platform, clicks: r.clicks, visitors: r.visitors })), [props.rows]);
  return <BarsTable rows={rows} total={props.total} label="Platform" unit="Clicks" visitors rowTestid="platform-row" />;
}
