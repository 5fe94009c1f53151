import type pg from "pg";

/**
 * Runs `work` on one pooled connection and gives it back. Every query goes through here
 * rather than `pool.query`: on PGlite the pool holds a single client, and `pool.query`
 * destroys that client when a query fails. The client is released without an error even
 * when `work` throws, for the same reason, unless the connection itself reported an error.
 * @internal
 */
export async function withClient<TResult>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<TResult>): Promise<TResult> {
  const client = await pool.connect();
  // pg-pool listens for errors only on idle clients: a checked-out connection that the server
  // terminates between two queries (pg_terminate_backend, a restart) would otherwise emit an
  // unhandled 'error' and crash the process. Such a connection is destroyed on release.
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken = error;
  };
  client.on("error", onError);
  try {
    return await work(client);
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}

/**
 * Runs `work` inside BEGIN/COMMIT on one connection, rolling back when it throws.
 * `work` answers `new Rollback(value)` to end without writing (a lost lease, say).
 * @internal
 */
export async function withTransaction<TResult>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<TResult | Rollback<TResult>>): Promise<TResult> {
  return withClient(pool, async (client) => {
    await client.query("BEGIN");
    let outcome: TResult | Rollback<TResult>;
    try {
      outcome = await work(client);
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        // The original error says more; a failed ROLLBACK means the connection is gone anyway.
      });
      throw error;
    }
    if (outcome instanceof Rollback) {
      await client.query("ROLLBACK");
      return outcome.value;
    }
    await client.query("COMMIT");
    return outcome;
  });
}

/** The answer of a transaction that decided not to write. @internal */
export class Rollback<TResult> {
  constructor(readonly value: TResult) {}
}
