/**
 * @module @stepwise/postgres
 *
 * The engine's durable state on Postgres: a `RunStore` whose invariants live in the schema's
 * constraints, numbered SQL migrations, and embedded Postgres (PGlite with pgvector) for
 * `stepwise dev`, tests and single-process apps. The same SQL runs on both.
 *
 * @example
 * import { createPostgresStore, migrate, openPglite } from "@stepwise/postgres";
 * const { pool, close } = await openPglite({ dataDir: ".stepwise/db" }); // or a pg.Pool on a server
 * await migrate(pool);
 * const store = createPostgresStore({ pool });
 * // createEngine({ store, queue, clock, ... })
 * await close();
 *
 * Every export of this file is public API.
 */

export { createPostgresKeyStore } from "./create-postgres-key-store.js";
export type { PostgresStoreOptions } from "./create-postgres-store.js";
export { createPostgresStore } from "./create-postgres-store.js";
export type { Migration } from "./migrate.js";
export { assertSchemaCurrent, loadMigrations, migrate, SCHEMA_VERSION } from "./migrate.js";
export type { OpenPgliteOptions, PgliteHandle } from "./pglite.js";
export { openPglite } from "./pglite.js";
