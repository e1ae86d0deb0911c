import pg from "pg";
import { randomBytes } from "node:crypto";
import { Socket } from "node:net";

/** The PostgreSQL the tests create their databases on (trust auth on this machine and in CI). */
export const PG_ADMIN_URL = process.env.CLICKTRAIL_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.CLICKTRAIL_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Which engine startApp() uses: set by the test runner (test/run-engines) for the PostgreSQL round. */
export const TEST_ENGINE: "sqlite" | "postgres" = process.env.CLICKTRAIL_TEST_DB === "postgres" ? "postgres" : "sqlite";

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of its own (ct_test_…), dropped by drop(): each test run leaves nothing behind. */
export async function createDatabase(): Promise<TestDatabase> {
  const name = `ct_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000, statement_timeout: 60_000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000, statement_timeout: 60_000 });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Whether something accepts TCP connections at the URL's host and port (within a second). */
export function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.setTimeout(1000, () => done(false));
    s.once("error", () => done(false));
    s.connect(Number(u.port || defaultPort), u.hostname || "127.0.0.1", () => done(true));
  });
}
