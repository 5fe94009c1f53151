import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import { vector } from "@electric-sql/pglite-pgvector";
import pg from "pg";

/** Options of {@link openPglite}. */
export interface OpenPgliteOptions {
  /**
   * Directory of the database files, created when missing, e.g. `.stepwise/db`.
   * (Default: in memory, gone when closed)
   */
  dataDir?: string;
}

/** An open PGlite database and a `pg.Pool` on it. */
export interface PgliteHandle {
  /** The PGlite instance, for what `pg` cannot do (`dumpDataDir`, say). */
  db: PGlite;
  /** A `pg.Pool` of one connection on `db`: hand it to `migrate` and `createPostgresStore`. */
  pool: pg.Pool;
  /** Ends the pool, then closes the database. */
  close(): Promise<void>;
}

/**
 * Opens embedded Postgres (PGlite, WASM) with the `vector` extension available, and a `pg.Pool`
 * on it, so that the same SQL and the same `pg` code serve it and a Postgres server.
 *
 * PGlite is one process-local connection: the pool has exactly one client, and queries queue
 * for it. It survives a crash of its process (acknowledged commits are in the data dir), but it
 * never calls `fsync`, so an OS crash or power loss can lose recent commits: production
 * durability is a Postgres server. It does not migrate: call `migrate(handle.pool)`.
 *
 * @example
 * const { pool, close } = await openPglite({ dataDir: ".stepwise/db" });
 * await migrate(pool);
 * const store = createPostgresStore({ pool });
 * // ...
 * await close();
 */
export async function openPglite(options: OpenPgliteOptions = {}): Promise<PgliteHandle> {
  const db = await PGlite.create({ dataDir: options.dataDir, extensions: { vector } });
  return wrapPglite(db);
}

/**
 * A {@link PgliteHandle} around an open PGlite instance (it must have the `vector` extension
 * registered if the schema is migrated on it).
 * @internal
 */
export function wrapPglite(db: PGlite): PgliteHandle {
  // One connection: PGlite serves one at a time, and its pg config carries a single one.
  const pool = new pg.Pool({ ...createPgConfig(db), max: 1 });
  let closed: Promise<void> | undefined;
  return {
    db,
    pool,
    close() {
      closed ??= (async () => {
        await pool.end();
        await db.close();
      })();
      return closed;
    },
  };
}
