/**
 * Numbered PostgreSQL migrations: the same schema as SQLite's in PostgreSQL's types, plus what several instances
 * need (writers, batch ids, the claimed counter of max_clicks). Never edit a released one: append
 * a new number. The event log is partitioned by month of `ts` (see partitions.ts); a default partition catches any
 * event outside the months created ahead, so an insert never fails for want of a partition.
 */
export const PG_MIGRATIONS: { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: "core",
    sql: `
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE projects (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at bigint NOT NULL
);

CREATE TABLE users (
  id bigserial PRIMARY KEY,
  email text NOT NULL,
  password_hash text NOT NULL,
  created_at bigint NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  role text NOT NULL,
  PRIMARY KEY (user_id, project_id)
);

CREATE TABLE api_keys (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name text NOT NULL,
  prefix text NOT NULL,
  hash text NOT NULL UNIQUE,
  scopes jsonb NOT NULL,
  created_at bigint NOT NULL,
  revoked_at bigint
);

CREATE TABLE domains (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  hostname text NOT NULL UNIQUE,
  fallback_url text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX domains_project ON domains (project_id);

CREATE TABLE links (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  domain_id bigint NOT NULL REFERENCES domains(id),
  slug text NOT NULL,
  target text NOT NULL,
  redirect_status integer NOT NULL DEFAULT 302,
  expires_at bigint,
  max_clicks bigint,
  tags jsonb NOT NULL DEFAULT '[]',
  utm jsonb NOT NULL DEFAULT '{}',
  forward_query boolean NOT NULL DEFAULT false,
  title text,
  notes text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  -- non-bot clicks committed (maintained in the writer's transactions)
  clicks bigint NOT NULL DEFAULT 0,
  -- clicks granted against max_clicks across every instance (claimClick), never less than clicks
  claimed bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX links_domain_slug ON links (domain_id, slug);
CREATE INDEX links_project ON links (project_id, id);
CREATE INDEX links_domain_target ON links (domain_id, target);

CREATE TABLE link_tags (
  link_id bigint NOT NULL REFERENCES links(id) ON DELETE CASCADE,
  tag text NOT NULL,
  PRIMARY KEY (tag, link_id)
);
CREATE INDEX link_tags_link ON link_tags (link_id);

-- The append-only event log of every project, one partition per month of ts.
CREATE SEQUENCE events_id_seq AS bigint;
CREATE TABLE events (
  id bigint NOT NULL DEFAULT nextval('events_id_seq'),
  project_id bigint NOT NULL,
  ts bigint NOT NULL,
  client_ts bigint,
  name text NOT NULL,
  visitor text,
  session text,
  link_id bigint,
  domain_id bigint,
  campaign_id bigint,
  source text NOT NULL,
  channel text,
  platform text,
  ip text,
  ua text,
  referrer text,
  browser text,
  os text,
  device text,
  is_bot boolean NOT NULL DEFAULT false,
  country text,
  data text,
  -- the writer (instance) that appended it: each writer rolls up its own events past its own watermark
  writer integer
) PARTITION BY RANGE (ts);
CREATE INDEX events_project_ts ON events (project_id, ts);
CREATE INDEX events_id ON events (id);
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE TABLE rollups (
  scope text NOT NULL,
  scope_id bigint NOT NULL,
  dim text NOT NULL,
  slot bigint NOT NULL,
  bot boolean NOT NULL,
  value text NOT NULL,
  clicks bigint NOT NULL,
  PRIMARY KEY (scope, scope_id, dim, slot, bot, value)
);

CREATE TABLE visitor_sketches (
  scope text NOT NULL,
  scope_id bigint NOT NULL,
  hour bigint NOT NULL,
  bot boolean NOT NULL,
  sketch bytea NOT NULL,
  PRIMARY KEY (scope, scope_id, hour, bot)
);

-- One row per writing instance: its rollup watermark and an unfinished chunked flush. A writer whose heartbeat
-- stopped is adopted by another instance (FOR UPDATE SKIP LOCKED), which finishes its rollups and deletes the row;
-- every write of a writer checks (FOR KEY SHARE) that its row still exists, so an adopted writer can write nothing more.
CREATE TABLE writers (
  id serial PRIMARY KEY,
  instance text NOT NULL,
  started_at bigint NOT NULL,
  heartbeat_at bigint NOT NULL,
  watermark bigint NOT NULL,
  pending_from bigint,
  pending_to bigint
);
CREATE TABLE rollup_chunks_done (
  writer integer NOT NULL,
  chunk integer NOT NULL,
  PRIMARY KEY (writer, chunk)
);

-- Group commits already applied, by the writer's batch id: a batch replayed from an instance's spool after an outage
-- (when the outcome of its commit was unknown) is applied at most once.
CREATE TABLE writer_batches (
  id uuid PRIMARY KEY,
  created_at bigint NOT NULL
);
`,
  },
  {
    id: 2,
    name: "targeting and campaigns",
    sql: `
CREATE TABLE campaigns (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name text NOT NULL,
  utm jsonb NOT NULL DEFAULT '{}',
  notes text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE UNIQUE INDEX campaigns_project_name ON campaigns (project_id, name);

ALTER TABLE links ADD COLUMN rules jsonb NOT NULL DEFAULT '[]';
ALTER TABLE links ADD COLUMN allowed_platforms jsonb;
ALTER TABLE links ADD COLUMN campaign_id bigint REFERENCES campaigns(id) ON DELETE SET NULL;
CREATE INDEX links_campaign ON links (campaign_id) WHERE campaign_id IS NOT NULL;

-- the targeting rule that chose a click's target
ALTER TABLE events ADD COLUMN rule text;
`,
  },
  {
    id: 3,
    name: "dashboard sessions",
    sql: `
CREATE TABLE sessions (
  id_hash text PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- the dashboard's link table sorts by slug and by clicks
CREATE INDEX links_project_slug ON links (project_id, slug, id);
CREATE INDEX links_project_clicks ON links (project_id, clicks, id);
CREATE INDEX links_domain_id ON links (domain_id, id);
-- its search box: trigram index over slug, target and title (pg_trgm ships with PostgreSQL; skipped where missing)
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXECUTE $i$CREATE INDEX links_search ON links USING gin ((slug || ' ' || target || ' ' || coalesce(title, '')) gin_trgm_ops)$i$;
  END IF;
END $$;
`,
  },
  {
    id: 4,
    name: "tracking keys",
    sql: `
CREATE TABLE tracking_keys (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  kid text NOT NULL UNIQUE,
  kind text NOT NULL,
  secret text NOT NULL,
  created_at bigint NOT NULL,
  revoked_at bigint
);
CREATE INDEX tracking_keys_project ON tracking_keys (project_id);
`,
  },
  {
    id: 5,
    name: "webhooks",
    sql: `
-- subscriptions: a project's URL, the event names it wants (["*"] = all), its Standard Webhooks secret
CREATE TABLE webhooks (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  url text NOT NULL,
  events jsonb NOT NULL DEFAULT '["*"]',
  secret text NOT NULL,
  format text NOT NULL DEFAULT 'standard',
  active boolean NOT NULL DEFAULT true,
  description text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id, id);

-- the durable delivery queue (webhook_id NULL: a URL carried by a tracking token); one delivery per (webhook, event),
-- so the dispatchers of several instances (and their re-scans) may insert the same one: ON CONFLICT DO NOTHING
CREATE TABLE webhook_deliveries (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  webhook_id bigint REFERENCES webhooks(id) ON DELETE CASCADE,
  url text NOT NULL,
  event_id bigint,
  event_type text NOT NULL,
  msg_id text NOT NULL UNIQUE,
  payload text NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  locked_until bigint,
  last_status integer,
  last_error text,
  created_at bigint NOT NULL,
  delivered_at bigint,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
  id bigserial PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  at bigint NOT NULL,
  status_code integer,
  error text,
  duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
`,
  },
  {
    id: 6,
    name: "apps, ingest sessions",
    sql: `
CREATE TABLE apps (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name text NOT NULL,
  key text NOT NULL UNIQUE,
  idle_timeout_ms bigint NOT NULL DEFAULT 1800000,
  created_at bigint NOT NULL,
  disabled_at bigint
);
CREATE UNIQUE INDEX apps_project_name ON apps (project_id, name);

CREATE TABLE sessions_ingest (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL,
  app_id bigint NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  token text NOT NULL UNIQUE,
  visitor text,
  started_at bigint NOT NULL,
  client_started_at bigint,
  last_event_at bigint NOT NULL,
  stopped_at bigint,
  stop_reason text,
  event_count bigint NOT NULL DEFAULT 0,
  ip text,
  ua text
);
CREATE INDEX sessions_ingest_app ON sessions_ingest (app_id, id);
CREATE INDEX sessions_ingest_project ON sessions_ingest (project_id, id);

ALTER TABLE events ADD COLUMN app_id bigint;
CREATE INDEX events_app ON events (app_id, id) WHERE app_id IS NOT NULL;
CREATE INDEX events_session ON events (session) WHERE session IS NOT NULL;
`,
  },
  {
    id: 7,
    name: "visitors, properties, saved funnels, HiiTrack accounts",
    sql: `
CREATE TABLE visitor_aliases (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  alias text NOT NULL,
  visitor text NOT NULL,
  created_at bigint NOT NULL
);
CREATE UNIQUE INDEX visitor_aliases_alias ON visitor_aliases (project_id, alias);

CREATE TABLE visitor_properties (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  visitor text NOT NULL,
  name text NOT NULL,
  op text NOT NULL,
  value text,
  ts bigint NOT NULL
);
CREATE INDEX visitor_properties_project ON visitor_properties (project_id, id);
CREATE INDEX visitor_properties_visitor ON visitor_properties (project_id, visitor, id);

CREATE TABLE funnels (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name text NOT NULL,
  description text,
  query jsonb NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE UNIQUE INDEX funnels_project_name ON funnels (project_id, name);

CREATE TABLE hiitrack_users (
  name text PRIMARY KEY,
  hash text NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE hiitrack_buckets (
  user_name text NOT NULL REFERENCES hiitrack_users(name) ON DELETE CASCADE,
  name text NOT NULL,
  project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  description text,
  created_at bigint NOT NULL,
  PRIMARY KEY (user_name, name)
);
`,
  },
  {
    id: 8,
    name: "config_version",
    // SQLite's migration 8 adds triggers that tell the server when configuration changed; PostgreSQL already says so
    // with NOTIFY (changes.ts). Nothing to do here: the numbers stay the same on both engines.
    sql: `SELECT 1;`,
  },
  {
    id: 9,
    name: "rollup_chunk_size",
    // a rollup flush records how many row changes each of its chunks holds, so the chunk size can change between
    // versions without a restart misreading an interrupted flush (SQLite records it in its meta value)
    sql: `ALTER TABLE writers ADD COLUMN pending_chunk_size integer;`,
  },
  {
    id: 10,
    name: "rollup_format",
    // a rollup flush records the format of its row changes (see ROLLUP_FORMAT), so a version that makes fewer of them
    // resumes an older version's interrupted flush with the list that version made (SQLite records it in its meta value)
    sql: `ALTER TABLE writers ADD COLUMN pending_format integer;`,
  },
  {
    id: 11,
    name: "link_counts",
    // Each rollup flush adds every clicked link's clicks to its counter. In links that update was never HOT (heap-only):
    // clicks is in the dashboard's sort index, so each update wrote a new entry in all eight of the table's indexes, the
    // link search's trigram index the dearest (measured: 3,400 links 117-175 ms a flush). In a narrow table of their own,
    // with the sort index beside them, 23-27 ms. Every link has its row from its insert on (the trigger), so every read
    // finds it. Upgrade every instance together: an older one still updates links.clicks.
    sql: `
CREATE TABLE link_counts (
  link_id bigint PRIMARY KEY REFERENCES links(id) ON DELETE CASCADE,
  project_id bigint NOT NULL,
  -- non-bot clicks committed (maintained by the writers' rollup flushes)
  clicks bigint NOT NULL DEFAULT 0
);
INSERT INTO link_counts (link_id, project_id, clicks) SELECT id, project_id, clicks FROM links;
-- the dashboard's link table sorts by clicks
CREATE INDEX link_counts_project_clicks ON link_counts (project_id, clicks, link_id);
CREATE FUNCTION link_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO link_counts (link_id, project_id) SELECT id, project_id FROM new_links;
  RETURN NULL;
END
$f$;
CREATE TRIGGER links_counts AFTER INSERT ON links REFERENCING NEW TABLE AS new_links
  FOR EACH STATEMENT EXECUTE FUNCTION link_counts_insert();
DROP INDEX links_project_clicks;
ALTER TABLE links DROP COLUMN clicks;
`,
  },
];
