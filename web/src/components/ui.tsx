import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api";

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
