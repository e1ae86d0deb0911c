import { useEffect, useState } from "preact/hooks";

/** A hash router: #/links?q=shoes → { path: "/links", query: q=shoes }. The dashboard lives at /dashboard/, the hash keeps it one page. */
export interface Route {
  path: string;
  query: URLSearchParams;
}

export function currentRoute(): Route {
  const raw = window.location.hash.replace(/^#/, "") || "/links";
  const i = raw.indexOf("?");
  const path = (i === -1 ? raw : raw.slice(0, i)) || "/links";
  return { path: path.startsWith("/") ? path : "/" + path, query: new URLSearchParams(i === -1 ? "" : raw.slice(i + 1)) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const on = () => setRoute(currentRoute());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function href(path: string, query?: Record<string, string | number | undefined | null>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  const s = qs.toString();
  return "#" + path + (s ? "?" + s : "");
}

export function navigate(path: string, query?: Record<string, string | number | undefined | null>) {
  const target = href(path, query);
  if (window.location.hash !== target) window.location.hash = target;
}
