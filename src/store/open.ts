import type { Config } from "../config.js";
import type { Store } from "./port.js";
import { SqliteStore, sqlitePath } from "./sqlite/index.js";

/** Opens the configured store and brings its schema up to date. */
export async function openStore(config: Config, opts: { bulk?: boolean } = {}): Promise<Store> {
  const store = new SqliteStore({
    file: sqlitePath(config.dataDir),
    // bulk CLI work commits row by row: NORMAL keeps it fast and still survives a crash of the process
    synchronous: opts.bulk ? "NORMAL" : config.sqliteSynchronous,
  });
  await store.migrate();
  return store;
}
