import { Fragment } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Domain, type Link, type Query } from "../api";
import { QrPanel } from "../components/Qr";
import { ConfirmButton, CopyButton, DateText, ListTable, RowError, TableRows, Tags } from "../components/ui";
import { fmtNumber } from "../format";
import { type Loaded, useLoad, useRowError } from "../hooks";
import { href, navigate } from "../router";
import { useApp } from "../state";

export const PAGE_SIZE = 50;

export function LinksPage(props: { query: URLSearchParams }) {
  const q = props.query.get("q") ?? "";
  const domain = props.query.get("domain") ?? "";
  const tag = props.query.get("tag") ?? "";
  const sort = props.query.get("sort") ?? "";
  const filtered = Boolean(q || domain || tag);
  const domains = useLoad((signal) => api<{ domains: Domain[] }>("GET", "/api/v1/domains", { signal }), []);

  const [draft, setDraft] = useState({ q, domain, tag, sort });
  useEffect(() => setDraft({ q, domain, tag, sort }), [q, domain, tag, sort]);
  const apply = (d: typeof draft) => navigate("/links", { q: d.q.trim(), domain: d.domain, tag: d.tag.trim(), sort: d.sort });

  const hostnames = domains.data?.domains.map((d) => d.hostname) ?? [];
  if (domain && !hostnames.includes(domain)) hostnames.push(domain);

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Links</h1>
        <div class="actions">
          <a class="btn primary" href="#/links/new" data-testid="new-link">
            New link
          </a>
          <a class="btn" href="#/links/import" data-testid="import-links">
            Import CSV
          </a>
        </div>
      </div>

      <form
        class="filters"
        role="search"
        aria-label="Filter links"
        data-testid="links-filter"
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <div class="field grow">
          <label for="links-q">Search</label>
          <input
            id="links-q"
            type="search"
            name="q"
            placeholder="Slug, target or title"
            value={draft.q}
            onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })}
            data-testid="links-search"
          />
        </div>
        <div class="field">
          <label for="links-domain">Domain</label>
          <select
            id="links-domain"
            name="domain"
            value={draft.domain}
            onChange={(e) => {
              const next = { ...draft, domain: e.currentTarget.value };
              setDraft(next);
              apply(next);
            }}
            data-testid="links-domain-filter"
          >
            <option value="">All domains</option>
            {hostnames.map((h) => (
              <option key={h} value={h}>
                {h}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="links-tag">Tag</label>
          <input
            id="links-tag"
            type="text"
            name="tag"
            value={draft.tag}
            onInput={(e) => setDraft({ ...draft, tag: e.currentTarget.value })}
            data-testid="links-tag-filter"
          />
        </div>
        <div class="field">
          <label for="links-sort">Order</label>
          <select
            id="links-sort"
            name="sort"
            value={draft.sort}
            onChange={(e) => {
              const next = { ...draft, sort: e.currentTarget.value };
              setDraft(next);
              apply(next);
            }}
            data-testid="links-sort"
          >
            <option value="">Newest first</option>
            <option value="created">Oldest first</option>
            <option value="-clicks">Most clicks</option>
            <option value="clicks">Fewest clicks</option>
            <option value="slug">Slug A–Z</option>
            <option value="-slug">Slug Z–A</option>
          </select>
        </div>
        <div class="field actions">
          <button type="submit" class="btn" data-testid="links-filter-submit">
            Search
          </button>
          {filtered && (
            <a class="btn plain" href="#/links" data-testid="links-filter-clear">
              Clear
            </a>
          )}
        </div>
      </form>

      <LinksBrowser key={`${q}\u0000${domain}\u0000${tag}\u0000${sort}`} query={{ q, domain, tag, sort }} filtered={filtered} />
    </>
  );
}

/** A page of links (newest first) with cursor paging: Previous goes back through the cursors seen. */
export function LinksBrowser(props: { query: Query; filtered?: boolean; emptyText?: string }) {
  const app = useApp();
  const [cursors, setCursors] = useState<string[]>([""]);
  const cursor = cursors[cursors.length - 1]!;
  const list = useLoad(
    (signal) =>
      api<{ links: Link[]; next_cursor: string | null }>("GET", "/api/v1/links", {
        signal,
        query: { ...props.query, limit: PAGE_SIZE, cursor: cursor || undefined },
      }),
    [cursor],
  );
  const top = useRef<HTMLDivElement>(null);
  const page = cursors.length;

  const go = (next: string[]) => {
    setCursors(next);
    // back to the first row when the list's top has scrolled away
    if (top.current && top.current.getBoundingClientRect().top < 0) top.current.scrollIntoView({ block: "start" });
  };

  const removed = (l: Link) => {
    if (list.data) list.set({ ...list.data, links: list.data.links.filter((x) => x.id !== l.id) });
    app.flash({ kind: "ok", text: `Deleted ${l.domain}/${l.slug}.` });
  };

  const links = list.data?.links;
  return (
    <div class="links-browser" ref={top}>
      <LinksTable links={links} load={list} onDeleted={removed} />
      {links && links.length === 0 && !list.loading && (
        <p class="empty-state" data-testid="links-empty">
          {props.emptyText ??
            (props.filtered || page > 1 ? (
              "No links match these filters."
            ) : (
              <>
                No links yet. <a href="#/links/new">Create a link</a> or <a href="#/links/import">import a CSV file</a>.
              </>
            ))}
        </p>
      )}
      <nav class="pager" aria-label="Pages of links">
        <button type="button" class="btn" disabled={page === 1 || list.loading} onClick={() => go(cursors.slice(0, -1))} data-testid="links-prev">
          Previous
        </button>
        <span class="muted" aria-live="polite">
          Page {fmtNumber(page)}
        </span>
        <button
          type="button"
          class="btn"
          disabled={!list.data?.next_cursor || list.loading}
          onClick={() => list.data?.next_cursor && go([...cursors, list.data.next_cursor])}
          data-testid="links-next"
        >
          Next
        </button>
      </nav>
    </div>
  );
}

export function LinksTable(props: {
  links: Link[] | undefined;
  load: Pick<Loaded<unknown>, "error" | "loading" | "reload">;
  onDeleted: (l: Link) => void;
}) {
  const [qrOpen, setQrOpen] = useState<number | undefined>(undefined);
  const rowError = useRowError();
  const cols = 6;
  return (
    <ListTable
      load={props.load}
      class={`links-table fixed responsive${props.load.loading && props.links ? " loading" : ""}`}
      testid="links-table"
      cols={["c-short", undefined, "c-tags", "c-num", "c-date", "c-actions"]}
      head={
        <>
          <th scope="col">Short link</th>
          <th scope="col">Target</th>
          <th scope="col">Tags</th>
          <th scope="col" class="num">
            Clicks
          </th>
          <th scope="col">Created</th>
        </>
      }
      actions
    >
      <TableRows rows={props.links} cols={cols} skeletonRows={10}>
        {(l) => (
          <Fragment key={l.id}>
            <tr data-testid="link-row" data-link-id={l.id} data-slug={l.slug}>
              <td data-label="Short link" class="short">
                <a href={`#/links/${l.id}`} class="slug" data-testid="link-open">
                  {l.domain}/{l.slug}
                </a>
                <CopyButton text={l.short_url} what={l.short_url} testid="copy-short-url" />
                {l.title && <div class="sub muted">{l.title}</div>}
              </td>
              <td data-label="Target" class="target">
                <a href={l.target} target="_blank" rel="noopener noreferrer" title={l.target} class="truncate">
                  {l.target}
                </a>
              </td>
              <td data-label="Tags">
                <Tags tags={l.tags} hrefFor={(t) => href("/links", { tag: t })} />
              </td>
              <td data-label="Clicks" class="num" data-testid="link-clicks">
                {fmtNumber(l.clicks)}
              </td>
              <td data-label="Created">
                <DateText iso={l.created_at} />
              </td>
              <td class="row-actions">
                <a class="btn small" href={`#/links/${l.id}`} aria-label={`Stats of ${l.domain}/${l.slug}`}>
                  Stats
                </a>
                <a class="btn small" href={`#/links/${l.id}/edit`} aria-label={`Edit ${l.domain}/${l.slug}`} data-testid="edit-link">
                  Edit
                </a>
                <button
                  type="button"
                  class="btn small"
                  aria-expanded={qrOpen === l.id}
                  aria-controls={`qr-${l.id}`}
                  aria-label={`QR code of ${l.domain}/${l.slug}`}
                  onClick={() => setQrOpen(qrOpen === l.id ? undefined : l.id)}
                  data-testid="toggle-qr"
                >
                  QR
                </button>
                <ConfirmButton
                  label="Delete"
                  what={`${l.domain}/${l.slug}`}
                  testid="delete-link"
                  onConfirm={() =>
                    rowError.run(l.id, async () => {
                      await api("DELETE", `/api/v1/links/${l.id}`);
                      props.onDeleted(l);
                    })
                  }
                />
                <RowError text={rowError.of(l.id)} alert />
              </td>
            </tr>
            {qrOpen === l.id && (
              <tr class="qr-row" id={`qr-${l.id}`}>
                <td colSpan={cols}>
                  <QrPanel link={l} />
                </td>
              </tr>
            )}
          </Fragment>
        )}
      </TableRows>
    </ListTable>
  );
}
