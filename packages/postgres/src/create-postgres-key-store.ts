import type { ApiKeyRecord, KeyScope, KeyStore } from "@stepwise/engine";
import type pg from "pg";
import { epochMs, timeParam } from "./map-rows.js";
import { withClient } from "./with-client.js";

interface KeyRow {
  id: string;
  name: string;
  scope: KeyScope;
  secret_hash: Buffer;
  created_at: number;
  revoked_at: number | null;
}

const COLUMNS = `id, name, scope, secret_hash, ${epochMs("created_at", "created_at")}, ${epochMs("revoked_at", "revoked_at")}`;

function toRecord(row: KeyRow): ApiKeyRecord {
  const record: ApiKeyRecord = { id: row.id, name: row.name, scope: row.scope, createdAt: Number(row.created_at) };
  if (row.revoked_at !== null) record.revokedAt = Number(row.revoked_at);
  return record;
}

/**
 * The HTTP API's keys in Postgres (`api_keys`, migration 000002), on a server or PGlite.
 *
 * @example
 * const keys = createPostgresKeyStore({ pool });
 * createServer({ engine, auth: { mode: "keys", keys } });
 */
export function createPostgresKeyStore(options: { pool: pg.Pool }): KeyStore {
  const { pool } = options;
  return {
    createKey: (input) =>
      withClient(pool, async (client) => {
        await client.query("INSERT INTO api_keys (id, name, scope, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)", [
          input.id,
          input.name,
          input.scope,
          Buffer.from(input.secretHash),
          timeParam(input.now),
        ]);
      }),
    findKey: (id) =>
      withClient(pool, async (client) => {
        const row = (await client.query<KeyRow>({ name: "stepwise_find_key", text: `SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, values: [id] })).rows[0];
        return row ? { ...toRecord(row), secretHash: new Uint8Array(row.secret_hash) } : null;
      }),
    listKeys: () =>
      withClient(pool, async (client) => (await client.query<KeyRow>(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at DESC, id`)).rows.map(toRecord)),
    revokeKey: (input) =>
      withClient(pool, async (client) => {
        const result = await client.query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", [input.id, timeParam(input.now)]);
        return (result.rowCount ?? 0) > 0;
      }),
    countActiveKeys: () =>
      withClient(
        pool,
        async (client) =>
          (await client.query<{ count: number }>("SELECT count(*)::integer AS count FROM api_keys WHERE revoked_at IS NULL")).rows[0]?.count ?? 0,
      ),
  };
}
