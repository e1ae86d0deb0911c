import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Project, Session } from "./api";

export interface Flash {
  kind: "ok" | "error";
  text: string;
  /** something worth copying, e.g. a new short URL */
  copy?: string;
  /** the page (route path) to show it on; default the current one */
  path?: string;
}

export interface AppState {
  session: Session;
  project: Project;
  flash: (f: Flash | undefined) => void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const s = useContext(AppContext);
  if (!s) throw new Error("useApp outside the signed-in app");
  return s;
}

const PROJECT_KEY = "clicktrail.project_id";
const SIGNED_IN_KEY = "clicktrail.signed_in";

/**
 * Whether this browser signed in last time. The session cookie is HttpOnly, so the page cannot see it; without this
 * hint a first visit would ask GET /api/v1/auth/session and get a 401, which the browser logs as a console error.
 */
export function maybeSignedIn(): boolean {
  try {
    return localStorage.getItem(SIGNED_IN_KEY) === "1";
  } catch {
    return true;
  }
}

export function rememberSignedIn(yes: boolean) {
  try {
    if (yes) localStorage.setItem(SIGNED_IN_KEY, "1");
    else localStorage.removeItem(SIGNED_IN_KEY);
  } catch {
    // private mode: ask the server every time
  }
}

export function rememberedProject(): string | null {
  try {
    return localStorage.getItem(PROJECT_KEY);
  } catch {
    return null;
  }
}

export function rememberProject(id: string) {
  try {
    localStorage.setItem(PROJECT_KEY, id);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

export function chooseProject(s: Session): Project | undefined {
  const remembered = rememberedProject();
  return s.projects.find((p) => String(p.id) === remembered) ?? s.projects.find((p) => String(p.id) === String(s.project_id)) ?? s.projects[0];
}
