import { useEffect, useRef, useState } from "preact/hooks";
import { api, type ApiKey } from "../api";
import { ConfirmButton, CopyButton, DateText, FormError, ListTable, RowError, TableRows, focusField } from "../components/ui";
import { fmtDate } from "../format";
import { useFormErrors, useLoad, useRowError } from "../hooks";
import { useApp } from "../state";

const SCOPES: [scope: string, what: string][] = [
  ["links:read", "read domains, links and campaigns"],
  ["links:write", "create, change and delete them"],
  ["stats:read", "read stats, funnels, visitors; export clicks"],
  ["events:write", "identify visitors and set their properties"],
  ["funnels:write", "save, change and delete funnels"],
  ["admin", "everything, including API keys"],
];

const scopeId = (s: string) => s.replace(/[^a-z]/g, "-");

export function KeysPage() {
  const app = useApp();
  const list = useLoad((signal) => api<{ keys: ApiKey[] }>("GET", "/api/v1/keys", { signal }), []);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["links:read"]);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<ApiKey | undefined>(undefined);
  const rowError = useRowError();
  const errors = useFormErrors(["name", "scopes"]);
  const form = useRef<HTMLFormElement>(null);
  const tokenHeading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (created) tokenHeading.current?.focus();
  }, [created]);

  const create = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    errors.clear();
    if (scopes.length === 0) {
      errors.setField("scopes", "Choose at least one scope.");
      focusField(form.current, "scopes");
      return;
    }
    setBusy(true);
    try {
      const body: { scopes: string[]; name?: string } = { scopes };
      if (name.trim()) body.name = name.trim();
      const k = await api<ApiKey>("POST", "/api/v1/keys", { body });
      setCreated(k);
      setName("");
      const { key: _secret, ...listed } = k;
      if (list.data) list.set({ keys: [listed, ...list.data.keys] });
    } catch (err) {
      focusField(form.current, errors.show(err));
    } finally {
      setBusy(false);
    }
  };

  const rows = list.data?.keys;
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>API keys</h1>
      </div>
      <p class="muted lead">
        Keys let scripts and the CLI use the API of <strong>{app.project.name}</strong> with <code>Authorization: Bearer &lt;key&gt;</code>. A key is
        shown once, when it is created.
      </p>

      {list.error?.status !== 403 && (
        <form class="card form" ref={form} onSubmit={create} noValidate data-testid="key-form" aria-labelledby="new-key-form">
          <h2 id="new-key-form">Create a key</h2>
          <FormError message={errors.top} />
          <div class={`field${errors.byField.name ? " invalid" : ""}`}>
            <label for="key-name">Name</label>
            <input
              id="key-name"
              name="name"
              type="text"
              maxLength={128}
              placeholder="api"
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
              aria-invalid={errors.byField.name ? true : undefined}
              aria-describedby={errors.byField.name ? "key-name-error" : undefined}
              data-testid="key-name"
            />
            {errors.byField.name && (
              <p class="field-error" id="key-name-error">
                {errors.byField.name}
              </p>
            )}
          </div>
          <fieldset class="sub-fieldset" aria-describedby={errors.byField.scopes ? "key-scopes-error" : undefined}>
            <legend>Scopes</legend>
            <ul class="checks">
              {SCOPES.map(([s, what]) => (
                <li key={s}>
                  <input
                    type="checkbox"
                    id={`key-scope-${scopeId(s)}`}
                    name="scopes"
                    value={s}
                    checked={scopes.includes(s)}
                    onChange={(e) => setScopes(e.currentTarget.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
                    data-testid={`key-scope-${scopeId(s)}`}
                  />
                  <label for={`key-scope-${scopeId(s)}`}>
                    <code>{s}</code> <span class="muted">— {what}</span>
                  </label>
                </li>
              ))}
            </ul>
            {errors.byField.scopes && (
              <p class="field-error" id="key-scopes-error" data-testid="error-scopes">
                {errors.byField.scopes}
              </p>
            )}
          </fieldset>
          <div class="form-actions">
            <button type="submit" class="btn primary" disabled={busy} data-testid="key-submit">
              {busy ? "Creating…" : "Create key"}
            </button>
          </div>
        </form>
      )}
      {created?.key && (
        <section class="card new-key" aria-labelledby="new-key-heading" data-testid="new-key">
          <h2 id="new-key-heading" tabIndex={-1} ref={tokenHeading}>
            Your new key “{created.name}”
          </h2>
          <p>Copy it now and store it somewhere safe: it will not be shown again.</p>
          <div class="token-row">
            <code class="token" data-testid="new-key-token">
              {created.key}
            </code>
            <CopyButton text={created.key} what="the new API key" testid="copy-new-key" />
          </div>
          <button type="button" class="btn" onClick={() => setCreated(undefined)} data-testid="new-key-done">
            I have stored it
          </button>
        </section>
      )}

      <ListTable
        load={list}
        class="fixed responsive"
        testid="keys-table"
        cols={[undefined, "c-prefix", "c-scopes", "c-date", "c-status", "c-actions-xs"]}
        head={
          <>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Scopes</th>
            <th scope="col">Created</th>
            <th scope="col">Status</th>
          </>
        }
        actions
      >
        <TableRows rows={rows} cols={6} skeletonRows={3}>
          {(k) => (
            <tr key={k.id} data-testid="key-row" class={k.revoked_at ? "revoked" : undefined}>
              <td data-label="Name">{k.name}</td>
              <td data-label="Key">
                <code>{k.prefix}…</code>
              </td>
              <td data-label="Scopes">{k.scopes.join(", ")}</td>
              <td data-label="Created">
                <DateText iso={k.created_at} />
              </td>
              <td data-label="Status">{k.revoked_at ? `revoked ${fmtDate(k.revoked_at)}` : "active"}</td>
              <td class="row-actions">
                {!k.revoked_at && (
                  <ConfirmButton
                    label="Revoke"
                    what={`the key ${k.name} (${k.prefix}…)`}
                    testid="revoke-key"
                    onConfirm={() =>
                      rowError.run(k.id, async () => {
                        await api("DELETE", `/api/v1/keys/${k.id}`);
                        list.reload();
                      })
                    }
                  />
                )}
                <RowError text={rowError.of(k.id)} alert />
              </td>
            </tr>
          )}
        </TableRows>
      </ListTable>
      {rows && rows.length === 0 && <p class="empty-state">No API keys yet.</p>}
    </>
  );
}
