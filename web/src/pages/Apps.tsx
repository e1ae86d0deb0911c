import { useEffect, useRef, useState } from "preact/hooks";
import { api, type TrackedApp } from "../api";
import { StatsView } from "../components/StatsView";
import { ActionError, CopyButton, Crumbs, DateText, ErrorBox, Field, FormError, ListTable, RowError, TableRows, focusField } from "../components/ui";
import { fmtDateTime, fmtDuration } from "../format";
import { useActionError, useFormErrors, useLoad, useRowError } from "../hooks";
import { href } from "../router";
import { useApp } from "../state";

/** The tag a front end's pages embed: the tracker script with the app's public key. */
export const embedSnippet = (key: string) => `<script src="${window.location.origin}/tracker.js" data-key="${key}" defer></script>`;

const loadApps = (signal: AbortSignal) => api<{ apps: TrackedApp[] }>("GET", "/api/v1/apps", { signal });

/** The project's apps, for filters (an empty list when they can't be read: the filters then take an id). */
export function useApps() {
  return useLoad((signal) => loadApps(signal).catch(() => ({ apps: [] as TrackedApp[] })), []);
}

function Snippet(props: { appKey: string; testid?: string }) {
  const text = embedSnippet(props.appKey);
  return (
    <div class="token-row">
      <code class="token snippet" data-testid={props.testid}>
        {text}
      </code>
      <CopyButton text={text} what="the embed snippet" testid={props.testid ? `${props.testid}-copy` : undefined} />
    </div>
  );
}

async function setDisabled(id: number, disabled: boolean): Promise<TrackedApp> {
  return api<TrackedApp>("POST", `/api/v1/apps/${id}/${disabled ? "disable" : "enable"}`);
}

export function AppsPage() {
  const app = useApp();
  const list = useLoad(loadApps, []);
  const [name, setName] = useState("");
  const [idle, setIdle] = useState("");
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<TrackedApp | undefined>(undefined);
  const [rowBusy, setRowBusy] = useState<number | undefined>(undefined);
  const rowError = useRowError();
  const errors = useFormErrors(["name", "idle_timeout_ms"]);
  const form = useRef<HTMLFormElement>(null);
  const createdHeading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (created) createdHeading.current?.focus();
  }, [created]);

  const create = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    errors.clear();
    if (!name.trim()) {
      errors.setField("name", "Enter a name for the app.");
      focusField(form.current, "name");
      return;
    }
    const body: { name: string; idle_timeout_ms?: number } = { name: name.trim() };
    if (idle.trim()) {
      const minutes = Number(idle);
      if (!Number.isFinite(minutes) || minutes <= 0) {
        errors.setField("idle_timeout_ms", "Enter a number of minutes above 0, or leave it empty for 30 minutes.");
        focusField(form.current, "idle_timeout_ms");
        return;
      }
      body.idle_timeout_ms = Math.round(minutes * 60_000);
    }
    setBusy(true);
    try {
      const a = await api<TrackedApp>("POST", "/api/v1/apps", { body });
      if (list.data) list.set({ apps: [a, ...list.data.apps] });
      setCreated(a);
      setName("");
      setIdle("");
    } catch (err) {
      focusField(form.current, errors.show(err));
    } finally {
      setBusy(false);
    }
  };

  const toggle = async (a: TrackedApp) => {
    setRowBusy(a.id);
    await rowError.run(a.id, async () => {
      const next = await setDisabled(a.id, !a.disabled_at);
      if (list.data) list.set({ apps: list.data.apps.map((x) => (x.id === a.id ? next : x)) });
      app.flash({ kind: "ok", text: next.disabled_at ? `Disabled ${next.name}: its events are refused.` : `Enabled ${next.name} again.` });
    });
    setRowBusy(undefined);
  };

  const rows = list.data?.apps;
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Apps</h1>
        <div class="actions">
          <a class="btn" href="#/events" data-testid="apps-live-events">
            Live events
          </a>
          <a class="btn" href="#/sessions" data-testid="apps-sessions">
            Sessions
          </a>
        </div>
      </div>
      <p class="muted lead">
        An app is a front end that sends events to <strong>{app.project.name}</strong> with a public key: embed the tracker script in its pages, or
        post to <code>/api/v1/events</code>.
      </p>

      {list.error?.status !== 403 && (
        <form class="card form" ref={form} onSubmit={create} noValidate data-testid="app-form" aria-labelledby="new-app">
          <h2 id="new-app">New app</h2>
          <FormError message={errors.top} />
          <div class="grid-2">
            <Field label="Name" name="name" idPrefix="app" error={errors.byField.name}>
              {(c) => (
                <input
                  {...c}
                  type="text"
                  required
                  maxLength={128}
                  placeholder="Web shop"
                  value={name}
                  onInput={(e) => setName(e.currentTarget.value)}
                  data-testid="app-name"
                />
              )}
            </Field>
            <Field
              label="Idle time-out (minutes)"
              name="idle_timeout_ms"
              idPrefix="app"
              error={errors.byField.idle_timeout_ms}
              hint="A session stops after this long without events. Empty: 30 minutes."
            >
              {(c) => (
                <input
                  {...c}
                  type="number"
                  min={1}
                  step="any"
                  inputMode="decimal"
                  placeholder="30"
                  value={idle}
                  onInput={(e) => setIdle(e.currentTarget.value)}
                  data-testid="app-idle"
                />
              )}
            </Field>
          </div>
          <div class="form-actions">
            <button type="submit" class="btn primary" disabled={busy} data-testid="app-submit">
              {busy ? "Creating…" : "Create app"}
            </button>
          </div>
        </form>
      )}

      {created && (
        <section class="card new-key" aria-labelledby="new-app-heading" data-testid="new-app">
          <h2 id="new-app-heading" tabIndex={-1} ref={createdHeading}>
            Your new app “{created.name}”
          </h2>
          <p>
            Its key is public (it only records events). Add this tag to the pages of the front end, or send events with{" "}
            <code>{`{"key": "${created.key}", "name": "…"}`}</code>:
          </p>
          <Snippet appKey={created.key} testid="new-app-snippet" />
          <div class="form-actions">
            <a class="btn primary" href={`#/apps/${created.id}`} data-testid="new-app-open">
              Open {created.name}
            </a>
            <button type="button" class="btn" onClick={() => setCreated(undefined)} data-testid="new-app-done">
              Done
            </button>
          </div>
        </section>
      )}

      <ListTable
        load={list}
        class="fixed responsive"
        testid="apps-table"
        cols={["c-name", undefined, "c-num-w", "c-date", "c-actions-xs"]}
        head={
          <>
            <th scope="col">Name</th>
            <th scope="col">Public key</th>
            <th scope="col">Idle time-out</th>
            <th scope="col">Created</th>
          </>
        }
        actions
      >
        <TableRows rows={rows} cols={5} skeletonRows={3}>
          {(a) => (
            <tr key={a.id} data-testid="app-row" data-app-id={a.id} class={a.disabled_at ? "revoked" : undefined}>
              <td data-label="Name">
                <a href={`#/apps/${a.id}`}>{a.name}</a>
                {a.disabled_at && (
                  <span class="badge" title={`Disabled ${fmtDateTime(a.disabled_at)}`}>
                    disabled
                  </span>
                )}
              </td>
              <td data-label="Key">
                <span class="key-cell">
                  <code class="truncate" data-testid="app-key" title={a.key}>
                    {a.key}
                  </code>
                  <CopyButton text={embedSnippet(a.key)} label="Copy snippet" what={`the embed snippet of ${a.name}`} />
                </span>
              </td>
              <td data-label="Idle time-out">{fmtDuration(a.idle_timeout_ms)}</td>
              <td data-label="Created">
                <DateText iso={a.created_at} />
              </td>
              <td class="row-actions">
                <button
                  type="button"
                  class={`btn small${a.disabled_at ? "" : " danger-outline"}`}
                  disabled={rowBusy === a.id}
                  onClick={() => toggle(a)}
                  data-testid={a.disabled_at ? "app-enable" : "app-disable"}
                  aria-label={`${a.disabled_at ? "Enable" : "Disable"} ${a.name}`}
                >
                  {a.disabled_at ? "Enable" : "Disable"}
                </button>
                <RowError text={rowError.of(a.id)} alert />
              </td>
            </tr>
          )}
        </TableRows>
      </ListTable>
      {rows && rows.length === 0 && <p class="empty-state">No apps yet. Create one to record your front end's events.</p>}
    </>
  );
}

export function AppPage(props: { id: number }) {
  const app = useApp();
  const list = useLoad(loadApps, [props.id]);
  const [busy, setBusy] = useState(false);
  const action = useActionError();
  const a = list.data?.apps.find((x) => x.id === props.id);
  const missing = list.data && !a;

  const toggle = async () => {
    if (!a || busy) return;
    setBusy(true);
    await action.run(async () => {
      const next = await setDisabled(a.id, !a.disabled_at);
      if (list.data) list.set({ apps: list.data.apps.map((x) => (x.id === a.id ? next : x)) });
      app.flash({ kind: "ok", text: next.disabled_at ? `Disabled ${next.name}: its events are refused.` : `Enabled ${next.name} again.` });
    });
    setBusy(false);
  };

  return (
    <>
      <Crumbs href="#/apps">Apps</Crumbs>
      <div class="page-head">
        <h1 tabIndex={-1} data-testid="app-heading">
          {a ? a.name : list.error || missing ? "App" : <span class="skeleton title-skeleton" aria-label="Loading" />}
        </h1>
        {!list.error && !missing && (
          <div class="actions">
            <a class="btn" href={href("/events", { app: props.id })} data-testid="app-live-events">
              Live events
            </a>
            <a class="btn" href={href("/sessions", { app: props.id })} data-testid="app-sessions">
              Sessions
            </a>
            <button
              type="button"
              class={`btn${a?.disabled_at ? "" : " danger-outline"}`}
              disabled={!a || busy}
              onClick={toggle}
              data-testid={a?.disabled_at ? "app-enable" : "app-disable"}
            >
              {a?.disabled_at ? "Enable" : "Disable"}
            </button>
          </div>
        )}
      </div>
      <ActionError text={action.error} />
      {list.error && <ErrorBox error={list.error} onRetry={list.reload} />}
      {missing ? (
        <p class="alert error" role="alert" data-testid="load-error">
          There is no app {props.id} in this project. <a href="#/apps">See the apps</a>.
        </p>
      ) : (
        <>
          <dl class="facts card">
            <div>
              <dt>Public key</dt>
              <dd>{a ? <code data-testid="app-key">{a.key}</code> : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Idle time-out</dt>
              <dd>{a ? fmtDuration(a.idle_timeout_ms) : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Status</dt>
              <dd>{a ? a.disabled_at ? `Disabled ${fmtDateTime(a.disabled_at)}` : "Recording" : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Created</dt>
              <dd>{a ? fmtDateTime(a.created_at) : <span class="skeleton" />}</dd>
            </div>
          </dl>
          <section class="card embed" aria-labelledby="embed-heading">
            <h2 id="embed-heading">Embed</h2>
            {a ? <Snippet appKey={a.key} testid="app-snippet" /> : <span class="skeleton snippet-skeleton" />}
          </section>
          <StatsView endpoint={`/api/v1/apps/${props.id}/stats`} events testid="app-stats" />
        </>
      )}
    </>
  );
}
