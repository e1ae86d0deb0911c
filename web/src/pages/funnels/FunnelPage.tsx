import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, type FunnelQuery, type FunnelResult, type SavedFunnel } from "../../api";
import { FunnelChart } from "../../components/FunnelChart";
import { ConfirmButton, Crumbs, ErrorBox, Field, FormError, focusField } from "../../components/ui";
import { draftOf, emptyDraft, formField, isDraftError, queryOf, type FunnelDraft } from "../../funnel";
import { toApiError, useLoad } from "../../hooks";
import { navigate } from "../../router";
import { useApp } from "../../state";
import { Builder } from "./Builder";
import { useEventNames } from "./names";

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
      <Crumbs href="#/funnels">Funnels</Crumbs>
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
