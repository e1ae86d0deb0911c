import { api, type SavedFunnel } from "../../api";
import { ConfirmButton, RowError, TableRows, ListTable } from "../../components/ui";
import { stepsText } from "../../funnel";
import { fmtDateTime, fmtNumber } from "../../format";
import { useLoad, useRowError } from "../../hooks";
import { useApp } from "../../state";
import { eventReportHref, loadNames } from "./names";

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
