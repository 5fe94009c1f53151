import { readdir, readFile } from "node:fs/promises";
import { ErrorCode, StepwiseError } from "@stepwise/core";
import type pg from "pg";
import { withClient } from "./with-client.js";

/**
 * The highest migration this code was written against. {@link assertSchemaCurrent} refuses a
 * database below it. Raise it with every new file in `migrations/` (a test checks they agree).
 */
export const SCHEMA_VERSION = 6;

/** A numbered SQL file of `migrations/`. */
export interface Migration {
  version: number;
  /** The file name without its number and extension, e.g. `init`. */
  name: string;
  sql: string;
}

// The same key in every process, so that two `migrate()` calls (or two test workers) serialize.
const MIGRATION_LOCK_KEY = 7_301_991_001;

// Resolved against this module, so it finds the package's `migrations/` from `src/` and `dist/`.
const MIGRATIONS_DIR = new URL("../migrations/", import.meta.url);
const FILE_PATTERN = /^(\d{6})_([a-z0-9_]+)\.sql$/;

/** Reads the package's migrations, in version order. */
export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => FILE_PATTERN.test(file)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const [, version, name] = FILE_PATTERN.exec(file) ?? [];
    migrations.push({ version: Number(version), name: name ?? file, sql: await readFile(new URL(file, MIGRATIONS_DIR), "utf8") });
  }
  return migrations;
}

/**
 * Applies the pending migrations in order, each in its own transaction, and answers the
 * versions it applied (empty when the schema was current). Safe to call from several
 * processes at once: a transaction-scoped advisory lock makes them take turns, and each
 * turn re-reads what is applied.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool);
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const migrations = await loadMigrations();
  const applied: number[] = [];
  await withClient(pool, async (client) => {
    for (;;) {
      await client.query("BEGIN");
      try {
        await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
        // Created under the lock: two first-time migrators would otherwise race on the catalog.
        await client.query(
          "CREATE TABLE IF NOT EXISTS stepwise_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        );
        const done = await appliedVersions(client);
        const next = migrations.find((migration) => !done.has(migration.version));
        if (!next) {
          await client.query("COMMIT");
          return;
        }
        await client.query(next.sql);
        await client.query("INSERT INTO stepwise_migrations (version, name) VALUES ($1, $2)", [next.version, next.name]);
        await client.query("COMMIT");
        applied.push(next.version);
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      }
    }
  });
  return applied;
}

/**
 * Throws a `StepwiseError` naming the pending migrations when the database is behind this
 * code's {@link SCHEMA_VERSION} (or was never migrated). A database ahead of the code is
 * accepted: migrations are append-only, so older code keeps working against it.
 */
export async function assertSchemaCurrent(pool: pg.Pool): Promise<void> {
  const done = await withClient(pool, async (client) => {
    const table = await client.query<{ exists: boolean }>("SELECT to_regclass('stepwise_migrations') IS NOT NULL AS exists");
    return table.rows[0]?.exists ? appliedVersions(client) : new Set<number>();
  });
  const pending = (await loadMigrations()).filter((migration) => migration.version <= SCHEMA_VERSION && !done.has(migration.version));
  if (pending.length === 0) return;
  const names = pending.map((migration) => `${String(migration.version).padStart(6, "0")}_${migration.name}`);
  throw new StepwiseError({
    code: ErrorCode.Internal,
    message: `the database schema is not current: ${pending.length} migration(s) pending (${names.join(", ")}); run \`stepwise migrate\` or call migrate(pool) first`,
    details: { pending: names, schemaVersion: SCHEMA_VERSION },
  });
}

async function appliedVersions(client: pg.PoolClient): Promise<Set<number>> {
  const result = await client.query<{ version: number }>("SELECT version FROM stepwise_migrations");
  return new Set(result.rows.map((row) => row.version));
}
