import type { TrackedApp } from "../api";

/**
 * The app filter of a list: all apps, each app by name, and the app of the query (`current`) by its id when it is not
 * among them. `id` is the select's id and test id.
 */
export function AppFilter(props: { id: string; apps: TrackedApp[]; current: string; value: string; onChange: (app: string) => void }) {
  return (
    <div class="field">
      <label for={props.id}>App</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)} data-testid={props.id}>
        <option value="">All apps</option>
        {props.apps.map((a) => (
          <option key={a.id} value={String(a.id)}>
            {a.name}
          </option>
        ))}
        {props.current && !props.apps.some((a) => a.id === Number(props.current)) && <option value={props.current}>App #{props.current}</option>}
      </select>
    </div>
  );
}

/** A text filter of a list ("any" when empty); `id` is the input's id and test id. */
export function TextFilter(props: { id: string; label: string; maxLength: number; value: string; onInput: (v: string) => void; class?: string }) {
  return (
    <div class={props.class ? `field ${props.class}` : "field"}>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="text"
        maxLength={props.maxLength}
        placeholder="any"
        value={props.value}
        onInput={(e) => props.onInput(e.currentTarget.value)}
        data-testid={props.id}
      />
    </div>
  );
}
