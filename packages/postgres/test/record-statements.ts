import type pg from "pg";

/** Records the name (or text) of every query the pool's clients run from now on. */
export function recordStatements(pool: pg.Pool): string[] {
  const statements: string[] = [];
  const recorded = new WeakSet<pg.PoolClient>();
  pool.on("acquire", (client) => {
    if (recorded.has(client)) return;
    recorded.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const [config] = args;
      statements.push(typeof config === "string" ? config : ((config as { name?: string; text?: string }).name ?? String((config as { text?: string }).text)));
      return query(...args);
    }) as typeof client.query;
  });
  return statements;
}
