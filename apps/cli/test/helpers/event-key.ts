import type { KeyScope } from "@stepwise/engine";
import { createPostgresKeyStore } from "@stepwise/postgres";
import { createApiKey } from "@stepwise/server";
import pg from "pg";

/** Creates a key of `scope` in the (migrated) database at `databaseUrl`, as `stepwise keys create --scope <scope>` does. */
export async function createKey(databaseUrl: string, scope: KeyScope): Promise<string> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    return (await createApiKey(createPostgresKeyStore({ pool }), { scope, name: "tests" })).key;
  } finally {
    await pool.end();
  }
}

/** Creates an event key in the (migrated) database at `databaseUrl`, as `stepwise keys create --scope event` does. */
export function createEventKey(databaseUrl: string): Promise<string> {
  return createKey(databaseUrl, "event");
}
