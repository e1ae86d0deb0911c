import type { EventNames } from "../../api";
import { Field, FormError } from "../../components/ui";
import { emptyStep, newKey, type At, type FunnelDraft, type Order, type StepDraft } from "../../funnel";
import { fmtNumber } from "../../format";

/** The builder: steps with their filters, options, exclusions, breakdown. */
export function Builder(props: {
  draft: FunnelDraft;
  setDraft: (d: FunnelDraft) => void;
  names: EventNames | undefined;
  errors: { byField: Record<string, string>; top?: string };
  running: boolean;
  formRef: { current: HTMLFormElement | null };
  onSubmit: (e: Event) => void;
}) {
  const { draft: d, setDraft, errors } = props;
  const set = (patch: Partial<FunnelDraft>) => setDraft({ ...d, ...patch });
  const setStep = (i: number, s: StepDraft) => set({ steps: d.steps.map((x, j) => (j === i ? s : x)) });
  const moveStep = (i: number, by: number) => {
    const steps = [...d.steps];
    const [s] = steps.splice(i, 1);
    steps.splice(i + by, 0, s!);
    set({ steps });
  };
  const err = errors.byField;
  const names = props.names?.events ?? [];

  return (
    <form
      class="card form funnel-form"
      ref={props.formRef}
      onSubmit={props.onSubmit}
      noValidate
      data-testid="funnel-form"
      aria-labelledby="builder-heading"
    >
      <h2 id="builder-heading">Steps</h2>
      <FormError message={errors.top} testid="funnel-error" />
      <datalist id="funnel-event-names">
        {names.map((e) => (
          <option key={e.name} value={e.name}>
            {`${fmtNumber(e.total)} events, ${fmtNumber(e.visitors)} visitors`}
          </option>
        ))}
      </datalist>
      <datalist id="funnel-properties">
        {(props.names?.properties ?? []).map((p) => (
          <option key={p} value={p} />
        ))}
      </datalist>
      {err.steps && (
        <p class="field-error" data-testid="error-steps">
          {err.steps}
        </p>
      )}
      <ol class="funnel-steps">
        {d.steps.map((s, i) => (
          <li key={s.key} class="funnel-step" data-testid="funnel-step">
            <div class="funnel-step-head">
              <Field label={`Step ${i + 1}`} name={`steps[${i}].name`} idPrefix="funnel" error={err[`steps[${i}].name`]} class="grow">
                {(c) => (
                  <input
                    {...c}
                    type="text"
                    list="funnel-event-names"
                    autocomplete="off"
                    spellcheck={false}
                    maxLength={200}
                    placeholder="an event name, e.g. click"
                    value={s.name}
                    onInput={(e) => setStep(i, { ...s, name: e.currentTarget.value })}
                    data-testid={`funnel-step-${i}`}
                  />
                )}
              </Field>
              <div class="step-actions" role="group" aria-label={`Step ${i + 1}`}>
                <button
                  type="button"
                  class="btn small"
                  onClick={() => setStep(i, { ...s, where: [...s.where, { key: newKey(), field: "", value: "" }] })}
                  data-testid={`funnel-step-${i}-filter`}
                >
                  Add filter
                </button>
                <button type="button" class="btn small" disabled={i === 0} onClick={() => moveStep(i, -1)} aria-label={`Move step ${i + 1} up`}>
                  ↑
                </button>
                <button
                  type="button"
                  class="btn small"
                  disabled={i === d.steps.length - 1}
                  onClick={() => moveStep(i, 1)}
                  aria-label={`Move step ${i + 1} down`}
                >
                  ↓
                </button>
                <button
                  type="button"
                  class="btn small danger-outline"
                  disabled={d.steps.length === 1}
                  onClick={() => set({ steps: d.steps.filter((_, j) => j !== i) })}
                  aria-label={`Remove step ${i + 1}`}
                  data-testid={`funnel-step-${i}-remove`}
                >
                  Remove
                </button>
              </div>
            </div>
            {s.where.length > 0 && (
              <fieldset class="where" aria-describedby={err[`steps[${i}].where`] ? `funnel-steps-${i}-where-error` : undefined}>
                <legend>Only events whose data has</legend>
                {s.where.map((w, j) => (
                  <div class="where-row" key={w.key}>
                    <label class="sr-only" for={`where-${w.key}-field`}>
                      Data field
                    </label>
                    <input
                      id={`where-${w.key}-field`}
                      name={j === 0 ? `steps[${i}].where` : undefined}
                      type="text"
                      placeholder="field, e.g. plan"
                      aria-invalid={err[`steps[${i}].where`] ? true : undefined}
                      value={w.field}
                      onInput={(e) => setStep(i, { ...s, where: s.where.map((x) => (x.key === w.key ? { ...x, field: e.currentTarget.value } : x)) })}
                      data-testid={`funnel-step-${i}-where-field`}
                    />
                    <span aria-hidden="true">=</span>
                    <label class="sr-only" for={`where-${w.key}-value`}>
                      Value
                    </label>
                    <input
                      id={`where-${w.key}-value`}
                      type="text"
                      placeholder="value, e.g. pro"
                      value={w.value}
                      onInput={(e) => setStep(i, { ...s, where: s.where.map((x) => (x.key === w.key ? { ...x, value: e.currentTarget.value } : x)) })}
                      data-testid={`funnel-step-${i}-where-value`}
                    />
                    <button
                      type="button"
                      class="btn small plain"
                      aria-label="Remove this filter"
                      onClick={() => setStep(i, { ...s, where: s.where.filter((x) => x.key !== w.key) })}
                    >
                      ×
                    </button>
                  </div>
                ))}
                <p class="hint">Numbers and true/false match typed values; put text in "quotes" to match it as text.</p>
                {err[`steps[${i}].where`] && (
                  <p class="field-error" id={`funnel-steps-${i}-where-error`} data-testid={`error-steps[${i}].where`}>
                    {err[`steps[${i}].where`]}
                  </p>
                )}
              </fieldset>
            )}
          </li>
        ))}
      </ol>
      <div class="form-actions add-step">
        <button
          type="button"
          class="btn small"
          disabled={d.steps.length >= 31}
          onClick={() => set({ steps: [...d.steps, emptyStep()] })}
          data-testid="funnel-add-step"
        >
          Add a step
        </button>
      </div>

      <h2>Options</h2>
      <div class="grid-5 funnel-options">
        <DraftInput
          field="window"
          label="Window"
          hint="From the first step: 30m, 12h, 1d, 7d; none; empty: 14 days"
          placeholder="14d"
          testid="funnel-window"
          draft={d}
          set={set}
          err={err}
        />
        <DraftInput
          field="step_window"
          label="Between two steps"
          hint="The longest time from one step to the next"
          placeholder="no limit"
          testid="funnel-step-window"
          draft={d}
          set={set}
          err={err}
        />
        <datalist id="funnel-durations">
          {["30m", "1h", "12h", "1d", "7d", "14d", "30d", "none"].map((v) => (
            <option key={v} value={v} />
          ))}
        </datalist>
        <Field label="Order" name="order" idPrefix="funnel" error={err.order} hint={ORDER_HINT[d.order]}>
          {(c) => (
            <select {...c} value={d.order} onChange={(e) => set({ order: e.currentTarget.value as Order })} data-testid="funnel-order">
              <option value="ordered">In order</option>
              <option value="strict">Strictly in order</option>
              <option value="any">Any order</option>
            </select>
          )}
        </Field>
        <DraftInput
          field="from"
          label="First day"
          hint="Attempts starting on or after"
          max={d.to}
          testid="funnel-from"
          draft={d}
          set={set}
          err={err}
        />
        <DraftInput field="to" label="Last day" hint="Empty: up to now" min={d.from} testid="funnel-to" draft={d} set={set} err={err} />
      </div>

      <fieldset class="sub-fieldset">
        <legend>Exclusions</legend>
        <p class="hint">Visitors who did one of these events during their attempt are not counted.</p>
        {err.exclusions && (
          <p class="field-error" data-testid="error-exclusions">
            {err.exclusions}
          </p>
        )}
        {d.exclusions.map((x, i) => (
          <div class="exclusion-row" key={x.key} data-testid="funnel-exclusion">
            <Field label="Event" name={`exclusions[${i}].name`} idPrefix="funnel" error={err[`exclusions[${i}].name`]}>
              {(c) => (
                <input
                  {...c}
                  type="text"
                  list="funnel-event-names"
                  autocomplete="off"
                  value={x.name}
                  onInput={(e) => set({ exclusions: d.exclusions.map((y) => (y.key === x.key ? { ...y, name: e.currentTarget.value } : y)) })}
                  data-testid={`funnel-exclusion-${i}`}
                />
              )}
            </Field>
            <Field label="When" name={`exclusions[${i}].between`} idPrefix="funnel" error={err[`exclusions[${i}].between`]}>
              {(c) => (
                <select
                  {...c}
                  value={x.between}
                  onChange={(e) => set({ exclusions: d.exclusions.map((y) => (y.key === x.key ? { ...y, between: e.currentTarget.value } : y)) })}
                >
                  <option value="">Anywhere in the funnel</option>
                  {d.steps.flatMap((_, a) =>
                    d.steps.slice(a + 1).map((__, k) => {
                      const b = a + 1 + k;
                      return (
                        <option key={`${a}-${b}`} value={`${a}-${b}`}>
                          Between step {a + 1} and step {b + 1}
                        </option>
                      );
                    }),
                  )}
                </select>
              )}
            </Field>
            <button
              type="button"
              class="btn small plain remove-exclusion"
              aria-label={`Remove exclusion ${i + 1}`}
              onClick={() => set({ exclusions: d.exclusions.filter((y) => y.key !== x.key) })}
            >
              ×
            </button>
          </div>
        ))}
        <button
          type="button"
          class="btn small add-exclusion"
          onClick={() => set({ exclusions: [...d.exclusions, { key: newKey(), name: "", between: "" }] })}
          data-testid="funnel-add-exclusion"
        >
          Add an exclusion
        </button>
      </fieldset>

      <fieldset class="sub-fieldset">
        <legend>Breakdown</legend>
        <div class="grid-3">
          <Field label="Break down by" name="breakdown-kind" idPrefix="funnel">
            {(c) => (
              <select
                {...c}
                value={d.breakdown}
                onChange={(e) => set({ breakdown: e.currentTarget.value as FunnelDraft["breakdown"] })}
                data-testid="funnel-breakdown-kind"
              >
                <option value="">Nothing</option>
                <option value="property">A visitor property</option>
                <option value="event_field">A field of the event's data</option>
              </select>
            )}
          </Field>
          {d.breakdown && (
            <Field label={d.breakdown === "property" ? "Property" : "Data field"} name="breakdown" idPrefix="funnel" error={err.breakdown}>
              {(c) => (
                <input
                  {...c}
                  type="text"
                  list={d.breakdown === "property" ? "funnel-properties" : undefined}
                  autocomplete="off"
                  value={d.breakdownName}
                  onInput={(e) => set({ breakdownName: e.currentTarget.value })}
                  data-testid="funnel-breakdown-name"
                />
              )}
            </Field>
          )}
          {d.breakdown === "property" && (
            <Field label="Its value" name="breakdown.at" idPrefix="funnel" error={err["breakdown.at"]}>
              {(c) => (
                <select {...c} value={d.at} onChange={(e) => set({ at: e.currentTarget.value as At })} data-testid="funnel-breakdown-at">
                  <option value="event">At the time of the event</option>
                  <option value="now">Now</option>
                  <option value="ever">Any value it ever had</option>
                </select>
              )}
            </Field>
          )}
          {d.breakdown && (
            <Field
              label="Attribution"
              name="attribution"
              idPrefix="funnel"
              error={err.attribution}
              hint={d.attribution === "first" ? "The value at the first step" : "The value at the last step reached"}
            >
              {(c) => (
                <select
                  {...c}
                  value={d.attribution}
                  onChange={(e) => set({ attribution: e.currentTarget.value as "first" | "last" })}
                  data-testid="funnel-attribution"
                >
                  <option value="first">First touch</option>
                  <option value="last">Last touch</option>
                </select>
              )}
            </Field>
          )}
        </div>
      </fieldset>

      <div class="form-actions">
        <button type="submit" class="btn primary" disabled={props.running} data-testid="funnel-run">
          {props.running ? "Running…" : "Run"}
        </button>
      </div>
    </form>
  );
}

/** A duration (window, step_window: text, with the durations listed) or a day (from, to: a date) of the draft, named as the API names it. */
function DraftInput(props: {
  field: "window" | "step_window" | "from" | "to";
  label: string;
  hint: string;
  testid: string;
  placeholder?: string;
  min?: string;
  max?: string;
  draft: FunnelDraft;
  set: (patch: Partial<FunnelDraft>) => void;
  err: Record<string, string>;
}) {
  const { field } = props;
  const duration = field === "window" || field === "step_window";
  return (
    <Field label={props.label} name={field} idPrefix="funnel" error={props.err[field]} hint={props.hint}>
      {(c) => (
        <input
          {...c}
          type={duration ? "text" : "date"}
          list={duration ? "funnel-durations" : undefined}
          autocomplete={duration ? "off" : undefined}
          placeholder={props.placeholder}
          value={props.draft[field]}
          min={props.min || undefined}
          max={props.max || undefined}
          onInput={(e) => props.set({ [field]: e.currentTarget.value })}
          data-testid={props.testid}
        />
      )}
    </Field>
  );
}

const ORDER_HINT: Record<Order, string> = {
  ordered: "Other events may come between the steps",
  strict: "No other event between the steps",
  any: "The steps in any order",
};
