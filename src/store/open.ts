import type { Config } from "../config.js";
import type { Store } from "./port.js";
import { SqliteStore, sqlitePath } from "./sqlite/index.js";
import { PgStore } from "./postgres/index.js";

/**
 * Opens the configured store (PostgreSQL when CLICKTRAIL_DATABASE_URL is set, else SQLite under the data directory)
 * and brings its schema up to date. `watchChanges`: listen for other instances' changes (the server does).
 */
export async function openStore(config: Config, opts: { bulk?: boolean; watchChanges?: boolean } = {}): Promise<Store> {
  if (config.databaseUrl) {
    const store = new PgStore({
      url: config.databaseUrl,
      poolSize: config.databasePool,
      redisUrl: config.redisUrl,
      watchChanges: opts.watchChanges ?? true,
    });
    try {
      await store.migrate();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }
  const store = new SqliteStore({
    file: sqlitePath(config.dataDir),
    // bulk CLI work commits row by row: NORMAL keeps it fast and still survives a crash of the process
    synchronous: opts.bulk ? "NORMAL" : config.sqliteSynchronous,
  });
  await store.migrate();
  return store;
}
