import { useEffect, useRef, useState } from "preact/hooks";
import { api, type BulkResult } from "../api";
import type { ImportRow, ParsedCsv } from "../csv";
import { ActionError, Crumbs } from "../components/ui";
import { fmtNumber } from "../format";
import { toApiError } from "../hooks";

const CHUNK = 100;

// the CSV parser (papaparse) loads with this page only
const loadCsv = () => import("../csv");

interface Failure {
  row: number;
  label: string;
  field?: string;
  detail: string;
  source: Record<string, string>;
}

type Phase = "idle" | "ready" | "running" | "done";

/** Strips the API's "links[3]: " / "links[3]." prefix: the index is the chunk's, the report shows the file's row. */
const cleanDetail = (d: string) => d.replace(/^links\[\d+\](?::\s*|\.)?/, "").trim() || d;

export function ImportPage() {
  const [fileName, setFileName] = useState("");
  const [parsed, setParsed] = useState<ParsedCsv | undefined>(undefined);
  const [readError, setReadError] = useState<string | undefined>(undefined);
  const [phase, setPhase] = useState<Phase>("idle");
  const [done, setDone] = useState(0);
  const [total, setTotal] = useState(0);
  const [created, setCreated] = useState(0);
  const [failures, setFailures] = useState<Failure[]>([]);
  const [stopped, setStopped] = useState<string | undefined>(undefined);
  const stop = useRef(false);
  const alive = useRef(true);
  const report = useRef<HTMLElement>(null);
  useEffect(
    () => () => {
      alive.current = false;
      stop.current = true;
    },
    [],
  );

  const choose = async (file: File | undefined) => {
    setParsed(undefined);
    setReadError(undefined);
    setPhase("idle");
    setFailures([]);
    setCreated(0);
    setDone(0);
    setStopped(undefined);
    if (!file) return setFileName("");
    setFileName(file.name);
    try {
      const [{ parseLinksCsv }, text] = await Promise.all([loadCsv(), file.text()]);
      const p = parseLinksCsv(text);
      setParsed(p);
      if (p.missing.length)
        setReadError(`The header has no ${p.missing.join(" or ")} column. The first line must name the columns, e.g. domain,slug,target,title,tags.`);
      else if (p.rows.length === 0) setReadError("The file has a header but no rows.");
      else setPhase("ready");
    } catch (e) {
      setReadError(`The file could not be read: ${(e as Error).message}`);
    }
  };

  const run = async () => {
    if (!parsed || phase === "running") return;
    stop.current = false;
    setStopped(undefined);
    setPhase("running");
    const bad: Failure[] = parsed.rows.filter((r) => r.error).map((r) => ({ row: r.row, label: r.label, detail: r.error!, source: r.source }));
    const good = parsed.rows.filter((r): r is ImportRow & { input: NonNullable<ImportRow["input"]> } => Boolean(r.input));
    let made = 0;
    let sent = bad.length;
    setFailures([...bad]);
    setTotal(parsed.rows.length);
    setDone(sent);
    setCreated(0);
    for (let i = 0; i < good.length; i += CHUNK) {
      if (stop.current) {
        if (alive.current) setStopped(`Stopped after ${fmtNumber(sent)} of ${fmtNumber(parsed.rows.length)} rows; the rest were not sent.`);
        break;
      }
      const chunk = good.slice(i, i + CHUNK);
      try {
        const res = await api<BulkResult>("POST", "/api/v1/links/bulk", { body: { links: chunk.map((r) => r.input) } });
        for (const r of res.results) {
          const row = chunk[r.index];
          if (!row) continue;
          if (r.status >= 200 && r.status < 300 && !r.error) made++;
          else
            bad.push({
              row: row.row,
              label: row.label,
              field: r.error?.field || undefined,
              detail: cleanDetail(r.error?.detail ?? `status ${r.status}`),
              source: row.source,
            });
        }
      } catch (e) {
        const err = toApiError(e);
        if (err.status === 401) return; // the session ended; the app shows the sign-in
        for (const row of chunk) bad.push({ row: row.row, label: row.label, detail: `not imported: ${err.problem.detail}`, source: row.source });
        if (err.status === 403 || err.status === 0) {
          sent += chunk.length;
          if (alive.current) setStopped(`Stopped: ${err.problem.detail}`);
          break;
        }
      }
      sent += chunk.length;
      if (!alive.current) return;
      setDone(sent);
      setCreated(made);
      setFailures([...bad].sort((a, b) => a.row - b.row));
    }
    if (!alive.current) return;
    setDone(sent);
    setCreated(made);
    setFailures([...bad].sort((a, b) => a.row - b.row));
    setPhase("done");
    report.current?.focus();
  };

  const downloadFailures = async () => {
    const { failuresCsv } = await loadCsv();
    const blob = new Blob([failuresCsv(failures)], { type: "text/csv;charset=utf-8" });
    const u = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = u;
    a.download = (fileName.replace(/\.csv$/i, "") || "links") + "-failed.csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(u), 10_000);
  };

  const rowsCount = parsed?.rows.length ?? 0;
  const preErrors = parsed?.rows.filter((r) => r.error).length ?? 0;

  return (
    <>
      <Crumbs href="#/links">Links</Crumbs>
      <div class="page-head">
        <h1 tabIndex={-1}>Import links</h1>
      </div>
      <section class="card form">
        <p>
          A CSV file with a header line. <code>domain</code> and <code>target</code> are required; <code>slug</code>, <code>title</code> and{" "}
          <code>tags</code> (separated by <code>|</code>, <code>;</code> or <code>,</code>) are optional, and so are the other columns of a Clicktrail
          export (<code>notes</code>, <code>redirect_status</code>, <code>expires_at</code>, <code>max_clicks</code>, <code>forward_query</code>,{" "}
          <code>utm_source</code>…).
        </p>
        <pre class="example" aria-label="Example file">
          {
            "domain,slug,target,title,tags\ngo.example.com,spring,https://example.com/spring-sale,Spring sale,promo|2026\ngo.example.com,,https://example.com/about,About us,"
          }
        </pre>
        <div class="field">
          <label for="import-file">CSV file</label>
          <input
            id="import-file"
            type="file"
            accept=".csv,text/csv"
            disabled={phase === "running"}
            onChange={(e) => choose(e.currentTarget.files?.[0])}
            aria-describedby={readError ? "import-file-error" : undefined}
            data-testid="import-file"
          />
          {readError && (
            <p class="field-error" id="import-file-error" role="alert" data-testid="import-file-error">
              {readError}
            </p>
          )}
        </div>
        {parsed && !readError && (
          <p data-testid="import-preview">
            {fmtNumber(rowsCount)} {rowsCount === 1 ? "row" : "rows"} in {fileName}
            {preErrors > 0 && `, ${fmtNumber(preErrors)} with problems found before sending`}.
            {parsed.ignored.length > 0 && ` Ignored columns: ${parsed.ignored.join(", ")}.`}
          </p>
        )}
        <div class="form-actions">
          <button type="button" class="btn primary" disabled={phase !== "ready" && phase !== "done"} onClick={run} data-testid="import-submit">
            {phase === "running" ? "Importing…" : phase === "done" ? "Import again" : `Import ${rowsCount ? fmtNumber(rowsCount) + " " : ""}links`}
          </button>
          {phase === "running" && (
            <button type="button" class="btn" onClick={() => (stop.current = true)} data-testid="import-stop">
              Stop
            </button>
          )}
        </div>
        <div class="progress-box">
          <label for="import-progress">Progress</label>
          <progress id="import-progress" max={Math.max(1, total)} value={done} data-testid="import-progress">
            {total ? Math.round((done / total) * 100) : 0}%
          </progress>
          <span class="muted" aria-live="polite">
            {total ? `${fmtNumber(done)} of ${fmtNumber(total)} rows` : "Not started"}
          </span>
        </div>
      </section>

      {(phase === "running" || phase === "done") && (
        <section class="card report" aria-labelledby="import-report-heading" data-testid="import-report" tabIndex={-1} ref={report}>
          <h2 id="import-report-heading">Report</h2>
          <p data-testid="import-summary" role="status">
            {phase === "running" ? "So far: " : ""}
            {fmtNumber(created)} {created === 1 ? "link" : "links"} created, {fmtNumber(failures.length)} failed
            {phase === "done" ? ` (of ${fmtNumber(total)} rows).` : "."}
          </p>
          <ActionError text={stopped} />
          {failures.length > 0 && (
            <>
              <div class="table-wrap">
                <table class="responsive failures">
                  <thead>
                    <tr>
                      <th scope="col">Row</th>
                      <th scope="col">Link</th>
                      <th scope="col">Problem</th>
                    </tr>
                  </thead>
                  <tbody>
                    {failures.map((f) => (
                      <tr key={f.row} data-testid="import-failure" data-row={f.row}>
                        <td data-label="Row" class="num">
                          {fmtNumber(f.row)}
                        </td>
                        <td data-label="Link">{f.label}</td>
                        <td data-label="Problem" class="field-error-text">
                          {f.field && <code>{f.field}</code>} {f.detail}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {phase === "done" && (
                <button type="button" class="btn" onClick={downloadFailures} data-testid="import-download-failures">
                  Download the failed rows as CSV
                </button>
              )}
            </>
          )}
          {phase === "done" && created > 0 && (
            <p>
              <a href="#/links">See the links</a>
            </p>
          )}
        </section>
      )}
    </>
  );
}
