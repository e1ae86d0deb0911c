import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, isAbort } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
  set: (v: T) => void;
}

/** Loads on mount and whenever `deps` change; a newer load aborts the older one. */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    setError(undefined);
    fn(ctl.signal).then(
      (v) => {
        if (ctl.signal.aborted) return;
        setData(v);
        setLoading(false);
      },
      (e: unknown) => {
        if (ctl.signal.aborted || isAbort(e)) return;
        setError(toApiError(e));
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, set: setData };
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError({ status: 0, detail: (e as Error)?.message || "Something went wrong." });
}

/**
 * Problem+json errors of a form: `detail` next to the field named by `field` when the form has it, else at the top.
 * `fields` maps API field names (or their first segment: "utm.source" → "utm", "tags.0" → "tags") to the form's fields.
 */
export function useFormErrors(fields: readonly string[]) {
  const [byField, setByField] = useState<Record<string, string>>({});
  const [top, setTop] = useState<string | undefined>(undefined);
  const fieldsRef = useRef(fields);
  fieldsRef.current = fields;
  const show = useCallback((e: unknown) => {
    const err = toApiError(e);
    const f = err.field;
    const known = fieldsRef.current;
    const match = f ? (known.includes(f) ? f : known.find((k) => f.startsWith(k + ".") || f.split(".")[0] === k)) : undefined;
    const msg = err.problem.detail;
    if (match) {
      setByField({ [match]: msg });
      setTop(undefined);
    } else {
      setByField({});
      setTop(msg);
    }
    return match;
  }, []);
  const clear = useCallback(() => {
    setByField({});
    setTop(undefined);
  }, []);
  const setField = useCallback((name: string, msg: string) => setByField((b) => ({ ...b, [name]: msg })), []);
  return { byField, top, show, clear, setField };
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

/**
 * Pages of a list behind an API cursor, "load more" appending the next page (`merge` joins a page to those shown).
 * Reloads from the first page whenever `deps` change; a newer load aborts the older one.
 */
export function useCursorPages<T>(
  fetchPage: (cursor: string | null, signal: AbortSignal) => Promise<Page<T>>,
  deps: unknown[],
  merge: (old: T[], page: T[]) => T[] = (old, page) => [...old, ...page],
) {
  const [items, setItems] = useState<T[] | undefined>(undefined);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const ctl = useRef<AbortController | undefined>(undefined);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const mergeRef = useRef(merge);
  mergeRef.current = merge;

  const load = useCallback(async (cursor: string | null) => {
    ctl.current?.abort();
    const c = new AbortController();
    ctl.current = c;
    setLoading(true);
    setError(undefined);
    try {
      const r = await fetchRef.current(cursor, c.signal);
      if (c.signal.aborted) return;
      setItems((old) => (cursor && old ? mergeRef.current(old, r.items) : r.items));
      setNext(r.next);
      setLoading(false);
    } catch (e) {
      if (c.signal.aborted || isAbort(e)) return;
      setError(toApiError(e));
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    setItems(undefined);
    setNext(null);
    void load(null);
    return () => ctl.current?.abort();
  }, deps);

  return { items, next, loading, error, more: () => load(next), reload: () => load(null) };
}

/** The error of an action on a page (delete, disable…): `run` clears it, runs the action and keeps the API's message if it fails. */
export function useActionError() {
  const [error, setError] = useState<string | undefined>(undefined);
  const run = useCallback(async (action: () => Promise<void>) => {
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(toApiError(e).problem.detail);
    }
  }, []);
  return { error, run };
}

/** The error of an action on one row of a list (delete, revoke…): shown next to that row; the next action clears it. */
export function useRowError() {
  const [rowError, setRowError] = useState<{ id: number; text: string } | undefined>(undefined);
  const run = useCallback(async (id: number, action: () => Promise<void>) => {
    setRowError(undefined);
    try {
      await action();
    } catch (e) {
      setRowError({ id, text: toApiError(e).problem.detail });
    }
  }, []);
  return { run, of: (id: number) => (rowError?.id === id ? rowError.text : undefined) };
}
