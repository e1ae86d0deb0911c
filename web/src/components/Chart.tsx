import { useEffect, useMemo, useRef } from "preact/hooks";
import type uPlot from "uplot";
import type { Interval } from "../api";
import { fmtNumber } from "../format";

export const CHART_HEIGHT = 240;

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

// uPlot loads with the first chart, not with the dashboard (its CSS is in the main bundle: it is small)
let uPlotModule: Promise<typeof uPlot> | undefined;
const loadUPlot = () => (uPlotModule ??= import("uplot").then((m) => m.default));

/** Clicks per bucket (uPlot, a canvas), in the stats' time zone; a table of the same numbers for screen readers and keyboards. */
export function ClicksChart(props: {
  series: { t: string; clicks: number }[] | undefined;
  interval: Interval;
  tz: string;
  loading: boolean;
  /** what is counted: "Clicks" (the default) or "Events" */
  label?: string;
}) {
  const unit = props.label ?? "Clicks";
  const box = useRef<HTMLDivElement>(null);
  const { series, interval, tz } = props;

  const fmt = useMemo(() => {
    const opts: Intl.DateTimeFormatOptions =
      interval === "hour"
        ? { timeZone: tz, month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }
        : { timeZone: tz, dateStyle: "medium" };
    const full = new Intl.DateTimeFormat(undefined, opts);
    const axis = new Intl.DateTimeFormat(
      undefined,
      interval === "hour" ? { timeZone: tz, hour: "numeric" } : { timeZone: tz, month: "short", day: "numeric" },
    );
    const axisDay = new Intl.DateTimeFormat(undefined, { timeZone: tz, month: "short", day: "numeric" });
    return { full, axis, axisDay };
  }, [interval, tz]);

  useEffect(() => {
    const el = box.current;
    if (!el || !series) return;
    let plot: uPlot | undefined;
    let ro: ResizeObserver | undefined;
    let frame = 0;
    let cancelled = false;
    loadUPlot().then(
      (UPlot) => {
        if (cancelled) return;
        plot = draw(UPlot, el);
        let width = el.clientWidth;
        ro = new ResizeObserver(() => {
          cancelAnimationFrame(frame);
          frame = requestAnimationFrame(() => {
            if (el.clientWidth !== width && el.clientWidth > 0) {
              width = el.clientWidth;
              plot?.setSize({ width: Math.max(200, width), height: CHART_HEIGHT });
            }
          });
        });
        ro.observe(el);
      },
      () => {
        if (!cancelled) el.textContent = "The chart could not be loaded; reload the page.";
      },
    );
    return () => {
      cancelled = true;
      cancelAnimationFrame(frame);
      ro?.disconnect();
      plot?.destroy();
    };

    function draw(UPlot: typeof uPlot, el: HTMLDivElement): uPlot {
      const xs = series!.map((p) => Date.parse(p.t) / 1000);
      const ys = series!.map((p) => p.clicks);
      const accent = cssVar("--accent", "#2f5bd3");
      const fill = cssVar("--accent-soft", "rgba(47, 91, 211, 0.15)");
      const ink = cssVar("--muted", "#666");
      const grid = cssVar("--grid", "rgba(128, 128, 128, 0.2)");
      const max = Math.max(0, ...ys);
      const bars = interval !== "hour" || xs.length <= 48;
      const half = (interval === "hour" ? 3600 : interval === "day" ? 86400 : 7 * 86400) / 2;
      const opts: uPlot.Options = {
        width: Math.max(200, el.clientWidth),
        height: CHART_HEIGHT,
        tzDate: (ts) => UPlot.tzDate(new Date(ts * 1000), tz),
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 7 } },
        scales: {
          // bars are centred on their bucket: half a bucket of room at both ends
          x: { time: true, range: (_u, min, max) => (bars ? [min - half, max + half] : [min, max]) },
          y: { range: () => [0, Math.max(4, Math.ceil(max * 1.1))] },
        },
        series: [
          { label: "Time", value: (_u, v) => (v === null ? "–" : fmt.full.format(v * 1000)) },
          {
            label: unit,
            stroke: accent,
            fill,
            width: bars ? 1 : 2,
            points: { show: !bars && xs.length <= 96 },
            paths: bars ? UPlot.paths.bars!({ size: [0.7, 48] }) : undefined,
            value: (_u, v) => fmtNumber(v),
          },
        ],
        axes: [
          {
            stroke: ink,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid, width: 1 },
            values: (_u, splits) => {
              let lastDay = "";
              return splits.map((s) => {
                if (interval !== "hour") return fmt.axis.format(s * 1000);
                const day = fmt.axisDay.format(s * 1000);
                const hour = fmt.axis.format(s * 1000);
                const label = day !== lastDay ? `${hour}\n${day}` : hour;
                lastDay = day;
                return label;
              });
            },
          },
          {
            stroke: ink,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid, width: 1 },
            incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9],
            values: (_u, splits) => splits.map((v) => fmtNumber(v)),
            size: 56,
          },
        ],
      };
      return new UPlot(opts, [xs, ys], el);
    }
  }, [series, interval, tz, fmt, unit]);

  const empty = series && series.every((p) => p.clicks === 0);
  return (
    <figure class="chart" data-testid="clicks-chart" aria-busy={props.loading}>
      <figcaption class="sr-only">
        {unit} per {interval}
      </figcaption>
      <div class={`chart-canvas${props.loading ? " loading" : ""}`}>
        {!series && <span class="skeleton chart-skeleton" aria-hidden="true" />}
        <div class="chart-plot" ref={box} aria-hidden="true" />
        {empty && !props.loading && <p class="chart-empty muted">No {unit.toLowerCase()} in this range.</p>}
      </div>
      {/* always there, so that its line is not added when the numbers arrive */}
      <details class="chart-table">
        <summary>Show the numbers</summary>
        {series && series.length > 0 ? (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{interval === "hour" ? "Hour" : interval === "day" ? "Day" : "Week of"}</th>
                  <th scope="col" class="num">
                    {unit}
                  </th>
                </tr>
              </thead>
              <tbody>
                {series.map((p) => (
                  <tr key={p.t}>
                    <td>{fmt.full.format(Date.parse(p.t))}</td>
                    <td class="num">{fmtNumber(p.clicks)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted">{series ? "No buckets in this range." : "Loading…"}</p>
        )}
      </details>
    </figure>
  );
}
