/** Numbered SQLite migrations. Never edit a released one: append a new number. */
export const MIGRATIONS: { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: "core",
    sql: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE projects (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  PRIMARY KEY (user_id, project_id)
) WITHOUT ROWID;

CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

CREATE TABLE domains (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  hostname TEXT NOT NULL UNIQUE,
  fallback_url TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX domains_project ON domains(project_id);

CREATE TABLE links (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  slug TEXT NOT NULL,
  target TEXT NOT NULL,
  redirect_status INTEGER NOT NULL DEFAULT 302,
  expires_at INTEGER,
  max_clicks INTEGER,
  tags TEXT NOT NULL DEFAULT '[]',
  utm TEXT NOT NULL DEFAULT '{}',
  forward_query INTEGER NOT NULL DEFAULT 0,
  title TEXT,
  notes TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  clicks INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX links_domain_slug ON links(domain_id, slug);
CREATE INDEX links_project ON links(project_id, id);
CREATE INDEX links_domain_target ON links(domain_id, target);

CREATE TABLE link_tags (
  link_id INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (tag, link_id)
) WITHOUT ROWID;
CREATE INDEX link_tags_link ON link_tags(link_id);

-- The append-only event log of every project.
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  client_ts INTEGER,
  name TEXT NOT NULL,
  visitor TEXT,
  session TEXT,
  link_id INTEGER,
  domain_id INTEGER,
  campaign_id INTEGER,
  source TEXT NOT NULL,
  channel TEXT,
  platform TEXT,
  ip TEXT,
  ua TEXT,
  referrer TEXT,
  browser TEXT,
  os TEXT,
  device TEXT,
  is_bot INTEGER NOT NULL DEFAULT 0,
  country TEXT,
  data TEXT
);
CREATE INDEX events_project_ts ON events(project_id, ts);

-- Click rollups: per scope x dimension x 15-minute slot x bot x value ("total" has the value '').
CREATE TABLE rollups (
  scope TEXT NOT NULL,
  scope_id INTEGER NOT NULL,
  dim TEXT NOT NULL,
  slot INTEGER NOT NULL,
  bot INTEGER NOT NULL,
  value TEXT NOT NULL,
  clicks INTEGER NOT NULL,
  PRIMARY KEY (scope, scope_id, dim, slot, bot, value)
) WITHOUT ROWID;

-- Unique-visitor sketches (exact sets while small, HyperLogLog beyond) per scope x hour x bot.
CREATE TABLE visitor_sketches (
  scope TEXT NOT NULL,
  scope_id INTEGER NOT NULL,
  hour INTEGER NOT NULL,
  bot INTEGER NOT NULL,
  sketch BLOB NOT NULL,
  PRIMARY KEY (scope, scope_id, hour, bot)
) WITHOUT ROWID;

-- Chunks applied by an unfinished rollup flush (see meta rollup_pending), so a restart applies each exactly once.
CREATE TABLE rollup_chunks_done (chunk INTEGER PRIMARY KEY);
`,
  },
  {
    id: 2,
    name: "targeting and campaigns; ids never reused",
    // Domains and links are rebuilt with AUTOINCREMENT: a plain rowid table hands the id of a deleted newest row to the
    // next one, which would inherit the deleted one's rollups and events. (The runner turns foreign keys off around
    // migrations and checks them before committing, the SQLite way of rebuilding a referenced table.)
    sql: `
CREATE TABLE domains_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  hostname TEXT NOT NULL UNIQUE,
  fallback_url TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO domains_new (id, project_id, hostname, fallback_url, created_at, updated_at)
  SELECT id, project_id, hostname, fallback_url, created_at, updated_at FROM domains;
DROP TABLE domains;
ALTER TABLE domains_new RENAME TO domains;
CREATE INDEX domains_project ON domains(project_id);

CREATE TABLE campaigns (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  utm TEXT NOT NULL DEFAULT '{}',
  notes TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX campaigns_project_name ON campaigns(project_id, name);

CREATE TABLE links_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  slug TEXT NOT NULL,
  target TEXT NOT NULL,
  redirect_status INTEGER NOT NULL DEFAULT 302,
  expires_at INTEGER,
  max_clicks INTEGER,
  tags TEXT NOT NULL DEFAULT '[]',
  utm TEXT NOT NULL DEFAULT '{}',
  forward_query INTEGER NOT NULL DEFAULT 0,
  title TEXT,
  notes TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  clicks INTEGER NOT NULL DEFAULT 0,
  -- ordered targeting rules (JSON), platforms allowed (JSON list or NULL), the campaign it belongs to
  rules TEXT NOT NULL DEFAULT '[]',
  allowed_platforms TEXT,
  campaign_id INTEGER REFERENCES campaigns(id) ON DELETE SET NULL
);
INSERT INTO links_new (id, project_id, domain_id, slug, target, redirect_status, expires_at, max_clicks, tags, utm,
    forward_query, title, notes, created_at, updated_at, clicks)
  SELECT id, project_id, domain_id, slug, target, redirect_status, expires_at, max_clicks, tags, utm,
    forward_query, title, notes, created_at, updated_at, clicks FROM links;
DROP TABLE links;
ALTER TABLE links_new RENAME TO links;
CREATE UNIQUE INDEX links_domain_slug ON links(domain_id, slug);
CREATE INDEX links_project ON links(project_id, id);
CREATE INDEX links_domain_target ON links(domain_id, target);
CREATE INDEX links_campaign ON links(campaign_id) WHERE campaign_id IS NOT NULL;

-- the targeting rule that chose a click's target
ALTER TABLE events ADD COLUMN rule TEXT;
`,
  },
  {
    id: 3,
    name: "dashboard sessions",
    sql: `
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires ON sessions(expires_at);

-- the dashboard's link table sorts by slug and by clicks
CREATE INDEX links_project_slug ON links(project_id, slug, id);
CREATE INDEX links_project_clicks ON links(project_id, clicks, id);
CREATE INDEX links_domain_id ON links(domain_id, id);
`,
  },
  {
    id: 4,
    name: "tracking keys",
    sql: `
CREATE TABLE tracking_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  kid TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX tracking_keys_project ON tracking_keys(project_id);
`,
  },
  {
    id: 5,
    name: "webhooks",
    sql: `
-- subscriptions: a project's URL, the event names it wants (JSON list, ["*"] = all), its Standard Webhooks secret
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  events TEXT NOT NULL DEFAULT '["*"]',
  secret TEXT NOT NULL,
  format TEXT NOT NULL DEFAULT 'standard',
  active INTEGER NOT NULL DEFAULT 1,
  description TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX webhooks_project ON webhooks(project_id, id);

-- the durable delivery queue (webhook_id NULL: a URL carried by a tracking token); one delivery per (webhook, event)
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  webhook_id INTEGER REFERENCES webhooks(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  event_id INTEGER,
  event_type TEXT NOT NULL,
  msg_id TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  locked_until INTEGER,
  last_status INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);

CREATE TABLE webhook_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, attempt);
`,
  },
  {
    id: 6,
    name: "apps, ingest sessions",
    sql: `
CREATE TABLE apps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  key TEXT NOT NULL UNIQUE,
  idle_timeout_ms INTEGER NOT NULL DEFAULT 1800000,
  created_at INTEGER NOT NULL,
  disabled_at INTEGER
);
CREATE UNIQUE INDEX apps_project_name ON apps(project_id, name);

CREATE TABLE sessions_ingest (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL,
  app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  token TEXT NOT NULL UNIQUE,
  visitor TEXT,
  started_at INTEGER NOT NULL,
  client_started_at INTEGER,
  last_event_at INTEGER NOT NULL,
  stopped_at INTEGER,
  stop_reason TEXT,
  event_count INTEGER NOT NULL DEFAULT 0,
  ip TEXT,
  ua TEXT
);
CREATE INDEX sessions_ingest_app ON sessions_ingest(app_id, id);
CREATE INDEX sessions_ingest_project ON sessions_ingest(project_id, id);

ALTER TABLE events ADD COLUMN app_id INTEGER;
CREATE INDEX events_app ON events(app_id, id) WHERE app_id IS NOT NULL;
CREATE INDEX events_session ON events(session) WHERE session IS NOT NULL;
`,
  },
  {
    id: 7,
    name: "visitors, properties, saved funnels, HiiTrack accounts",
    sql: `
-- identify: events of alias count as the visitor's. Rows are never changed (a visitor's root is found by following
-- the chain), so readers catch up by id.
CREATE TABLE visitor_aliases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  alias TEXT NOT NULL,
  visitor TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX visitor_aliases_alias ON visitor_aliases(project_id, alias);

-- visitor properties with their history: set (replaces every value), add (one more value), unset (one value, or all
-- when value is NULL)
CREATE TABLE visitor_properties (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  visitor TEXT NOT NULL,
  name TEXT NOT NULL,
  op TEXT NOT NULL,
  value TEXT,
  ts INTEGER NOT NULL
);
CREATE INDEX visitor_properties_project ON visitor_properties(project_id, id);
CREATE INDEX visitor_properties_visitor ON visitor_properties(project_id, visitor, id);

CREATE TABLE funnels (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT,
  query TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX funnels_project_name ON funnels(project_id, name);

-- the HiiTrack dialect's accounts: a user (sha1 of "user:password", as HiiTrack stores it) and its buckets, each a
-- Clicktrail project
CREATE TABLE hiitrack_users (
  name TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE hiitrack_buckets (
  user_name TEXT NOT NULL REFERENCES hiitrack_users(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  description TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_name, name)
);
`,
  },
  {
    id: 8,
    name: "config_version",
    // The server drops its caches when another process (the CLI, another instance) changes what they hold. It used to
    // watch PRAGMA data_version, which every commit of another connection moves: since the event log is written by a
    // connection on its own thread, that is many times a second. A counter moved by triggers on the cached tables (and
    // not by the clicks counter, which the rollup flush moves) says exactly when configuration changed.
    sql: `INSERT INTO meta (key, value) VALUES ('config_version', '0') ON CONFLICT DO NOTHING;\n${configTriggers()}`,
  },
  {
    id: 9,
    name: "rollup_chunk_size",
    // PostgreSQL's migration 9 adds a column for the chunk size of an interrupted rollup flush; here it goes into the
    // meta value rollup_pending (from:to:chunkSize), so there is nothing to do: the numbers stay the same on both engines
    sql: `SELECT 1;`,
  },
  {
    id: 10,
    name: "rollup_format",
    // PostgreSQL's migration 10 adds a column for the format of an interrupted rollup flush's row changes; here it goes
    // into the meta value rollup_pending (from:to:chunkSize:format): nothing to do
    sql: `SELECT 1;`,
  },
  {
    id: 11,
    name: "link_counts",
    // PostgreSQL's migration 11 moves the link counters into a table of their own (its updates were never heap-only
    // there); SQLite updates rows in place and has no such cost: nothing to do
    sql: `SELECT 1;`,
  },
];

/** Triggers that move meta.config_version on every change of a table the server caches (links: not clicks alone). */
function configTriggers(): string {
  const linkColumns =
    "id, project_id, domain_id, slug, target, redirect_status, expires_at, max_clicks, tags, utm, forward_query, title, notes, created_at, updated_at, rules, allowed_platforms, campaign_id";
  const tables = ["projects", "users", "memberships", "api_keys", "domains", "campaigns", "links", "link_tags", "tracking_keys", "apps", "webhooks"];
  const bump = `UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config_version';`;
  return tables
    .flatMap((t) =>
      [
        ["insert", "INSERT"],
        ["delete", "DELETE"],
        ["update", t === "links" ? `UPDATE OF ${linkColumns}` : "UPDATE"],
      ].map(([tag, on]) => `CREATE TRIGGER config_${t}_${tag} AFTER ${on} ON ${t} BEGIN ${bump} END;`),
    )
    .join("\n");
}
