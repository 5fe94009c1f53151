import type pg from "pg";
import { afterEach, beforeEach } from "vitest";
import { createTestPglite, createTestPostgres, type TestDatabase } from "../src/testing.js";

/** The two configurations statement-level tests run on, for `describe.each`. */
export const DATABASES = [
  ["PGlite", createTestPglite],
  ["a Postgres server", createTestPostgres],
] as const;

/** Records the name (or text) of every query the pool's clients run from now on, into `into`. */
export function recordStatements(pool: pg.Pool, into: string[] = []): string[] {
  const recorded = new WeakSet<pg.PoolClient>();
  pool.on("acquire", (client) => {
    if (recorded.has(client)) return;
    recorded.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const [config] = args;
      into.push(typeof config === "string" ? config : ((config as { name?: string; text?: string }).name ?? String((config as { text?: string }).text)));
      return query(...args);
    }) as typeof client.query;
  });
  return into;
}

/**
 * Gives every test of the calling `describe` a fresh database (closed after it) and the
 * statements its pool has run so far; `statements` is one array, emptied before each test.
 */
export function recordedDatabase(createDatabase: () => Promise<TestDatabase>): { readonly database: TestDatabase; statements: string[] } {
  const statements: string[] = [];
  let current: TestDatabase | undefined;
  beforeEach(async () => {
    current = await createDatabase();
    statements.length = 0;
    recordStatements(current.pool, statements);
  });
  afterEach(() => current?.close());
  return {
    statements,
    get database() {
      if (!current) throw new Error("recordedDatabase: the database exists only inside a test");
      return current;
    },
  };
}
