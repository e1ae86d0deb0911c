import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api";
import { fmtCount, fmtDate, fmtDateTime } from "../format";

export interface FieldControl {
  id: string;
  name: string;
  "aria-invalid": boolean | undefined;
  "aria-describedby": string | undefined;
}

/** A label, one control (given its ids through `children`), a hint and the API's message for this field. */
export function Field(props: {
  label: ComponentChildren;
  name: string;
  idPrefix?: string;
  error?: string;
  hint?: ComponentChildren;
  class?: string;
  children: (control: FieldControl) => JSX.Element;
}) {
  const id = `${props.idPrefix ?? "f"}-${props.name.replace(/[^a-z0-9_-]/gi, "-")}`;
  const described = [props.hint ? `${id}-hint` : "", props.error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div class={`field${props.error ? " invalid" : ""}${props.class ? " " + props.class : ""}`}>
      <label for={id}>{props.label}</label>
      {props.children({ id, name: props.name, "aria-invalid": props.error ? true : undefined, "aria-describedby": described })}
      {props.hint && (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p class="field-error" id={`${id}-error`} data-testid={`error-${props.name}`}>
          {props.error}
        </p>
      )}
    </div>
  );
}

/** The message of a form that the API did not attach to one of its fields. */
export function FormError(props: { message?: string; testid?: string }) {
  if (!props.message) return null;
  return (
    <p class="alert error" role="alert" data-testid={props.testid ?? "form-error"}>
      {props.message}
    </p>
  );
}

/** Worth another try: the network, the server, a throttle; not a refusal (401/403/404/409…). */
const retryable = (status: number) => status === 0 || status === 408 || status === 429 || status >= 500;

export function ErrorBox(props: { error: ApiError; onRetry?: () => void }) {
  return (
    <div class="alert error" role="alert" data-testid="load-error">
      <span>{props.error.problem.detail}</span>
      {props.onRetry && retryable(props.error.status) && (
        <button type="button" class="btn small" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Puts the focus on the control of a form's field (after the API refused it). */
export function focusField(form: HTMLFormElement | null, name: string | undefined) {
  if (!form || !name) return;
  const n = CSS.escape(name);
  const el = form.querySelector<HTMLElement>(`[name="${n}"]`) ?? form.querySelector<HTMLElement>(`[name^="${n}."]`);
  el?.focus();
}

export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // plain-http deployments: no async clipboard there
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.className = "clipboard-helper";
  document.body.appendChild(ta);
  ta.select();
  try {
    if (!document.execCommand("copy")) throw new Error("copy refused");
  } finally {
    ta.remove();
  }
}

export function CopyButton(props: { text: string; label?: string; what?: string; testid?: string; class?: string }) {
  const [state, setState] = useState<"" | "ok" | "fail">("");
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const copy = async () => {
    try {
      await copyText(props.text);
      setState("ok");
    } catch {
      setState("fail");
    }
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setState(""), 2000);
  };
  const label = props.label ?? "Copy";
  return (
    <>
      <button
        type="button"
        class={`btn small copy${props.class ? " " + props.class : ""}`}
        onClick={copy}
        data-testid={props.testid}
        aria-label={`${label} ${props.what ?? props.text}`}
      >
        {state === "ok" ? "Copied" : state === "fail" ? "Failed" : label}
      </button>
      <span class="sr-only" role="status">
        {state === "ok" ? "Copied to the clipboard" : state === "fail" ? "Could not copy; select the text and copy it by hand" : ""}
      </span>
    </>
  );
}

/** Two steps instead of window.confirm: "Delete" turns into "Really delete?" and "Cancel". */
export function ConfirmButton(props: { label: string; confirmLabel?: string; what: string; testid?: string; onConfirm: () => Promise<void> | void }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const firstRef = useRef<HTMLButtonElement>(null);
  const wasAsking = useRef(false);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
    else if (wasAsking.current) firstRef.current?.focus();
    wasAsking.current = asking;
  }, [asking]);
  if (!asking)
    return (
      <button
        type="button"
        class="btn small danger-outline"
        ref={firstRef}
        onClick={() => setAsking(true)}
        data-testid={props.testid}
        aria-label={`${props.label} ${props.what}`}
      >
        {props.label}
      </button>
    );
  return (
    <span class="confirm" role="group" aria-label={`Confirm: ${props.label.toLowerCase()} ${props.what}`}>
      <button
        type="button"
        class="btn small danger"
        ref={confirmRef}
        disabled={busy}
        data-testid={props.testid ? `${props.testid}-confirm` : undefined}
        onClick={async () => {
          setBusy(true);
          try {
            await props.onConfirm();
          } catch {
            // the caller shows its own errors
          } finally {
            setBusy(false);
            setAsking(false);
          }
        }}
      >
        {busy ? "Working…" : (props.confirmLabel ?? `Yes, ${props.label.toLowerCase()}`)}
      </button>
      <button
        type="button"
        class="btn small"
        disabled={busy}
        onClick={() => setAsking(false)}
        data-testid={props.testid ? `${props.testid}-cancel` : undefined}
      >
        Cancel
      </button>
    </span>
  );
}

export function SkeletonRows(props: { cols: number; rows?: number }) {
  return (
    <>
      {Array.from({ length: props.rows ?? 8 }, (_, i) => (
        <tr class="skeleton-row" aria-hidden="true" key={i}>
          {Array.from({ length: props.cols }, (_, j) => (
            <td key={j}>
              <span class="skeleton" />
            </td>
          ))}
        </tr>
      ))}
    </>
  );
}

/**
 * A loaded list as a table: the load's error (with "Try again") above it, busy while it loads; `cols`: the class of
 * each column (undefined: none), `head`: the header cells; `actions`: a last, unnamed column for the rows' buttons.
 */
export function ListTable(props: {
  load: { error: ApiError | undefined; loading: boolean; reload: () => void };
  class: string;
  testid: string;
  label?: string;
  cols: (string | undefined)[];
  head: ComponentChildren;
  actions?: boolean;
  children: ComponentChildren;
}) {
  const { error, loading, reload } = props.load;
  return (
    <>
      {error && <ErrorBox error={error} onRetry={reload} />}
      <div class="table-wrap">
        <table class={props.class} aria-busy={loading} aria-label={props.label} data-testid={props.testid}>
          <colgroup>
            {props.cols.map((c, i) => (
              <col key={i} class={c} />
            ))}
          </colgroup>
          <thead>
            <tr>
              {props.head}
              {props.actions && (
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>{props.children}</tbody>
        </table>
      </div>
    </>
  );
}

/**
 * A table's body: skeleton rows while `rows` load, one row of `empty` when there are none (`plainEmpty`: without the
 * empty-row style; no `empty`: no row, the page says it elsewhere), else a row each.
 */
export function TableRows<T>(props: {
  rows: readonly T[] | undefined;
  cols: number;
  skeletonRows?: number;
  empty?: ComponentChildren;
  plainEmpty?: boolean;
  children: (row: T) => JSX.Element;
}) {
  if (!props.rows) return <SkeletonRows cols={props.cols} rows={props.skeletonRows} />;
  if (props.rows.length === 0 && props.empty !== undefined)
    return (
      <tr class={props.plainEmpty ? undefined : "empty-row"}>
        <td colSpan={props.cols} class="muted">
          {props.empty}
        </td>
      </tr>
    );
  return <>{props.rows.map(props.children)}</>;
}

/**
 * "Load more" while the API has a next page; after the last one, how many are shown (`testid`-more, `testid`-end;
 * `noEnd`: nothing after the last page).
 */
export function LoadMore(props: {
  pages: { items: readonly unknown[] | undefined; next: string | null; loading: boolean; more: () => void };
  what: string;
  testid: string;
  noEnd?: boolean;
}) {
  const { items, next, loading, more } = props.pages;
  return (
    <div class="pager">
      {next ? (
        <button type="button" class="btn" disabled={loading} onClick={more} data-testid={`${props.testid}-more`}>
          {loading ? "Loading…" : "Load more"}
        </button>
      ) : (
        !props.noEnd &&
        items &&
        items.length > 0 && (
          <span class="muted" data-testid={`${props.testid}-end`}>
            All {fmtCount(items.length, props.what)} shown.
          </span>
        )
      )}
    </div>
  );
}

/** The API's message after an action on one row failed (see useRowError); `alert`: announced at once. */
export function RowError(props: { text: string | undefined; alert?: boolean; testid?: string }) {
  if (!props.text) return null;
  return (
    <p class="field-error" role={props.alert ? "alert" : undefined} data-testid={props.testid}>
      {props.text}
    </p>
  );
}

/** The message of a failed page action (delete, disable…), announced at once. */
export function ActionError(props: { text: string | undefined }) {
  if (!props.text) return null;
  return (
    <p class="alert error" role="alert">
      {props.text}
    </p>
  );
}

/** A day, with the full date and time as its title. */
export function DateText(props: { iso: string }) {
  return (
    <time dateTime={props.iso} title={fmtDateTime(props.iso)}>
      {fmtDate(props.iso)}
    </time>
  );
}

/** The way back above a page's heading: the list the page belongs to. */
export function Crumbs(props: { href: string; children: ComponentChildren }) {
  return (
    <p class="crumbs">
      <a href={props.href}>{props.children}</a> <span aria-hidden="true">›</span>
    </p>
  );
}

export function Tags(props: { tags: string[]; hrefFor?: (t: string) => string }) {
  if (!props.tags.length) return <span class="muted">–</span>;
  return (
    <ul class="tags" aria-label="Tags">
      {props.tags.map((t) => (
        <li key={t}>{props.hrefFor ? <a href={props.hrefFor(t)}>{t}</a> : t}</li>
      ))}
    </ul>
  );
}
