#!/usr/bin/env node
import "./util/tick-shape.js";
import { createWriteStream, existsSync } from "node:fs";
import { Writable } from "node:stream";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import { buildApp, buildServices } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { AppError } from "./errors.js";
import { parseScopes, publicKey } from "./auth/service.js";
import { exportEvents } from "./events/export.js";
import { countCsvRows, importLinksCsv, linksCsv } from "./links/csv.js";
import { openStore } from "./store/open.js";
import type { Store } from "./store/port.js";
import { VERSION } from "./ops/routes.js";
import { parseTime } from "./util/time.js";

function config(): Config {
  return loadConfig();
}

/** Runs a CLI action on an opened store; errors become one clear line on stderr and a non-zero exit. */
function withStore(fn: (store: Store, cfg: Config) => Promise<number | void>, bulk = false) {
  return async () => {
    const cfg = config();
    const store = await openStore(cfg, { bulk, watchChanges: false });
    try {
      // the default project exists from the first use, whether that is `serve` or a CLI command
      await buildServices(store).auth.ensureDefaultProject();
      const code = await fn(store, cfg);
      if (typeof code === "number") process.exitCode = code;
    } finally {
      await store.close();
    }
  };
}

async function projectId(store: Store, name: string | undefined): Promise<number> {
  const svc = buildServices(store);
  if (!name) return (await svc.auth.ensureDefaultProject()).id;
  return (await svc.auth.resolveProject(name)).id;
}

function output(out: string | undefined): Writable {
  return out && out !== "-" ? createWriteStream(out) : process.stdout;
}

async function write(w: Writable, chunk: string) {
  if (!w.write(chunk)) await new Promise((r) => w.once("drain", r));
}

async function finish(w: Writable) {
  if (w === process.stdout) return;
  await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

function progressBar(total: number, label: string) {
  if (!process.stderr.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

async function serve() {
  const cfg = config();
  const store = await openStore(cfg, { watchChanges: true });
  const app = await buildApp(cfg, store);
  const generated = await app.services.auth.bootstrapAdminKey(cfg.adminKey);
  if (generated) {
    process.stdout.write(
      `\nA first admin API key was generated for the default project. It is shown this once; store it now:\n\n    ${generated}\n\n` +
        `Use it as "Authorization: Bearer <key>". Set CLICKTRAIL_ADMIN_KEY to choose your own.\n\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.fastify.log.info({ signal }, "shutting down: no new connections, committing queued events");
    app.close().then(
      () => process.exit(0),
      (err) => {
        app.fastify.log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  const address = await app.fastify.listen({ port: cfg.port, host: cfg.host });
  app.fastify.log.info({ address, data_dir: cfg.dataDir, engine: store.engine, version: VERSION }, `Clicktrail listening on ${address}`);
}

const program = new Command();
program
  .name("clicktrail")
  .description("Self-hosted links, clicks and events. Configuration comes from CLICKTRAIL_* variables (see README).")
  .version(VERSION);

program.command("serve", { isDefault: true }).description("run the server (migrates first)").action(serve);

program
  .command("migrate")
  .description("apply pending schema migrations and exit")
  .action(
    withStore(async () => {
      // openStore has migrated already
      process.stdout.write("database is up to date\n");
    }),
  );

const user = program.command("user").description("accounts");
user
  .command("create")
  .description("create a user (member of the default project unless --project)")
  .requiredOption("--email <email>")
  .addOption(new Option("--password <password>", "at least 8 characters").env("CLICKTRAIL_PASSWORD").makeOptionMandatory())
  .option("--project <project>", "project name or id")
  .action((o: { email: string; password: string; project?: string }) =>
    withStore(async (store) => {
      const svc = buildServices(store);
      const u = await svc.auth.createUser(o.email, o.password, await projectId(store, o.project));
      process.stdout.write(`Created user ${u.email} (id ${u.id})\n`);
    })(),
  );

const project = program.command("project").description("projects");
project
  .command("create <name>")
  .description("create a project")
  .action((name: string) =>
    withStore(async (store) => {
      const p = await buildServices(store).auth.createProject(name);
      process.stdout.write(`Created project ${p.name} (id ${p.id})\n`);
    })(),
  );
project
  .command("list")
  .description("list projects")
  .action(
    withStore(async (store) => {
      for (const p of await store.listProjects()) process.stdout.write(`${p.id}\t${p.name}\n`);
    }),
  );

const appCmd = program.command("app").description("apps: front ends that send events with a public ingest key (Microticks' consumers)");
appCmd
  .command("create <name>")
  .description("create an app and print its ingest key")
  .option("--project <project>", "project name or id (default: default)")
  .option("--idle-timeout <seconds>", "sessions stop after this many seconds without events", "1800")
  .action((name: string, o: { project?: string; idleTimeout: string }) =>
    withStore(async (store) => {
      const secs = Number(o.idleTimeout);
      if (!Number.isInteger(secs)) throw new AppError(400, "usage", "--idle-timeout must be a whole number of seconds");
      const a = await buildServices(store).ingest.createApp(await projectId(store, o.project), name, secs * 1000);
      process.stdout.write(`Created new consumer "${a.name}"\nConsumer key: ${a.key}\n`);
    })(),
  );
appCmd
  .command("list")
  .option("--project <project>")
  .action((o: { project?: string }) =>
    withStore(async (store) => {
      for (const a of await store.listApps(await projectId(store, o.project)))
        process.stdout.write(`${a.id}\t${a.name}\t${a.key}\t${a.disabled_at ? "disabled" : "enabled"}\n`);
    })(),
  );
appCmd
  .command("disable <app>")
  .description("disable an app's ingest key (by id or name)")
  .option("--project <project>")
  .action((ref: string, o: { project?: string }) =>
    withStore(async (store) => {
      const pid = await projectId(store, o.project);
      const a = (await store.listApps(pid)).find((x) => String(x.id) === ref || x.name === ref);
      if (!a) throw new AppError(404, "not-found", `no app ${JSON.stringify(ref)} in this project`);
      await buildServices(store).ingest.setDisabled(pid, a.id, true);
      process.stdout.write(`Disabled app ${a.name} (id ${a.id})\n`);
    })(),
  );

const key = program.command("key").description("API keys");
key
  .command("create")
  .description("create an API key (printed once)")
  .option("--project <project>", "project name or id (default: default)")
  .requiredOption("--scopes <scopes>", "comma-separated: links:read, links:write, stats:read, events:write, funnels:write, admin")
  .option("--name <name>", "a label", "cli")
  .action((o: { project?: string; scopes: string; name: string }) =>
    withStore(async (store) => {
      const scopes = parseScopes(o.scopes);
      const { token, key: k } = await buildServices(store).auth.createKey(await projectId(store, o.project), o.name, scopes);
      process.stdout.write(`${token}\n`);
      process.stderr.write(`Created API key ${k.id} (${k.scopes.join(", ")}). It is shown this once.\n`);
    })(),
  );
key
  .command("list")
  .option("--project <project>")
  .action((o: { project?: string }) =>
    withStore(async (store) => {
      for (const k of await store.listApiKeys(await projectId(store, o.project))) {
        const p = publicKey(k);
        process.stdout.write(`${p.id}\t${p.prefix}…\t${p.scopes.join(",")}\t${p.revoked_at ? "revoked" : "active"}\t${p.name}\n`);
      }
    })(),
  );
key
  .command("revoke <id>")
  .option("--project <project>")
  .action((id: string, o: { project?: string }) =>
    withStore(async (store) => {
      await buildServices(store).auth.revokeKey(await projectId(store, o.project), Number(id));
      process.stdout.write(`Revoked API key ${id}\n`);
    })(),
  );

const domain = program.command("domain").description("link domains");
domain
  .command("add <hostname>")
  .option("--project <project>")
  .option("--fallback <url>", "where the root and unknown slugs redirect")
  .action((hostname: string, o: { project?: string; fallback?: string }) =>
    withStore(async (store) => {
      const d = await buildServices(store).domains.create(await projectId(store, o.project), { hostname, fallback_url: o.fallback ?? null });
      process.stdout.write(`Added domain ${d.hostname} (id ${d.id})\n`);
    })(),
  );
domain
  .command("list")
  .option("--project <project>")
  .action((o: { project?: string }) =>
    withStore(async (store) => {
      for (const d of await store.listDomains(await projectId(store, o.project)))
        process.stdout.write(`${d.id}\t${d.hostname}\t${d.fallback_url ?? ""}\n`);
    })(),
  );

const links = program.command("links").description("bulk link work");
links
  .command("import <file>")
  .description("import links from CSV (domain,slug,target,tags,title,...); rows already present are skipped")
  .option("--project <project>")
  .option("--create-domains", "register unknown domains instead of failing their rows")
  .action((file: string, o: { project?: string; createDomains?: boolean }) =>
    withStore(async (store) => {
      if (!existsSync(file)) throw new AppError(400, "invalid-request", `no such file: ${file}`);
      const svc = buildServices(store);
      const pid = await projectId(store, o.project);
      const total = countCsvRows(file);
      const bar = progressBar(total, "importing");
      const counts = { created: 0, exists: 0, failed: 0 };
      const failures: string[] = [];
      let n = 0;
      for await (const r of importLinksCsv(file, pid, svc, { createDomains: o.createDomains })) {
        counts[r.status]++;
        if (r.status === "failed") failures.push(`row ${r.row}: ${r.message}`);
        bar?.update(++n);
      }
      bar?.stop();
      for (const f of failures) process.stderr.write(`${f}\n`);
      process.stdout.write(`imported ${file}: ${counts.created} created, ${counts.exists} already present, ${counts.failed} failed\n`);
      return counts.failed > 0 ? 1 : 0;
    }, true)(),
  );
links
  .command("export")
  .description("export links as CSV (importable) or NDJSON")
  .option("--project <project>")
  .addOption(new Option("--format <format>").choices(["csv", "ndjson"]).default("csv"))
  .option("--out <file>", "write to a file instead of stdout")
  .action((o: { project?: string; format: "csv" | "ndjson"; out?: string }) =>
    withStore(async (store) => {
      const pid = await projectId(store, o.project);
      const w = output(o.out);
      let before: number | undefined;
      let first = true;
      let n = 0;
      for (;;) {
        const page = await store.listLinks({ project_id: pid, before_id: before, limit: 1000 });
        if (page.length === 0) break;
        await write(w, o.format === "csv" ? linksCsv(page, first) : page.map((l) => JSON.stringify(l)).join("\n") + "\n");
        first = false;
        n += page.length;
        before = page[page.length - 1]!.id;
      }
      if (first && o.format === "csv") await write(w, linksCsv([], true));
      await finish(w);
      process.stderr.write(`exported ${n} links\n`);
    })(),
  );

const clicks = program.command("clicks").description("the click log");
clicks
  .command("export")
  .description("export raw clicks as CSV or NDJSON")
  .option("--project <project>")
  .addOption(new Option("--format <format>").choices(["csv", "ndjson"]).default("csv"))
  .option("--out <file>", "write to a file instead of stdout")
  .option("--link <id>", "only this link's clicks")
  .option("--from <time>", "ISO 8601 or epoch ms")
  .option("--to <time>", "ISO 8601 or epoch ms (exclusive)")
  .action((o: { project?: string; format: "csv" | "ndjson"; out?: string; link?: string; from?: string; to?: string }) =>
    withStore(async (store) => {
      const pid = await projectId(store, o.project);
      const total = await store.countEvents(pid);
      const bar = o.out ? progressBar(total, "exporting") : null;
      const w = output(o.out);
      let lines = 0;
      const filter = {
        project_id: pid,
        link_id: o.link ? Number(o.link) : undefined,
        from: parseTime(o.from, "--from"),
        to: parseTime(o.to, "--to"),
      };
      for await (const chunk of exportEvents(store, filter, o.format)) {
        await write(w, chunk);
        lines += chunk.split("\n").length - 1;
        bar?.update(Math.min(total, lines));
      }
      bar?.stop();
      await finish(w);
      process.stderr.write(`exported ${o.format === "csv" ? Math.max(0, lines - 1) : lines} events\n`);
    })(),
  );

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`clicktrail: configuration error: ${err.message}\n`);
  else if (err instanceof AppError) process.stderr.write(`clicktrail: ${err.message}\n`);
  else process.stderr.write(`clicktrail: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(2);
});
