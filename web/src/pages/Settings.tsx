import { health } from "../api";
import { ErrorBox } from "../components/ui";
import { useLoad } from "../hooks";
import { useApp } from "../state";

export function SettingsPage() {
  const { session, project } = useApp();
  const h = useLoad(() => health(), []);
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>Settings</h1>
      </div>
      <div class="settings-grid">
        <section class="card" aria-labelledby="s-account">
          <h2 id="s-account">Account</h2>
          <dl class="facts">
            <div>
              <dt>Signed in as</dt>
              <dd data-testid="settings-email">{session.user.email}</dd>
            </div>
            <div>
              <dt>User id</dt>
              <dd>{String(session.user.id)}</dd>
            </div>
          </dl>
        </section>
        <section class="card" aria-labelledby="s-project">
          <h2 id="s-project">Project</h2>
          <dl class="facts">
            <div>
              <dt>Name</dt>
              <dd data-testid="settings-project">{project.name}</dd>
            </div>
            <div>
              <dt>Project id</dt>
              <dd>{String(project.id)}</dd>
            </div>
            <div>
              <dt>Your role</dt>
              <dd data-testid="settings-role">{project.role}</dd>
            </div>
          </dl>
          {session.projects.length > 1 && <p class="muted">Switch projects with the menu at the top of the page.</p>}
        </section>
        <section class="card" aria-labelledby="s-server">
          <h2 id="s-server">Server</h2>
          {h.error && <ErrorBox error={h.error} onRetry={h.reload} />}
          <dl class="facts">
            <div>
              <dt>Version</dt>
              <dd data-testid="settings-version">{h.data ? h.data.version : h.error ? "–" : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Status</dt>
              <dd data-testid="settings-status">{h.data ? h.data.status : h.error ? "–" : <span class="skeleton" />}</dd>
            </div>
            <div>
              <dt>Database</dt>
              <dd>{h.data ? (h.data.engine ?? "–") : h.error ? "–" : <span class="skeleton" />}</dd>
            </div>
          </dl>
        </section>
        <section class="card" aria-labelledby="s-api">
          <h2 id="s-api">API</h2>
          <p>
            The dashboard uses the same JSON API that scripts use with an <a href="#/keys">API key</a>.
          </p>
          <ul class="plain-list">
            <li>
              <a href="/docs" data-testid="api-docs-link">
                Interactive API documentation
              </a>
            </li>
            <li>
              <a href="/openapi.json">OpenAPI 3.1 document</a>
            </li>
          </ul>
        </section>
      </div>
    </>
  );
}
