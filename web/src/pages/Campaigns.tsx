import { useRef, useState } from "preact/hooks";
import { api, type Campaign, type Utm } from "../api";
import { StatsView } from "../components/StatsView";
import { ActionError, ConfirmButton, Crumbs, DateText, ErrorBox, Field, FormError, ListTable, TableRows, focusField } from "../components/ui";
import { fmtDateTime } from "../format";
import { useActionError, useFormErrors, useLoad } from "../hooks";
import { navigate } from "../router";
import { useApp } from "../state";
import { LinksBrowser } from "./Links";

const UTM_KEYS = ["source", "medium", "campaign", "term", "content"] as const;

const utmText = (u: Utm) =>
  UTM_KEYS.filter((k) => u[k])
    .map((k) => `${k}=${u[k]}`)
    .join(", ");

export function CampaignsPage() {
  const app = useApp();
  const list = useLoad((signal) => api<{ campaigns: Campaign[] }>("GET", "/api/v1/campaigns", { signal }), []);
  const [name, setName] = useState("");
  const [notes, setNotes] = useState("");
  const [utm, setUtm] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors(["name", "utm", "notes"]);
  const form = useRef<HTMLFormElement>(null);

  const create = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    errors.clear();
    if (!name.trim()) {
      errors.setField("name", "Enter a name for the campaign.");
      focusField(form.current, "name");
      return;
    }
    const body: { name: string; notes?: string; utm?: Utm } = { name: name.trim() };
    if (notes.trim()) body.notes = notes.trim();
    const u: Utm = {};
    for (const k of UTM_KEYS) if (utm[k]?.trim()) u[k] = utm[k]!.trim();
    if (Object.keys(u).length) body.utm = u;
    setBusy(true);
    try {
      const c = await api<Campaign>("POST", "/api/v1/campaigns", { body });
      if (list.data) list.set({ campaigns: [c, ...list.data.campaigns] });
      setName("");
      setNotes("");
      setUtm({});
      app.flash({ kind: "ok", text: `Created the campaign ${c.name}.` });
    } catch (err) {
      focusField(form.current, errors.show(err));
    } finally {
      setBusy(false);
    }
  };

  const rows = list.data?.campaigns;
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Campaigns</h1>
      </div>
      <form class="card form" ref={form} onSubmit={create} noValidate data-testid="campaign-form" aria-labelledby="new-campaign">
        <h2 id="new-campaign">New campaign</h2>
        <FormError message={errors.top} />
        <Field label="Name" name="name" idPrefix="campaign" error={errors.byField.name}>
          {(c) => (
            <input
              {...c}
              type="text"
              required
              maxLength={128}
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
              data-testid="campaign-name"
            />
          )}
        </Field>
        <fieldset class="sub-fieldset">
          <legend>UTM parameters shared by its links</legend>
          {errors.byField.utm && <p class="field-error">{errors.byField.utm}</p>}
          <div class="grid-5">
            {UTM_KEYS.map((k) => (
              <div class="field" key={k}>
                <label for={`campaign-utm-${k}`}>{k}</label>
                <input
                  id={`campaign-utm-${k}`}
                  name={`utm.${k}`}
                  type="text"
                  maxLength={256}
                  value={utm[k] ?? ""}
                  onInput={(e) => setUtm({ ...utm, [k]: e.currentTarget.value })}
                  data-testid={`campaign-utm-${k}`}
                />
              </div>
            ))}
          </div>
        </fieldset>
        <Field label="Notes" name="notes" idPrefix="campaign" error={errors.byField.notes}>
          {(c) => (
            <textarea {...c} rows={2} maxLength={4096} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} data-testid="campaign-notes" />
          )}
        </Field>
        <div class="form-actions">
          <button type="submit" class="btn primary" disabled={busy} data-testid="campaign-submit">
            {busy ? "Creating…" : "Create campaign"}
          </button>
        </div>
      </form>
      <ListTable
        load={list}
        class="fixed responsive"
        testid="campaigns-table"
        cols={["c-name", "c-utm", undefined, "c-date"]}
        head={
          <>
            <th scope="col">Name</th>
            <th scope="col">UTM parameters</th>
            <th scope="col">Notes</th>
            <th scope="col">Created</th>
          </>
        }
      >
        <TableRows rows={rows} cols={4} skeletonRows={4}>
          {(c) => (
            <tr key={c.id} data-testid="campaign-row">
              <td data-label="Name">
                <a href={`#/campaigns/${c.id}`}>{c.name}</a>
              </td>
              <td data-label="UTM">{utmText(c.utm) || <span class="muted">–</span>}</td>
              <td data-label="Notes" class="clip">
                {c.notes || <span class="muted">–</span>}
              </td>
              <td data-label="Created">
                <DateText iso={c.created_at} />
              </td>
            </tr>
          )}
        </TableRows>
      </ListTable>
      {rows && rows.length === 0 && <p class="empty-state">No campaigns yet. A campaign groups links and shares its UTM parameters with them.</p>}
    </>
  );
}

export function CampaignPage(props: { id: number }) {
  const app = useApp();
  const campaign = useLoad((signal) => api<Campaign>("GET", `/api/v1/campaigns/${props.id}`, { signal }), [props.id]);
  const deletion = useActionError();
  const c = campaign.data;
  return (
    <>
      <Crumbs href="#/campaigns">Campaigns</Crumbs>
      <div class="page-head">
        <h1 tabIndex={-1} data-testid="campaign-heading">
          {c ? c.name : campaign.error ? "Campaign" : <span class="skeleton title-skeleton" aria-label="Loading" />}
        </h1>
        {!campaign.error && (
          <div class="actions">
            <a class="btn primary" href={`#/links/new?campaign_id=${props.id}`} data-testid="campaign-new-link">
              New link in this campaign
            </a>
            <ConfirmButton
              label="Delete"
              what={`the campaign ${c?.name ?? props.id} (its links stay)`}
              testid="delete-campaign"
              onConfirm={() =>
                deletion.run(async () => {
                  await api("DELETE", `/api/v1/campaigns/${props.id}`);
                  app.flash({ kind: "ok", text: `Deleted the campaign ${c?.name ?? props.id}; its links stay.`, path: "/campaigns" });
                  navigate("/campaigns");
                })
              }
            />
          </div>
        )}
      </div>
      <ActionError text={deletion.error} />
      {campaign.error && <ErrorBox error={campaign.error} onRetry={campaign.reload} />}
      <dl class="facts card">
        <div>
          <dt>UTM parameters</dt>
          <dd>{c ? utmText(c.utm) || <span class="muted">none</span> : <span class="skeleton" />}</dd>
        </div>
        <div>
          <dt>Notes</dt>
          <dd>{c ? c.notes || <span class="muted">–</span> : <span class="skeleton" />}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{c ? fmtDateTime(c.created_at) : <span class="skeleton" />}</dd>
        </div>
      </dl>

      <StatsView endpoint={`/api/v1/campaigns/${props.id}/stats`} platforms />

      <section aria-labelledby="campaign-links">
        <h2 id="campaign-links">Links of this campaign</h2>
        <LinksBrowser query={{ campaign_id: props.id }} emptyText="No links in this campaign yet." />
      </section>
    </>
  );
}
