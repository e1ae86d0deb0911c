import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Domain } from "../api";
import { ConfirmButton, DateText, Field, FormError, ListTable, RowError, TableRows, focusField } from "../components/ui";
import { toApiError, useFormErrors, useLoad, useRowError } from "../hooks";
import { href } from "../router";
import { useApp } from "../state";

export function DomainsPage() {
  const app = useApp();
  const list = useLoad((signal) => api<{ domains: Domain[] }>("GET", "/api/v1/domains", { signal }), []);
  const [hostname, setHostname] = useState("");
  const [fallback, setFallback] = useState("");
  const [busy, setBusy] = useState(false);
  const rowError = useRowError();
  const [editing, setEditing] = useState<number | undefined>(undefined);
  const errors = useFormErrors(["hostname", "fallback_url"]);
  const form = useRef<HTMLFormElement>(null);

  const create = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    errors.clear();
    if (!hostname.trim()) {
      errors.setField("hostname", "Enter a host name such as go.example.com.");
      focusField(form.current, "hostname");
      return;
    }
    setBusy(true);
    try {
      const d = await api<Domain>("POST", "/api/v1/domains", { body: { hostname: hostname.trim(), fallback_url: fallback.trim() || null } });
      if (list.data) list.set({ domains: [...list.data.domains, d] });
      setHostname("");
      setFallback("");
      app.flash({ kind: "ok", text: `Registered ${d.hostname}. Point its DNS at this server to serve links on it.` });
    } catch (err) {
      focusField(form.current, errors.show(err));
    } finally {
      setBusy(false);
    }
  };

  const replace = (d: Domain) => list.data && list.set({ domains: list.data.domains.map((x) => (x.id === d.id ? d : x)) });
  const rows = list.data?.domains;

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Domains</h1>
      </div>
      <p class="muted lead">Host names your links are served on. A fallback URL receives the domain's root and unknown or expired slugs.</p>
      <form class="card form" ref={form} onSubmit={create} noValidate data-testid="domain-form" aria-labelledby="new-domain">
        <h2 id="new-domain">Register a domain</h2>
        <FormError message={errors.top} />
        <div class="grid-2">
          <Field label="Host name" name="hostname" idPrefix="domain" error={errors.byField.hostname} hint="Like go.example.com: no scheme, no path.">
            {(c) => (
              <input
                {...c}
                type="text"
                required
                autocomplete="off"
                spellcheck={false}
                value={hostname}
                onInput={(e) => setHostname(e.currentTarget.value)}
                data-testid="domain-hostname"
              />
            )}
          </Field>
          <Field label="Fallback URL" name="fallback_url" idPrefix="domain" error={errors.byField.fallback_url} hint="Optional.">
            {(c) => (
              <input
                {...c}
                type="url"
                inputMode="url"
                spellcheck={false}
                placeholder="https://example.com/"
                value={fallback}
                onInput={(e) => setFallback(e.currentTarget.value)}
                data-testid="domain-fallback"
              />
            )}
          </Field>
        </div>
        <div class="form-actions">
          <button type="submit" class="btn primary" disabled={busy} data-testid="domain-submit">
            {busy ? "Registering…" : "Register domain"}
          </button>
        </div>
      </form>
      <ListTable
        load={list}
        class="fixed responsive"
        testid="domains-table"
        cols={["c-host", undefined, "c-date", "c-actions-s"]}
        head={
          <>
            <th scope="col">Host name</th>
            <th scope="col">Fallback URL</th>
            <th scope="col">Created</th>
          </>
        }
        actions
      >
        <TableRows rows={rows} cols={4} skeletonRows={3}>
          {(d) => (
            <tr key={d.id} data-testid="domain-row" data-hostname={d.hostname}>
              <td data-label="Host name">
                <a href={href("/links", { domain: d.hostname })} title={`Links on ${d.hostname}`}>
                  {d.hostname}
                </a>
              </td>
              <td data-label="Fallback URL" class="clip">
                {editing === d.id ? (
                  <FallbackEditor
                    domain={d}
                    onDone={(saved) => {
                      if (saved) replace(saved);
                      setEditing(undefined);
                    }}
                  />
                ) : (
                  d.fallback_url || <span class="muted">none (404)</span>
                )}
              </td>
              <td data-label="Created">
                <DateText iso={d.created_at} />
              </td>
              <td class="row-actions">
                {editing !== d.id && (
                  <button
                    type="button"
                    class="btn small"
                    onClick={() => setEditing(d.id)}
                    aria-label={`Change the fallback of ${d.hostname}`}
                    data-testid="domain-edit"
                  >
                    Edit fallback
                  </button>
                )}
                <ConfirmButton
                  label="Delete"
                  what={d.hostname}
                  testid="delete-domain"
                  onConfirm={() =>
                    rowError.run(d.id, async () => {
                      await api("DELETE", `/api/v1/domains/${d.id}`);
                      if (list.data) list.set({ domains: list.data.domains.filter((x) => x.id !== d.id) });
                      app.flash({ kind: "ok", text: `Deleted ${d.hostname}.` });
                    })
                  }
                />
                <RowError text={rowError.of(d.id)} alert testid="domain-row-error" />
              </td>
            </tr>
          )}
        </TableRows>
      </ListTable>
      {rows && rows.length === 0 && <p class="empty-state">No domains yet. Register the first one below.</p>}
    </>
  );
}

function FallbackEditor(props: { domain: Domain; onDone: (saved?: Domain) => void }) {
  const [value, setValue] = useState(props.domain.fallback_url ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const id = `fallback-${props.domain.id}`;
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <form
      class="inline-form"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          props.onDone(await api<Domain>("PATCH", `/api/v1/domains/${props.domain.id}`, { body: { fallback_url: value.trim() || null } }));
        } catch (err) {
          setError(toApiError(err).problem.detail);
          setBusy(false);
        }
      }}
    >
      <label for={id} class="sr-only">
        Fallback URL of {props.domain.hostname}
      </label>
      <input
        id={id}
        type="url"
        value={value}
        ref={input}
        placeholder="none"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onInput={(e) => setValue(e.currentTarget.value)}
        onKeyDown={(e) => e.key === "Escape" && props.onDone()}
        data-testid="domain-edit-fallback"
      />
      <button type="submit" class="btn small primary" disabled={busy} data-testid="domain-edit-save">
        Save
      </button>
      <button type="button" class="btn small" onClick={() => props.onDone()}>
        Cancel
      </button>
      {error && (
        <p class="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
