import { api, type Campaign, type Link } from "../api";
import { QrPanel } from "../components/Qr";
import { StatsView } from "../components/StatsView";
import { ActionError, ConfirmButton, CopyButton, Crumbs, ErrorBox, Tags } from "../components/ui";
import { fmtDateTime, fmtNumber } from "../format";
import { useActionError, useLoad } from "../hooks";
import { href, navigate } from "../router";
import { useApp } from "../state";

export function LinkPage(props: { id: number }) {
  const app = useApp();
  const link = useLoad((signal) => api<Link>("GET", `/api/v1/links/${props.id}`, { signal }), [props.id]);
  const campaignId = link.data?.campaign_id;
  const campaign = useLoad(
    (signal) => (campaignId ? api<Campaign>("GET", `/api/v1/campaigns/${campaignId}`, { signal }) : Promise.resolve(undefined)),
    [campaignId],
  );
  const deletion = useActionError();
  const l = link.data;

  return (
    <>
      <Crumbs href="#/links">Links</Crumbs>
      <div class="page-head">
        <h1 tabIndex={-1} data-testid="link-heading">
          {l ? `${l.domain}/${l.slug}` : link.error ? "Link" : <span class="skeleton title-skeleton" aria-label="Loading" />}
        </h1>
        {!link.error && (
          <div class="actions">
            <a class="btn" href={`#/links/${props.id}/edit`} data-testid="edit-link">
              Edit
            </a>
            <ConfirmButton
              label="Delete"
              what={l ? `${l.domain}/${l.slug}` : `link ${props.id}`}
              testid="delete-link"
              onConfirm={() =>
                deletion.run(async () => {
                  await api("DELETE", `/api/v1/links/${props.id}`);
                  app.flash({ kind: "ok", text: `Deleted ${l ? `${l.domain}/${l.slug}` : "the link"}.`, path: "/links" });
                  navigate("/links");
                })
              }
            />
          </div>
        )}
      </div>
      <ActionError text={deletion.error} />
      {link.error && <ErrorBox error={link.error} onRetry={link.reload} />}

      <div class="link-summary card">
        <dl class="facts">
          <div>
            <dt>Short URL</dt>
            <dd class="short">
              {l ? (
                <>
                  <a href={l.short_url} target="_blank" rel="noopener noreferrer" data-testid="short-url">
                    {l.short_url}
                  </a>
                  <CopyButton text={l.short_url} testid="copy-short-url" />
                </>
              ) : (
                <span class="skeleton" />
              )}
            </dd>
          </div>
          <div>
            <dt>Target</dt>
            <dd class="target">
              {l ? (
                <a href={l.target} target="_blank" rel="noopener noreferrer" class="break">
                  {l.target}
                </a>
              ) : (
                <span class="skeleton" />
              )}
            </dd>
          </div>
          <div>
            <dt>Title</dt>
            <dd>{l ? l.title || <span class="muted">–</span> : <span class="skeleton" />}</dd>
          </div>
          <div>
            <dt>Tags</dt>
            <dd>{l ? <Tags tags={l.tags} hrefFor={(t) => href("/links", { tag: t })} /> : <span class="skeleton" />}</dd>
          </div>
          <div>
            <dt>Campaign</dt>
            <dd>
              {l ? (
                l.campaign_id ? (
                  <a href={`#/campaigns/${l.campaign_id}`}>{campaign.data?.name ?? `Campaign ${l.campaign_id}`}</a>
                ) : (
                  <span class="muted">–</span>
                )
              ) : (
                <span class="skeleton" />
              )}
            </dd>
          </div>
          <div>
            <dt>Redirect</dt>
            <dd>{l ? l.redirect_status : <span class="skeleton" />}</dd>
          </div>
          <div>
            <dt>Limits</dt>
            <dd>
              {l ? (
                [l.expires_at ? `expires ${fmtDateTime(l.expires_at)}` : "", l.max_clicks ? `${fmtNumber(l.max_clicks)} clicks at most` : ""]
                  .filter(Boolean)
                  .join(", ") || <span class="muted">none</span>
              ) : (
                <span class="skeleton" />
              )}
            </dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{l ? fmtDateTime(l.created_at) : <span class="skeleton" />}</dd>
          </div>
        </dl>
        <div class="link-qr">
          <h2 class="small-heading">QR code</h2>
          {l ? <QrPanel link={l} /> : <span class="skeleton qr-skeleton" aria-hidden="true" />}
        </div>
      </div>

      <StatsView endpoint={`/api/v1/links/${props.id}/stats`} />
    </>
  );
}
