import type { JSX } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, getSession, onUnauthorized, setCsrfToken, setProjectId, signOut, type Session } from "./api";
import { CopyButton, ErrorBox } from "./components/ui";
import { toApiError } from "./hooks";
import { AppPage, AppsPage } from "./pages/Apps";
import { CampaignPage, CampaignsPage } from "./pages/Campaigns";
import { DomainsPage } from "./pages/Domains";
import { EventsPage } from "./pages/Events";
import { ImportPage } from "./pages/Import";
import { KeysPage } from "./pages/Keys";
import { LinkFormPage } from "./pages/LinkForm";
import { LinkPage } from "./pages/LinkPage";
import { LinksPage } from "./pages/Links";
import { SessionsPage } from "./pages/Sessions";
import { SettingsPage } from "./pages/Settings";
import { SignInPage } from "./pages/SignIn";
import { currentRoute, navigate, useRoute, type Route } from "./router";
import { AppContext, chooseProject, maybeSignedIn, rememberProject, rememberSignedIn, type AppState, type Flash } from "./state";

interface Page {
  title: string;
  section: string;
  node: JSX.Element;
}

type AnalyticsPages = typeof import("./pages/analytics");
let analyticsPages: AnalyticsPages | undefined;
let analyticsLoad: Promise<AnalyticsPages> | undefined;
const loadAnalytics = () =>
  (analyticsLoad ??= import("./pages/analytics").then(
    (m) => (analyticsPages = m),
    (e: unknown) => {
      analyticsLoad = undefined;
      throw e;
    },
  ));

/** A page of the lazily loaded chunk: nothing (or a retry) until it has arrived. */
function Deferred(props: { render: (m: AnalyticsPages) => JSX.Element }) {
  const [m, setM] = useState(analyticsPages);
  const [failed, setFailed] = useState(false);
  const [tries, setTries] = useState(0);
  useEffect(() => {
    if (m) return;
    let live = true;
    loadAnalytics().then(
      (x) => live && setM(x),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [tries]);
  if (m) return props.render(m);
  if (failed)
    return (
      <ErrorBox
        error={new ApiError({ status: 0, detail: "This page could not be loaded. Check your connection and try again." })}
        onRetry={() => {
          setFailed(false);
          setTries((t) => t + 1);
        }}
      />
    );
  return (
    <p class="muted" role="status">
      Loading…
    </p>
  );
}

/** A path segment as it was before encodeURIComponent (a visitor id, an event name). */
function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function pageFor(route: Route): Page {
  const p = route.path.replace(/\/+$/, "") || "/links";
  let m: RegExpMatchArray | null;
  if (p === "/links") return { title: "Links", section: "links", node: <LinksPage query={route.query} /> };
  if (p === "/links/new") return { title: "New link", section: "links", node: <LinkFormPage /> };
  if (p === "/links/import") return { title: "Import links", section: "links", node: <ImportPage /> };
  if ((m = p.match(/^\/links\/(\d+)$/))) return { title: "Link", section: "links", node: <LinkPage id={Number(m[1])} key={m[1]} /> };
  if ((m = p.match(/^\/links\/(\d+)\/edit$/))) return { title: "Edit link", section: "links", node: <LinkFormPage id={Number(m[1])} key={m[1]} /> };
  if (p === "/campaigns") return { title: "Campaigns", section: "campaigns", node: <CampaignsPage /> };
  if ((m = p.match(/^\/campaigns\/(\d+)$/))) return { title: "Campaign", section: "campaigns", node: <CampaignPage id={Number(m[1])} key={m[1]} /> };
  if (p === "/apps") return { title: "Apps", section: "events", node: <AppsPage /> };
  if ((m = p.match(/^\/apps\/(\d+)$/))) return { title: "App", section: "events", node: <AppPage id={Number(m[1])} key={m[1]} /> };
  if (p === "/events") return { title: "Events", section: "events", node: <EventsPage query={route.query} /> };
  if (p === "/sessions") return { title: "Sessions", section: "events", node: <SessionsPage query={route.query} /> };
  if (p === "/funnels") return { title: "Funnels", section: "funnels", node: <Deferred key="funnels" render={(x) => <x.FunnelsPage />} /> };
  if (p === "/funnels/new") return { title: "New funnel", section: "funnels", node: <Deferred key="new-funnel" render={(x) => <x.FunnelPage />} /> };
  if ((m = p.match(/^\/funnels\/(\d+)$/))) {
    const id = Number(m[1]);
    return { title: "Funnel", section: "funnels", node: <Deferred key={`funnel-${id}`} render={(x) => <x.FunnelPage id={id} />} /> };
  }
  if ((m = p.match(/^\/reports\/([^/]+)$/))) {
    const name = decodePart(m[1]!);
    return {
      title: `Event ${name}`,
      section: "funnels",
      node: <Deferred key={`report-${name}`} render={(x) => <x.EventReportPage name={name} />} />,
    };
  }
  if (p === "/visitors")
    return { title: "Visitors", section: "visitors", node: <Deferred key="visitors" render={(x) => <x.VisitorsPage query={route.query} />} /> };
  if ((m = p.match(/^\/visitors\/([^/]+)$/))) {
    const id = decodePart(m[1]!);
    return { title: `Visitor ${id}`, section: "visitors", node: <Deferred key={`visitor-${id}`} render={(x) => <x.VisitorPage id={id} />} /> };
  }
  if (p === "/domains") return { title: "Domains", section: "domains", node: <DomainsPage /> };
  if (p === "/keys") return { title: "API keys", section: "keys", node: <KeysPage /> };
  if (p === "/settings") return { title: "Settings", section: "settings", node: <SettingsPage /> };
  return {
    title: "Not found",
    section: "",
    node: (
      <>
        <h1 tabIndex={-1}>Page not found</h1>
        <p>
          There is no page at <code>{route.path}</code>. <a href="#/links">Go to the links</a>.
        </p>
      </>
    ),
  };
}

const NAV: [section: string, label: string, path?: string][] = [
  ["links", "Links"],
  ["campaigns", "Campaigns"],
  ["events", "Events", "/apps"],
  ["funnels", "Funnels"],
  ["visitors", "Visitors"],
  ["domains", "Domains"],
  ["keys", "API keys"],
  ["settings", "Settings"],
];

export function App() {
  /** undefined while the session is checked, null when signed out */
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [bootError, setBootError] = useState<ApiError | undefined>(undefined);
  const [projectId, setProjectState] = useState<string | null>(null);
  const [flash, setFlash] = useState<Flash | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const route = useRoute();

  const adopt = useCallback((s: Session | null) => {
    rememberSignedIn(s !== null);
    setSession(s);
    setCsrfToken(s?.csrf_token ?? "");
    const p = s ? chooseProject(s) : undefined;
    setProjectId(p?.id ?? null);
    setProjectState(p ? String(p.id) : null);
  }, []);

  const check = useCallback(() => {
    setBootError(undefined);
    if (!maybeSignedIn()) return adopt(null);
    getSession().then(adopt, (e) => setBootError(toApiError(e)));
  }, [adopt]);

  useEffect(() => {
    onUnauthorized(() => {
      setNotice("Your session has ended. Please sign in again.");
      setFlash(undefined);
      adopt(null);
    });
    check();
  }, [adopt, check]);

  // the analytics pages' chunk, fetched once the dashboard is idle after signing in
  useEffect(() => {
    if (!session) return;
    const t = window.setTimeout(() => void loadAnalytics().catch(() => {}), 2000);
    return () => window.clearTimeout(t);
  }, [session]);

  const project = session?.projects.find((p) => String(p.id) === projectId);
  const page = useMemo(() => pageFor(route), [route]);

  // title and focus follow the route (the focus only after the first page)
  const mainRef = useRef<HTMLElement>(null);
  const firstPath = useRef(true);
  useEffect(() => {
    document.title = session ? `${page.title} · Clicktrail` : "Sign in · Clicktrail";
    if (firstPath.current) {
      firstPath.current = false;
      return;
    }
    const h1 = mainRef.current?.querySelector<HTMLElement>("h1");
    h1?.focus({ preventScroll: false });
  }, [route.path, session === null, page.title]);

  // a flash message shows on the page it was meant for (its `path`), and goes once another page is shown
  const flashShown = useRef(false);
  useEffect(() => {
    if (!flash) return;
    if (route.path === flash.path) flashShown.current = true;
    else if (flashShown.current) setFlash(undefined);
  }, [route.path, flash]);

  const state: AppState | null = useMemo(
    () =>
      session && project
        ? {
            session,
            project,
            flash: (f) => {
              flashShown.current = false;
              setFlash(f ? { ...f, path: f.path ?? currentRoute().path } : undefined);
            },
          }
        : null,
    [session, project],
  );

  if (session === undefined) {
    return <div class="boot">{bootError ? <ErrorBox error={bootError} onRetry={check} /> : <p role="status">Loading Clicktrail…</p>}</div>;
  }

  if (session === null) {
    return (
      <SignInPage
        notice={notice}
        onSignedIn={(s) => {
          setNotice(undefined);
          adopt(s);
        }}
      />
    );
  }

  const switchProject = (id: string) => {
    rememberProject(id);
    setProjectId(id);
    setProjectState(id);
    setFlash(undefined);
    // an id in the address belongs to the old project
    if (/\/\d+/.test(route.path) || /^\/(visitors|reports)\/./.test(route.path))
      navigate(NAV.find(([s]) => s === page.section)?.[2] ?? "/" + page.section);
  };

  const doSignOut = async () => {
    try {
      await signOut();
      setNotice("You have signed out.");
      setFlash(undefined);
      adopt(null);
    } catch (e) {
      const err = toApiError(e);
      if (err.status === 401) {
        // already signed out (expired, or signed out in another tab)
        setNotice("You have signed out.");
        setFlash(undefined);
        adopt(null);
      } else setFlash({ kind: "error", text: err.problem.detail, path: route.path });
    }
  };

  return (
    <>
      <button type="button" class="skip" onClick={() => mainRef.current?.focus()}>
        Skip to content
      </button>
      <header class="topbar">
        <a class="brand" href="#/links" aria-label="Clicktrail, links">
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width={24} height={24} />
          <span>Clicktrail</span>
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([section, label, path]) => (
              <li key={section}>
                <a href={`#${path ?? "/" + section}`} aria-current={page.section === section ? "page" : undefined} data-testid={`nav-${section}`}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <label for="project-switcher" class="sr-only-narrow">
            Project
          </label>
          <select id="project-switcher" value={projectId ?? ""} onChange={(e) => switchProject(e.currentTarget.value)} data-testid="project-switcher">
            {session.projects.map((p) => (
              <option key={String(p.id)} value={String(p.id)}>
                {p.name}
              </option>
            ))}
          </select>
          <span class="user" data-testid="user-email" title={session.user.email}>
            {session.user.email}
          </span>
          <button type="button" class="btn small" onClick={doSignOut} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1} ref={mainRef} key={projectId ?? "none"}>
        {flash && flash.path === route.path && (
          <div class={`alert ${flash.kind}`} role={flash.kind === "error" ? "alert" : "status"} data-testid="flash">
            <span>{flash.text}</span>
            {flash.copy && <CopyButton text={flash.copy} testid="flash-copy" />}
            <button type="button" class="btn small plain" onClick={() => setFlash(undefined)} aria-label="Dismiss message">
              ×
            </button>
          </div>
        )}
        {state ? (
          <AppContext.Provider value={state}>{page.node}</AppContext.Provider>
        ) : (
          <>
            <h1 tabIndex={-1}>No project</h1>
            <p>Your account is not a member of any project yet. Ask a project owner to add you.</p>
          </>
        )}
      </main>
    </>
  );
}
