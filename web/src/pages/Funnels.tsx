import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, type EventNames, type FunnelQuery, type FunnelResult, type SavedFunnel } from "../api";
import { FunnelChart } from "../components/FunnelChart";
import { ConfirmButton, ErrorBox, Field, FormError, RowError, TableRows, focusField, ListTable } from "../components/ui";
import {
  draftOf,
  emptyDraft,
  emptyStep,
  formField,
  isDraftError,
  newKey,
  queryOf,
  stepsText,
  type At,
  type FunnelDraft,
  type Order,
  type StepDraft,
} from "../funnel";
import { fmtDateTime, fmtNumber } from "../format";
import { toApiError, useLoad, useRowError } from "../hooks";
import { navigate } from "../router";
import { useApp } from "../state";

const loadNames = (signal: AbortSignal) => api<EventNames>("GET", "/api/v1/reports/events", { signal });

/** The project's event names and visitor property names (empty lists when they can't be read: the inputs take any text). */
export function useEventNames() {
  return useLoad((signal) => loadNames(signal).catch(() => ({ events: [], properties: [] }) as EventNames), []);
}

export const eventReportHref = (name: string) => `#/reports/${encodeURIComponent(name)}`;

export function FunnelsPage() {
  const app = useApp();
  const list = useLoad((signal) => api<{ funnels: SavedFunnel[] }>("GET", "/api/v1/funnels", { signal }), []);
  const names = useLoad(loadNames, []);
  const rowError = useRowError();
  const rows = list.data?.funnels;

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Funnels</h1>
        <div class="actions">
          <a class="btn primary" href="#/funnels/new" data-testid="new-funnel">
            New funnel
          </a>
        </div>
      </div>
      <p class="muted lead">
        A funnel counts the visitors who did one event after another (a link click, an email open, any event an app sends) within a window, and where
        the others dropped off.
      </p>

      <section aria-labelledby="saved-heading">
        <h2 id="saved-heading">Saved funnels</h2>
        <ListTable
          load={list}
          class="fixed responsive funnels-table"
          testid="funnels-list"
          cols={["c-name", undefined, "c-date", "c-actions-xs"]}
          head={
            <>
              <th scope="col">Name</th>
              <th scope="col">Steps</th>
              <th scope="col">Changed</th>
            </>
          }
          actions
        >
          <TableRows
            rows={rows}
            cols={4}
            skeletonRows={3}
            empty={
              <>
                No saved funnels yet. <a href="#/funnels/new">Build one</a>.
              </>
            }
          >
            {(f) => (
              <tr key={f.id} data-testid="funnel-row" data-funnel-id={f.id} data-name={f.name}>
                <td data-label="Name">
                  <a href={`#/funnels/${f.id}`} data-testid="funnel-open">
                    {f.name}
                  </a>
                  {f.description && <div class="muted sub-text">{f.description}</div>}
                </td>
                <td data-label="Steps">{stepsText(f.query)}</td>
                <td data-label="Changed">{fmtDateTime(f.updated_at)}</td>
                <td class="row-actions">
                  <ConfirmButton
                    label="Delete"
                    what={f.name}
                    testid="funnel-delete"
                    onConfirm={() =>
                      rowError.run(f.id, async () => {
                        await api("DELETE", `/api/v1/funnels/${f.id}`);
                        if (list.data) list.set({ funnels: list.data.funnels.filter((x) => x.id !== f.id) });
                        app.flash({ kind: "ok", text: `Deleted the funnel ${f.name}.` });
                      })
                    }
                  />
                  <RowError text={rowError.of(f.id)} />
                </td>
              </tr>
            )}
          </TableRows>
        </ListTable>
      </section>

      <section aria-labelledby="names-heading">
        <h2 id="names-heading">Events</h2>
        <p class="muted hint">Every event name of the project, with its reports.</p>
        <ListTable
          load={names}
          class="fixed event-names"
          testid="event-names"
          cols={[undefined, "c-num-w", "c-num-w"]}
          head={
            <>
              <th scope="col">Event</th>
              <th scope="col" class="num">
                Total
              </th>
              <th scope="col" class="num">
                Visitors
              </th>
            </>
          }
        >
          <TableRows rows={names.data?.events} cols={3} skeletonRows={3} empty="No events yet.">
            {(e) => (
              <tr key={e.name} data-testid="event-name-row" data-name={e.name}>
                <td>
                  <a href={eventReportHref(e.name)} class="truncate">
                    {e.name}
                  </a>
                </td>
                <td class="num">{fmtNumber(e.total)}</td>
                <td class="num">{fmtNumber(e.visitors)}</td>
              </tr>
            )}
          </TableRows>
        </ListTable>
      </section>
    </>
  );
}

/** The form's fields that the API's problems may name (see formField). */
function knownFields(d: FunnelDraft): string[] {
  const f = ["steps", "window", "step_window", "order", "from", "to", "exclusions"];
  if (d.breakdown) f.push("breakdown", "attribution");
  if (d.breakdown === "property") f.push("breakdown.at");
  d.steps.forEach((_, i) => f.push(`steps[${i}].name`, `steps[${i}].where`));
  d.exclusions.forEach((_, i) => f.push(`exclusions[${i}].name`, `exclusions[${i}].between`));
  return f;
}

/** A saved funnel (`id`) or a new one: the builder, its result, and saving. */
export function FunnelPage(props: { id?: number }) {
  const app = useApp();
  const saved = useLoad(
    (signal) => (props.id ? api<SavedFunnel>("GET", `/api/v1/funnels/${props.id}`, { signal }) : Promise.resolve(undefined)),
    [props.id],
  );
  const names = useEventNames();
  const [draft, setDraft] = useState<FunnelDraft | undefined>(props.id ? undefined : emptyDraft);
  const [meta, setMeta] = useState({ name: "", description: "" });
  const [result, setResult] = useState<FunnelResult | undefined>(undefined);
  const [running, setRunning] = useState(false);
  const [saving, setSaving] = useState(false);
  const [errors, setErrors] = useState<{ byField: Record<string, string>; top?: string }>({ byField: {} });
  const [saveErrors, setSaveErrors] = useState<{ byField: Record<string, string>; top?: string }>({ byField: {} });
  const form = useRef<HTMLFormElement>(null);
  const saveForm = useRef<HTMLFormElement>(null);
  const runId = useRef(0);

  // a saved funnel: its query fills the form, and its results show
  useEffect(() => {
    const f = saved.data;
    if (!f) return;
    setDraft(draftOf(f.query));
    setMeta({ name: f.name, description: f.description ?? "" });
    const id = ++runId.current;
    setRunning(true);
    api<FunnelResult>("GET", `/api/v1/funnels/${f.id}/results`).then(
      (r) => {
        if (id !== runId.current) return;
        setResult(r);
        setRunning(false);
      },
      (e) => {
        if (id !== runId.current) return;
        setErrors({ byField: {}, top: toApiError(e).problem.detail });
        setRunning(false);
      },
    );
  }, [saved.data]);

  const fields = useMemo(() => (draft ? knownFields(draft) : []), [draft]);

  /** The query, or undefined with the form's message shown next to its field. */
  const checked = (): FunnelQuery | undefined => {
    if (!draft) return undefined;
    const q = queryOf(draft);
    if (isDraftError(q)) {
      setErrors({ byField: { [q.field]: q.message } });
      focusField(form.current, q.field);
      return undefined;
    }
    return q;
  };

  const showProblem = (e: unknown, into: typeof setErrors, known: string[], formEl: HTMLFormElement | null) => {
    const err = toApiError(e);
    const f = formField(err.field, known);
    if (f) {
      into({ byField: { [f]: err.problem.detail } });
      focusField(formEl, f);
    } else into({ byField: {}, top: err.problem.detail });
    return f;
  };

  const run = async (e?: Event) => {
    e?.preventDefault();
    setErrors({ byField: {} });
    const q = checked();
    if (!q) return;
    const id = ++runId.current;
    setRunning(true);
    try {
      const r = await api<FunnelResult>("POST", "/api/v1/funnels/query", { body: q });
      if (id === runId.current) setResult(r);
    } catch (err) {
      if (id === runId.current) showProblem(err, setErrors, fields, form.current);
    } finally {
      if (id === runId.current) setRunning(false);
    }
  };

  const save = async (asNew: boolean) => {
    setSaveErrors({ byField: {} });
    setErrors({ byField: {} });
    const q = checked();
    if (!q) return;
    const name = meta.name.trim();
    if (!name) {
      setSaveErrors({ byField: { name: "Name the funnel." } });
      focusField(saveForm.current, "name");
      return;
    }
    const body = { name, description: meta.description.trim() || null, query: q };
    setSaving(true);
    try {
      if (props.id && !asNew) {
        const f = await api<SavedFunnel>("PATCH", `/api/v1/funnels/${props.id}`, { body });
        saved.set(f);
        app.flash({ kind: "ok", text: `Saved the funnel ${f.name}.` });
      } else {
        const f = await api<SavedFunnel>("POST", "/api/v1/funnels", { body });
        app.flash({ kind: "ok", text: `Saved the funnel ${f.name}.`, path: `/funnels/${f.id}` });
        navigate(`/funnels/${f.id}`);
      }
    } catch (err) {
      // a problem with the query goes next to the builder's control; with the name or description, next to those
      const f = formField(toApiError(err).field, ["name", "description"]);
      if (f) showProblem(err, setSaveErrors, ["name", "description"], saveForm.current);
      else showProblem(err, setErrors, fields, form.current);
    } finally {
      setSaving(false);
    }
  };

  const f = saved.data;
  const title = props.id ? (f ? f.name : saved.error ? "Funnel" : undefined) : "New funnel";

  return (
    <>
      <p class="crumbs">
        <a href="#/funnels">Funnels</a> <span aria-hidden="true">›</span>
      </p>
      <div class="page-head">
        <h1 tabIndex={-1} data-testid="funnel-heading">
          {title ?? <span class="skeleton title-skeleton" aria-label="Loading" />}
        </h1>
        {f && (
          <div class="actions">
            <ConfirmButton
              label="Delete"
              what={f.name}
              testid="delete-funnel"
              onConfirm={async () => {
                try {
                  await api("DELETE", `/api/v1/funnels/${f.id}`);
                  app.flash({ kind: "ok", text: `Deleted the funnel ${f.name}.`, path: "/funnels" });
                  navigate("/funnels");
                } catch (e) {
                  setSaveErrors({ byField: {}, top: toApiError(e).problem.detail });
                }
              }}
            />
          </div>
        )}
      </div>
      {f?.description && <p class="muted lead">{f.description}</p>}
      {saved.error && <ErrorBox error={saved.error} onRetry={saved.reload} />}

      {draft && (
        <>
          <Builder draft={draft} setDraft={setDraft} names={names.data} errors={errors} running={running} formRef={form} onSubmit={run} />

          <form
            class="card form save-funnel"
            ref={saveForm}
            noValidate
            aria-labelledby="save-heading"
            data-testid="funnel-save-form"
            onSubmit={(e) => {
              e.preventDefault();
              void save(false);
            }}
          >
            <h2 id="save-heading">{props.id ? "Name and save" : "Save this funnel"}</h2>
            <FormError message={saveErrors.top} testid="funnel-save-error" />
            <div class="grid-2">
              <Field label="Name" name="name" idPrefix="funnel" error={saveErrors.byField.name}>
                {(c) => (
                  <input
                    {...c}
                    type="text"
                    maxLength={128}
                    required
                    value={meta.name}
                    onInput={(e) => setMeta({ ...meta, name: e.currentTarget.value })}
                    data-testid="funnel-name"
                  />
                )}
              </Field>
              <Field label="Description" name="description" idPrefix="funnel" error={saveErrors.byField.description}>
                {(c) => (
                  <input
                    {...c}
                    type="text"
                    maxLength={4096}
                    value={meta.description}
                    onInput={(e) => setMeta({ ...meta, description: e.currentTarget.value })}
                    data-testid="funnel-description"
                  />
                )}
              </Field>
            </div>
            <div class="form-actions">
              <button type="submit" class="btn" disabled={saving} data-testid="funnel-save">
                {saving ? "Saving…" : props.id ? "Save changes" : "Save funnel"}
              </button>
              {props.id && (
                <button type="button" class="btn plain" disabled={saving} onClick={() => void save(true)} data-testid="funnel-save-new">
                  Save as a new funnel
                </button>
              )}
            </div>
          </form>

          <section class="funnel-results" aria-labelledby="result-heading" aria-live="polite">
            <h2 id="result-heading">Result</h2>
            {result ? (
              <FunnelChart result={result} busy={running} />
            ) : (
              <p class="muted" data-testid="funnel-no-result">
                {running ? "Running…" : "Choose the steps and run the funnel."}
              </p>
            )}
          </section>
        </>
      )}
    </>
  );
}

/** The builder: steps with their filters, options, exclusions, breakdown. */
function Builder(props: {
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
