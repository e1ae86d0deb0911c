import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Campaign, type Domain, type Link, type LinkInput, type Utm } from "../api";
import { ErrorBox, Field, FormError, focusField } from "../components/ui";
import { fromLocalInput, toLocalInput } from "../format";
import { useFormErrors, useLoad } from "../hooks";
import { currentRoute, navigate } from "../router";
import { useApp } from "../state";

const FIELDS = [
  "domain",
  "slug",
  "target",
  "title",
  "tags",
  "campaign_id",
  "redirect_status",
  "expires_at",
  "max_clicks",
  "forward_query",
  "utm",
  "notes",
];
const UTM_KEYS = ["source", "medium", "campaign", "term", "content"] as const;

interface Draft {
  domain: string;
  slug: string;
  target: string;
  title: string;
  tags: string;
  campaign_id: string;
  redirect_status: string;
  expires_at: string;
  max_clicks: string;
  forward_query: boolean;
  utm: Record<(typeof UTM_KEYS)[number], string>;
  notes: string;
}

function toDraft(l?: Link, campaignId?: string): Draft {
  return {
    domain: l?.domain ?? "",
    slug: l?.slug ?? "",
    target: l?.target ?? "",
    title: l?.title ?? "",
    tags: l?.tags.join(", ") ?? "",
    campaign_id: l?.campaign_id ? String(l.campaign_id) : (campaignId ?? ""),
    redirect_status: String(l?.redirect_status ?? 302),
    expires_at: toLocalInput(l?.expires_at),
    max_clicks: l?.max_clicks ? String(l.max_clicks) : "",
    forward_query: l?.forward_query ?? false,
    utm: Object.fromEntries(UTM_KEYS.map((k) => [k, l?.utm?.[k] ?? ""])) as Draft["utm"],
    notes: l?.notes ?? "",
  };
}

/** Every field, empty ones as null (what an edit compares). */
function toFullInput(d: Draft): Required<LinkInput> {
  const utm: Utm = {};
  for (const k of UTM_KEYS) if (d.utm[k].trim()) utm[k] = d.utm[k].trim();
  return {
    domain: d.domain.trim(),
    slug: d.slug.trim(),
    target: d.target.trim(),
    title: d.title.trim() || null,
    tags: [
      ...new Set(
        d.tags
          .split(",")
          .map((t) => t.trim())
          .filter(Boolean),
      ),
    ],
    campaign_id: d.campaign_id ? Number(d.campaign_id) : null,
    redirect_status: Number(d.redirect_status),
    expires_at: fromLocalInput(d.expires_at),
    max_clicks: d.max_clicks.trim() ? Number(d.max_clicks.trim()) : null,
    forward_query: d.forward_query,
    utm,
    notes: d.notes.trim() || null,
  };
}

/** A new link: only what was filled in (the API generates the slug when it is absent). */
function createBody(d: Draft): LinkInput {
  const full = toFullInput(d);
  const out: LinkInput = {};
  for (const [k, v] of Object.entries(full) as [keyof LinkInput, unknown][]) {
    if (v === null || v === "" || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (k === "utm" && Object.keys(v as object).length === 0) continue;
    (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** An edit: the fields that changed. */
function patchBody(original: Link, d: Draft): LinkInput {
  const before = toFullInput(toDraft(original));
  const after = toFullInput(d);
  const out: LinkInput = {};
  for (const k of Object.keys(after) as (keyof LinkInput)[]) {
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) (out as Record<string, unknown>)[k] = after[k];
  }
  return out;
}

export function LinkFormPage(props: { id?: number }) {
  const app = useApp();
  const editing = props.id !== undefined;
  const presetCampaign = currentRoute().query.get("campaign_id") ?? undefined;
  const link = useLoad((signal) => (editing ? api<Link>("GET", `/api/v1/links/${props.id}`, { signal }) : Promise.resolve(undefined)), [props.id]);
  const domains = useLoad((signal) => api<{ domains: Domain[] }>("GET", "/api/v1/domains", { signal }), []);
  const campaigns = useLoad((signal) => api<{ campaigns: Campaign[] }>("GET", "/api/v1/campaigns", { signal }), []);
  const [draft, setDraft] = useState<Draft>(() => toDraft(undefined, presetCampaign));
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors(FIELDS);
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => {
    if (link.data) setDraft(toDraft(link.data));
  }, [link.data]);

  // a single domain is the obvious choice for a new link (unless the field was used before the list arrived)
  const domainTouched = useRef(false);
  useEffect(() => {
    const ds = domains.data?.domains;
    if (!editing && ds?.length === 1 && !domainTouched.current) setDraft((d) => (d.domain ? d : { ...d, domain: ds[0]!.hostname }));
  }, [domains.data, editing]);

  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const setUtm = (k: (typeof UTM_KEYS)[number], v: string) => setDraft((d) => ({ ...d, utm: { ...d.utm, [k]: v } }));

  const backTo = editing ? `/links/${props.id}` : presetCampaign ? `/campaigns/${presetCampaign}` : "/links";

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    errors.clear();
    const missing = !draft.domain.trim() ? "domain" : !draft.target.trim() ? "target" : undefined;
    if (missing) {
      errors.setField(
        missing,
        missing === "domain" ? "Enter the domain of the link, e.g. one registered on the Domains page." : "Enter the target URL.",
      );
      focusField(form.current, missing);
      return;
    }
    const mc = draft.max_clicks.trim();
    if (mc && !(Number.isInteger(Number(mc)) && Number(mc) >= 1)) {
      errors.setField("max_clicks", "max_clicks must be a whole number of at least 1.");
      focusField(form.current, "max_clicks");
      return;
    }
    if (draft.expires_at && !fromLocalInput(draft.expires_at)) {
      errors.setField("expires_at", "This is not a valid date and time.");
      focusField(form.current, "expires_at");
      return;
    }
    setBusy(true);
    try {
      if (editing) {
        const body = patchBody(link.data!, draft);
        if (Object.keys(body).length === 0) {
          navigate(backTo);
          return;
        }
        const saved = await api<Link>("PATCH", `/api/v1/links/${props.id}`, { body });
        app.flash({ kind: "ok", text: `Saved ${saved.short_url}.`, path: backTo });
        navigate(backTo);
      } else {
        const saved = await api<Link>("POST", "/api/v1/links", { body: createBody(draft) });
        app.flash({ kind: "ok", text: `Created ${saved.short_url}`, copy: saved.short_url, path: backTo });
        navigate(backTo);
      }
    } catch (err) {
      focusField(form.current, errors.show(err));
    } finally {
      setBusy(false);
    }
  };

  const title = editing ? "Edit link" : "New link";
  if (editing && link.error) {
    return (
      <>
        <h1 tabIndex={-1}>{title}</h1>
        <ErrorBox error={link.error} onRetry={link.reload} />
      </>
    );
  }
  const loadingLink = editing && !link.data;
  const noDomains = domains.data && domains.data.domains.length === 0;

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>{editing && link.data ? `Edit ${link.data.domain}/${link.data.slug}` : title}</h1>
      </div>
      <form class="card form" ref={form} onSubmit={submit} noValidate data-testid="link-form" aria-busy={loadingLink}>
        <FormError message={errors.top} />
        {noDomains && (
          <p class="alert info">
            Links live on a domain of this project, and it has none yet. <a href="#/domains">Register a domain</a> first.
          </p>
        )}
        <fieldset disabled={loadingLink}>
          <div class="grid-2">
            <Field label="Domain" name="domain" idPrefix="link" error={errors.byField.domain} hint="A domain registered in this project.">
              {(c) => (
                <input
                  {...c}
                  type="text"
                  list="link-domains"
                  required
                  autocomplete="off"
                  spellcheck={false}
                  value={draft.domain}
                  onInput={(e) => {
                    domainTouched.current = true;
                    set("domain", e.currentTarget.value);
                  }}
                  data-testid="link-domain"
                />
              )}
            </Field>
            <datalist id="link-domains">
              {domains.data?.domains.map((d) => (
                <option key={d.id} value={d.hostname} />
              ))}
            </datalist>
            <Field
              label="Slug"
              name="slug"
              idPrefix="link"
              error={errors.byField.slug}
              hint={editing ? undefined : "Optional: 7 characters are generated when empty."}
            >
              {(c) => (
                <input
                  {...c}
                  type="text"
                  autocomplete="off"
                  spellcheck={false}
                  maxLength={64}
                  value={draft.slug}
                  onInput={(e) => set("slug", e.currentTarget.value)}
                  data-testid="link-slug"
                />
              )}
            </Field>
          </div>
          <Field label="Target URL" name="target" idPrefix="link" error={errors.byField.target} hint="An absolute http(s) URL.">
            {(c) => (
              <input
                {...c}
                type="url"
                required
                inputMode="url"
                spellcheck={false}
                placeholder="https://example.com/page"
                value={draft.target}
                onInput={(e) => set("target", e.currentTarget.value)}
                data-testid="link-target"
              />
            )}
          </Field>
          <div class="grid-2">
            <Field label="Title" name="title" idPrefix="link" error={errors.byField.title}>
              {(c) => (
                <input
                  {...c}
                  type="text"
                  maxLength={512}
                  value={draft.title}
                  onInput={(e) => set("title", e.currentTarget.value)}
                  data-testid="link-title"
                />
              )}
            </Field>
            <Field label="Tags" name="tags" idPrefix="link" error={errors.byField.tags} hint="Separated by commas.">
              {(c) => <input {...c} type="text" value={draft.tags} onInput={(e) => set("tags", e.currentTarget.value)} data-testid="link-tags" />}
            </Field>
          </div>
          <div class="grid-3">
            <Field label="Campaign" name="campaign_id" idPrefix="link" error={errors.byField.campaign_id}>
              {(c) => (
                <select {...c} value={draft.campaign_id} onChange={(e) => set("campaign_id", e.currentTarget.value)} data-testid="link-campaign">
                  <option value="">None</option>
                  {campaigns.data?.campaigns.map((cp) => (
                    <option key={cp.id} value={String(cp.id)}>
                      {cp.name}
                    </option>
                  ))}
                  {draft.campaign_id && !campaigns.data?.campaigns.some((cp) => String(cp.id) === draft.campaign_id) && (
                    <option value={draft.campaign_id}>Campaign {draft.campaign_id}</option>
                  )}
                </select>
              )}
            </Field>
            <Field label="Redirect status" name="redirect_status" idPrefix="link" error={errors.byField.redirect_status}>
              {(c) => (
                <select
                  {...c}
                  value={draft.redirect_status}
                  onChange={(e) => set("redirect_status", e.currentTarget.value)}
                  data-testid="link-redirect-status"
                >
                  <option value="302">302 Found (default)</option>
                  <option value="301">301 Moved permanently</option>
                  <option value="307">307 Temporary redirect</option>
                  <option value="308">308 Permanent redirect</option>
                </select>
              )}
            </Field>
            <Field label="Forward query string" name="forward_query" idPrefix="link" error={errors.byField.forward_query} class="check">
              {(c) => (
                <input
                  {...c}
                  type="checkbox"
                  checked={draft.forward_query}
                  onChange={(e) => set("forward_query", e.currentTarget.checked)}
                  data-testid="link-forward-query"
                />
              )}
            </Field>
          </div>
          <div class="grid-2">
            <Field
              label="Expires at"
              name="expires_at"
              idPrefix="link"
              error={errors.byField.expires_at}
              hint="Your local time. Afterwards the link answers 410."
            >
              {(c) => (
                <input
                  {...c}
                  type="datetime-local"
                  value={draft.expires_at}
                  onInput={(e) => set("expires_at", e.currentTarget.value)}
                  data-testid="link-expires-at"
                />
              )}
            </Field>
            <Field
              label="Maximum clicks"
              name="max_clicks"
              idPrefix="link"
              error={errors.byField.max_clicks}
              hint="Human clicks; then the link answers 410."
            >
              {(c) => (
                <input
                  {...c}
                  type="number"
                  min={1}
                  step={1}
                  inputMode="numeric"
                  value={draft.max_clicks}
                  onInput={(e) => set("max_clicks", e.currentTarget.value)}
                  data-testid="link-max-clicks"
                />
              )}
            </Field>
          </div>
          <fieldset class="sub-fieldset">
            <legend>UTM parameters</legend>
            {errors.byField.utm && (
              <p class="field-error" data-testid="error-utm">
                {errors.byField.utm}
              </p>
            )}
            <div class="grid-5">
              {UTM_KEYS.map((k) => (
                <div class="field" key={k}>
                  <label for={`link-utm-${k}`}>{k}</label>
                  <input
                    id={`link-utm-${k}`}
                    name={`utm.${k}`}
                    type="text"
                    maxLength={256}
                    value={draft.utm[k]}
                    onInput={(e) => setUtm(k, e.currentTarget.value)}
                    data-testid={`link-utm-${k}`}
                  />
                </div>
              ))}
            </div>
          </fieldset>
          <Field label="Notes" name="notes" idPrefix="link" error={errors.byField.notes}>
            {(c) => (
              <textarea
                {...c}
                rows={3}
                maxLength={4096}
                value={draft.notes}
                onInput={(e) => set("notes", e.currentTarget.value)}
                data-testid="link-notes"
              />
            )}
          </Field>
        </fieldset>
        <div class="form-actions">
          <button type="submit" class="btn primary" disabled={busy || loadingLink} data-testid="link-submit">
            {busy ? "Saving…" : editing ? "Save changes" : "Create link"}
          </button>
          <a class="btn plain" href={`#${backTo}`}>
            Cancel
          </a>
        </div>
      </form>
    </>
  );
}
