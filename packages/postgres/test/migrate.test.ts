import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { assertSchemaCurrent, loadMigrations, migrate, SCHEMA_VERSION } from "../src/migrate.js";

/** Every migration's version, as a fresh database applies them. */
const ALL_VERSIONS = Array.from({ length: SCHEMA_VERSION }, (_, index) => index + 1);

import { openPglite } from "../src/pglite.js";
import { DEFAULT_TEST_DATABASE_URL } from "../src/testing.js";

const adminUrl = process.env["DATABASE_URL"] ?? DEFAULT_TEST_DATABASE_URL;

async function query<TRow extends pg.QueryResultRow>(pool: pg.Pool, text: string): Promise<TRow[]> {
  const client = await pool.connect();
  try {
    return (await client.query<TRow>(text)).rows;
  } finally {
    client.release();
  }
}

describe("migrations", () => {
  it("are numbered 1, 2, 3… without gaps, and SCHEMA_VERSION is the last", async () => {
    const versions = (await loadMigrations()).map((migration) => migration.version);
    expect(versions).toEqual(versions.map((_, index) => index + 1));
    expect(versions.at(-1)).toBe(SCHEMA_VERSION);
  });

  it("apply once on PGlite, load pgvector, and satisfy assertSchemaCurrent", async () => {
    const { pool, close } = await openPglite();
    try {
      await expect(assertSchemaCurrent(pool)).rejects.toThrow(
        /not current: 6 migration\(s\) pending \(000001_init, 000002_api_keys, 000003_event_listing, 000004_reruns, 000005_flow_control, 000006_batch_events\)/,
      );
      expect(await migrate(pool)).toEqual(ALL_VERSIONS);
      expect(await migrate(pool)).toEqual([]);
      await expect(assertSchemaCurrent(pool)).resolves.toBeUndefined();
      expect(await query(pool, "SELECT version, name FROM stepwise_migrations")).toEqual([
        { version: 1, name: "init" },
        { version: 2, name: "api_keys" },
        { version: 3, name: "event_listing" },
        { version: 4, name: "reruns" },
        { version: 5, name: "flow_control" },
        { version: 6, name: "batch_events" },
      ]);
      expect(await query(pool, "SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector AS distance")).toEqual([{ distance: 2 }]);
    } finally {
      await close();
    }
  });

  describe("on a Postgres server", () => {
    const name = `stepwise_test_migrate_${randomBytes(6).toString("hex")}`;
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const pools: pg.Pool[] = [];

    afterAll(async () => {
      await Promise.all(pools.map((pool) => pool.end()));
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        // Not WITH (FORCE): ended pools' sessions may still be closing, and forcing them out
        // makes their clients raise in this process. Wait for them instead (55006: in use).
        for (let attempt = 0; ; attempt++) {
          const dropped = await admin.query(`DROP DATABASE IF EXISTS ${name}`).then(
            () => true,
            (error: { code?: string }) => {
              if (error.code !== "55006" || attempt >= 100) throw error;
              return false;
            },
          );
          if (dropped) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        await admin.end();
      }
    });

    it("apply exactly once when several processes migrate at the same time", async () => {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
      for (let index = 0; index < 4; index++) pools.push(new pg.Pool({ connectionString: url.toString(), max: 1 }));
      const applied = await Promise.all(pools.map((pool) => migrate(pool)));
      expect(applied.flat().sort()).toEqual(ALL_VERSIONS);
      await assertSchemaCurrent(pools[0]!);
      expect(await query(pools[0]!, "SELECT extversion IS NOT NULL AS loaded FROM pg_extension WHERE extname = 'vector'")).toEqual([{ loaded: true }]);
    });

    it("need no superuser once `vector` exists: a plain role that owns the database migrates it (managed Postgres)", async () => {
      const role = `stepwise_app_${randomBytes(4).toString("hex")}`;
      const database = `${name}_plain`;
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`);
        await admin.query(`CREATE DATABASE ${database} OWNER ${role}`);
        // What a managed service's admin does once: create the extension.
        const superuserOnDatabase = new pg.Client({ connectionString: withDatabase(adminUrl, database) });
        await superuserOnDatabase.connect();
        await superuserOnDatabase.query("CREATE EXTENSION vector");
        await superuserOnDatabase.end();
        const pool = new pg.Pool({ connectionString: withDatabase(adminUrl, database, role), max: 1 });
        try {
          expect(await query(pool, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).toEqual([{ rolsuper: false }]);
          expect(await migrate(pool)).toEqual(ALL_VERSIONS);
          await assertSchemaCurrent(pool);
        } finally {
          await pool.end();
        }
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await admin.query(`DROP ROLE IF EXISTS ${role}`);
        await admin.end();
      }
    });
  });
});

function withDatabase(connectionString: string, database: string, user?: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${database}`;
  if (user) url.username = user;
  return url.toString();
}
