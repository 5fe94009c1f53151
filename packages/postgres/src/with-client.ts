import type pg from "pg";

/** The connections that have had {@link SESSION_SETTINGS}. */
const configured = new WeakSet<pg.PoolClient>();

/**
 * What the store sets on every connection it uses, once, ahead of its first query there:
 * `plan_cache_mode = force_generic_plan`. The store's statements are prepared once per
 * connection, and the hot ones take arrays (`unnest`) whose length varies: in the default mode
 * Postgres plans them anew at every execution, since a plan for the one-element arrays of a
 * lone event looks cheaper than the generic one. That planning was a quarter of a one-event
 * ingest's server time (0.19 of 0.78 ms), and forcing the generic plan took 14% off an event's
 * trip to its result (`../shared/peer-bench` W1). Every statement of the store has a generic
 * plan that uses its indexes (the wait-matching test reads its plan's row counts).
 */
const SESSION_SETTINGS = "SET plan_cache_mode = force_generic_plan";

/**
 * Sends {@link SESSION_SETTINGS} on a connection the first time the store uses it. Not awaited:
 * pg runs a connection's queries in order, so it goes ahead of the caller's. A failure (never
 * expected) only costs the planning it would save.
 */
function configure(client: pg.PoolClient): void {
  if (configured.has(client)) return;
  configured.add(client);
  client.query(SESSION_SETTINGS).catch(() => configured.delete(client));
}

/**
 * Runs `work` on one pooled connection and gives it back. Every query goes through here
 * rather than `pool.query`: on PGlite the pool holds a single client, and `pool.query`
 * destroys that client when a query fails. The client is released without an error even
 * when `work` throws, for the same reason, unless the connection itself reported an error.
 * @internal
 */
export async function withClient<TResult>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<TResult>): Promise<TResult> {
  const client = await pool.connect();
  configure(client);
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
