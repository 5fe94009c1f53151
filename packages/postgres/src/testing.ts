/**
 * @module @stepwise/postgres/testing
 *
 * Disposable, migrated databases for tests: PGlite in memory (no server needed), or a fresh
 * database on a Postgres server cloned from a migrated template.
 *
 * @example
 * import { createTestPglite } from "@stepwise/postgres/testing";
 * const database = await createTestPglite();
 * const store = database.createStore();
 * // ...
 * await database.close();
 *
 * Every export of this file is public API.
 */

import { createHash, randomBytes } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import type { RunStore } from "@stepwise/engine";
import pg from "pg";
import { createPostgresStore } from "./create-postgres-store.js";
import { loadMigrations, migrate } from "./migrate.js";
import { type PgliteHandle, wrapPglite } from "./pglite.js";

/** A migrated database that exists for one test (or one file) and is gone after `close()`. */
export interface TestDatabase {
  pool: pg.Pool;
  /** A store on `pool`; closing it leaves the pool to {@link TestDatabase.close}. */
  createStore(): RunStore;
  /** Ends the pool and discards the database. */
  close(): Promise<void>;
}

/** A {@link TestDatabase} on a Postgres server, with the connection string other processes can use. */
export interface TestPostgres extends TestDatabase {
  url: string;
}

/** A {@link TestDatabase} on PGlite. */
export interface TestPglite extends TestDatabase, PgliteHandle {}

/** The connection string {@link createTestPostgres} uses when `DATABASE_URL` is not set. */
export const DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** Name of the migrated database that {@link createTestPostgres} copies. */
export const TEMPLATE_DATABASE = "stepwise_test_template";

// Creating PGlite and migrating it takes seconds; loading a dump of a migrated one takes a
// fraction of that. One dump per process (the same thing `PGlite.clone()` does, without
// dumping the template again for every copy).
let pgliteTemplate: Promise<File | Blob> | undefined;

function migratedPgliteDump(): Promise<File | Blob> {
  pgliteTemplate ??= (async () => {
    const template = wrapPglite(await PGlite.create({ extensions: { vector } }));
    try {
      await migrate(template.pool);
      return await template.db.dumpDataDir("none");
    } finally {
      await template.close();
    }
  })();
  return pgliteTemplate;
}

/**
 * A migrated in-memory PGlite of its own: a copy of one template migrated once per process.
 *
 * @example
 * const database = await createTestPglite();
 * afterAll(() => database.close());
 */
export async function createTestPglite(): Promise<TestPglite> {
  const db = await PGlite.create({ loadDataDir: await migratedPgliteDump(), extensions: { vector } });
  const handle = wrapPglite(db);
  return { ...handle, createStore: () => createPostgresStore({ pool: handle.pool }) };
}

/** Options of {@link createTestPostgres}. */
export interface TestPostgresOptions {
  /** A superuser (or CREATEDB) connection string to the server. (Default: `DATABASE_URL`, else {@link DEFAULT_TEST_DATABASE_URL}) */
  url?: string;
}

// Serializes template creation and copying across vitest's worker processes: a template
// cannot be copied while any session is connected to it (another process migrating it).
const TEMPLATE_LOCK_KEY = 7_301_991_002;
const templateReady = new Map<string, Promise<void>>();

/**
 * A fresh database on a Postgres server, `CREATE DATABASE stepwise_test_<random> TEMPLATE
 * stepwise_test_template`, the template being created and migrated once per set of migration
 * files (and rebuilt when they change). `close()` drops the database. The server needs
 * pgvector, and the user must be allowed to create databases.
 *
 * @example
 * const database = await createTestPostgres();
 * const store = database.createStore();
 */
export async function createTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const adminUrl = options.url ?? process.env["DATABASE_URL"] ?? DEFAULT_TEST_DATABASE_URL;
  let ready = templateReady.get(adminUrl);
  if (!ready) {
    ready = withTemplateLock(adminUrl, (admin) => prepareTemplate(admin, adminUrl));
    templateReady.set(adminUrl, ready);
    ready.catch(() => templateReady.delete(adminUrl));
  }
  await ready;

  const name = `stepwise_test_${randomBytes(6).toString("hex")}`;
  await withTemplateLock(adminUrl, async (admin) => {
    await whileInUse(() => admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`));
  });
  const url = databaseUrl(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  let closed: Promise<void> | undefined;
  return {
    url,
    pool,
    createStore: () => createPostgresStore({ pool }),
    close() {
      closed ??= (async () => {
        await pool.end();
        await dropDatabase(adminUrl, name);
      })();
      return closed;
    },
  };
}

/**
 * Creates and migrates the template, unless it exists and was built from the same migration
 * files (their digest is kept as the database's comment). A template built from other files
 * (a migration edited before it shipped, another checkout) is dropped and built again.
 */
async function prepareTemplate(admin: pg.Client, adminUrl: string): Promise<void> {
  const digest = createHash("sha256")
    .update(JSON.stringify(await loadMigrations()))
    .digest("hex");
  const found = await admin.query<{ digest: string | null }>("SELECT shobj_description(oid, 'pg_database') AS digest FROM pg_database WHERE datname = $1", [
    TEMPLATE_DATABASE,
  ]);
  if (found.rows[0]?.digest === digest) return;
  await whileInUse(() => admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE}`));
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  const pool = new pg.Pool({ connectionString: databaseUrl(adminUrl, TEMPLATE_DATABASE), max: 1 });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  await admin.query(`COMMENT ON DATABASE ${TEMPLATE_DATABASE} IS '${digest}'`);
}

/** Runs `work` while holding the template lock (a session advisory lock on the admin database). */
async function withTemplateLock<TResult>(adminUrl: string, work: (admin: pg.Client) => Promise<TResult>): Promise<TResult> {
  return withAdmin(adminUrl, async (admin) => {
    await admin.query("SELECT pg_advisory_lock($1)", [TEMPLATE_LOCK_KEY]);
    try {
      return await work(admin);
    } finally {
      await admin.query("SELECT pg_advisory_unlock($1)", [TEMPLATE_LOCK_KEY]);
    }
  });
}

async function withAdmin<TResult>(adminUrl: string, work: (admin: pg.Client) => Promise<TResult>): Promise<TResult> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/**
 * Drops a test database once its sessions are gone. Not `WITH (FORCE)`: a forced drop makes
 * the pool's dying clients raise "terminating connection due to administrator command" in
 * the test process.
 */
function dropDatabase(adminUrl: string, name: string): Promise<void> {
  return withAdmin(adminUrl, async (admin) => {
    await whileInUse(() => admin.query(`DROP DATABASE IF EXISTS ${name}`));
  });
}

/**
 * Retries `work` while the server answers 55006 (object_in_use): `pool.end()` resolves before
 * the server has closed the sessions it ended, and a database cannot be dropped, or used as a
 * template, until they are gone. Gives up after about 5 s.
 */
async function whileInUse<TResult>(work: () => Promise<TResult>): Promise<TResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { code?: string }).code !== "55006" || attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
