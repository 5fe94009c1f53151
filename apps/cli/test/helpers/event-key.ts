import { createPostgresKeyStore } from "@stepwise/postgres";
import { createApiKey } from "@stepwise/server";
import pg from "pg";

/** Creates an event key in the (migrated) database at `databaseUrl`, as `stepwise keys create --scope event` does. */
export async function createEventKey(databaseUrl: string): Promise<string> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    return (await createApiKey(createPostgresKeyStore({ pool }), { scope: "event", name: "tests" })).key;
  } finally {
    await pool.end();
  }
}
