import type { FunnelResult, FunnelStepResult } from "../api";
import { fmtCount, fmtDuration, fmtNumber, fmtPercent } from "../format";

/** A breakdown value as the API gives it (any JSON; null: visitors without one). */
export const valueLabel = (v: unknown) => (v === null || v === undefined ? "(none)" : typeof v === "string" ? v || '""' : JSON.stringify(v));

export const visitorHref = (id: string) => `#/visitors/${encodeURIComponent(id)}`;

const pct = (n: number, of: number) => (of > 0 ? Math.min(100, (n / of) * 100) : 0);

/**
 * Bars per step (plain DOM: no canvas to load): the filled part is the step's visitors, the hatched part those of the
 * step before who dropped off, both against the first step's. Decorative: the table below says the same.
 */
function Bars(props: { steps: FunnelStepResult[]; compact?: boolean; testid?: string }) {
  const first = props.steps[0]?.visitors ?? 0;
  return (
    <ol class={`funnel-bars${props.compact ? " compact" : ""}`} aria-hidden="true" data-testid={props.testid}>
      {props.steps.map((s, k) => {
        const prev = k === 0 ? s.visitors : props.steps[k - 1]!.visitors;
        return (
          <li key={k} class="funnel-bar-row">
            <span class="funnel-bar-label">
              <span class="funnel-step-no">{k + 1}</span>
              <span class="truncate" title={s.name}>
                {s.name}
              </span>
            </span>
            <span class="funnel-track">
              <span class="funnel-fill" style={{ width: `${pct(s.visitors, first).toFixed(2)}%` }} />
              {prev > s.visitors && <span class="funnel-drop" style={{ width: `${pct(prev - s.visitors, first).toFixed(2)}%` }} />}
            </span>
            <span class="funnel-bar-num">
              <strong>{fmtNumber(s.visitors)}</strong> <span class="muted">{fmtPercent(s.conversion_from_first)}</span>
            </span>
          </li>
        );
      })}
    </ol>
  );
}

/** The numbers of a funnel: one row per step. */
function StepTable(props: { steps: FunnelStepResult[]; caption: string; testid?: string }) {
  return (
    <div class="table-wrap">
      <table class="funnel-table" data-testid={props.testid}>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col" class="num">
              Visitors
            </th>
            <th scope="col" class="num">
              From previous
            </th>
            <th scope="col" class="num">
              From first
            </th>
            <th scope="col" class="num">
              Dropped off
            </th>
            <th scope="col" class="num">
              Median time
            </th>
            <th scope="col" class="num">
              90th pct. time
            </th>
          </tr>
        </thead>
        <tbody>
          {props.steps.map((s, k) => {
            const dropped = k === 0 ? 0 : props.steps[k - 1]!.visitors - s.visitors;
            return (
              <tr key={k} data-testid="funnel-step-row" data-step={k}>
                <th scope="row" class="funnel-step-name">
                  {k + 1}. {s.name}
                </th>
                <td class="num" data-testid="funnel-step-visitors">
                  {fmtNumber(s.visitors)}
                </td>
                <td class="num" data-testid="funnel-step-conversion">
                  {k === 0 ? "–" : fmtPercent(s.conversion_from_previous)}
                </td>
                <td class="num" data-testid="funnel-step-overall">
                  {fmtPercent(s.conversion_from_first)}
                </td>
                <td class="num">{k === 0 ? "–" : fmtNumber(dropped)}</td>
                <td class="num" data-testid="funnel-step-median">
                  {fmtDuration(s.median_ms_to_convert)}
                </td>
                <td class="num" data-testid="funnel-step-p90">
                  {fmtDuration(s.p90_ms_to_convert)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Who dropped off before each step (the API's sample), each a link to the visitor's page. */
function DropOffs(props: { steps: FunnelStepResult[] }) {
  const rows = props.steps.map((s, k) => ({ s, k })).filter(({ k }) => k > 0);
  if (rows.length === 0) return null;
  return (
    <section class="dropoffs" aria-labelledby="dropoffs-heading">
      <h3 id="dropoffs-heading">Dropped off</h3>
      <dl class="dropoff-list">
        {rows.map(({ s, k }) => {
          const dropped = props.steps[k - 1]!.visitors - s.visitors;
          return (
            <div key={k} data-testid="funnel-dropoff" data-step={k}>
              <dt>
                After step {k} ({props.steps[k - 1]!.name}), before {s.name}: {fmtCount(dropped, "visitor")}
              </dt>
              <dd>
                {s.dropped_off_sample.length === 0 ? (
                  <span class="muted">{dropped > 0 ? "No sample." : "Nobody."}</span>
                ) : (
                  <ul class="id-list">
                    {s.dropped_off_sample.map((id) => (
                      <li key={id}>
                        <a href={visitorHref(id)} data-testid="dropoff-visitor">
                          <code>{id}</code>
                        </a>
                      </li>
                    ))}
                    {dropped > s.dropped_off_sample.length && <li class="muted">and {fmtNumber(dropped - s.dropped_off_sample.length)} more</li>}
                  </ul>
                )}
              </dd>
            </div>
          );
        })}
      </dl>
    </section>
  );
}

/** A breakdown: each group's bars, and one table of every group's visitors per step. */
function Breakdown(props: { groups: NonNullable<FunnelResult["breakdown"]>; stepNames: string[] }) {
  return (
    <section class="funnel-breakdown" aria-labelledby="funnel-breakdown-heading" data-testid="funnel-breakdown">
      <h3 id="funnel-breakdown-heading">Breakdown</h3>
      {props.groups.length === 0 ? (
        <p class="muted">No visitors.</p>
      ) : (
        <>
          <div class="funnel-groups">
            {props.groups.map((g, i) => (
              <div class="funnel-group" key={i}>
                <h4 class="truncate" title={valueLabel(g.value)}>
                  {valueLabel(g.value)}
                </h4>
                <Bars steps={g.steps} compact />
              </div>
            ))}
          </div>
          <div class="table-wrap">
            <table class="funnel-table">
              <caption class="sr-only">Visitors per step of each breakdown value, and their conversion from the first step</caption>
              <thead>
                <tr>
                  <th scope="col">Value</th>
                  {props.stepNames.map((n, k) => (
                    <th scope="col" class="num" key={k}>
                      {k + 1}. {n}
                    </th>
                  ))}
                  <th scope="col" class="num">
                    Conversion
                  </th>
                </tr>
              </thead>
              <tbody>
                {props.groups.map((g, i) => (
                  <tr key={i} data-testid="funnel-group-row" data-value={valueLabel(g.value)}>
                    <th scope="row">{valueLabel(g.value)}</th>
                    {g.steps.map((s, k) => (
                      <td class="num" key={k}>
                        {fmtNumber(s.visitors)}
                        {k > 0 && <span class="muted sub-pct"> {fmtPercent(s.conversion_from_previous)}</span>}
                      </td>
                    ))}
                    <td class="num">{fmtPercent(g.steps[g.steps.length - 1]?.conversion_from_first ?? 0)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

export function FunnelChart(props: { result: FunnelResult; busy?: boolean }) {
  const { steps, breakdown, meta } = props.result;
  const first = steps[0]?.visitors ?? 0;
  const last = steps[steps.length - 1];
  return (
    <div class={`funnel-result${props.busy ? " loading" : ""}`} aria-busy={props.busy} data-testid="funnel-result">
      <dl class="totals">
        <div>
          <dt>Entered</dt>
          <dd data-testid="funnel-entered">{fmtNumber(first)}</dd>
        </div>
        <div>
          <dt>Converted</dt>
          <dd data-testid="funnel-converted">{fmtNumber(last?.visitors ?? 0)}</dd>
        </div>
        <div>
          <dt>Conversion</dt>
          <dd data-testid="funnel-conversion">{fmtPercent(last?.conversion_from_first ?? 0)}</dd>
        </div>
      </dl>
      <div class="chart funnel-chart">
        {first === 0 ? (
          <p class="muted funnel-empty">No visitor reached the first step in this range.</p>
        ) : (
          <Bars steps={steps} testid="funnel-bars" />
        )}
      </div>
      <StepTable steps={steps} caption="Visitors per step, conversion and time to convert" testid="funnel-table" />
      <p class="muted hint funnel-meta" data-testid="funnel-meta">
        Times to convert are from the step before. Read {fmtCount(meta.events, "event")} of {fmtCount(meta.visitors, "visitor")} in{" "}
        {meta.took_ms < 1 ? "under 1 ms" : fmtDuration(meta.took_ms)}
        {meta.window_ms ? `; window ${fmtDuration(meta.window_ms)}` : meta.window_ms === null ? "; no window" : ""}.
      </p>
      <DropOffs steps={steps} />
      {breakdown && <Breakdown groups={breakdown} stepNames={steps.map((s) => s.name)} />}
    </div>
  );
}
