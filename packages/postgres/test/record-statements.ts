import type pg from "pg";
import { afterEach, beforeEach } from "vitest";
import { createTestPglite, createTestPostgres, type TestDatabase } from "../src/testing.js";

/** The two configurations statement-level tests run on, for `describe.each`. */
export const DATABASES = [
  ["PGlite", createTestPglite],
  ["a Postgres server", createTestPostgres],
] as const;

/**
 * Records the name (or text) of every query the pool's clients run from now on, into `into`;
 * the store's session settings (a `SET` once per connection) go to `settings` instead.
 */
export function recordStatements(pool: pg.Pool, into: string[] = [], settings: string[] = []): string[] {
  const recorded = new WeakSet<pg.PoolClient>();
  pool.on("acquire", (client) => {
    if (recorded.has(client)) return;
    recorded.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const [config] = args;
      const name = typeof config === "string" ? config : ((config as { name?: string; text?: string }).name ?? String((config as { text?: string }).text));
      (name.startsWith("SET ") ? settings : into).push(name);
      return query(...args);
    }) as typeof client.query;
  });
  return into;
}

/**
 * Gives every test of the calling `describe` a fresh database (closed after it) and the
 * statements its pool has run so far (`settings`: the session settings among them, apart);
 * each is one array, emptied before each test.
 */
export function recordedDatabase(createDatabase: () => Promise<TestDatabase>): {
  readonly database: TestDatabase;
  statements: string[];
  settings: string[];
} {
  const statements: string[] = [];
  const settings: string[] = [];
  let current: TestDatabase | undefined;
  beforeEach(async () => {
    current = await createDatabase();
    statements.length = 0;
    settings.length = 0;
    recordStatements(current.pool, statements, settings);
  });
  afterEach(() => current?.close());
  return {
    statements,
    settings,
    get database() {
      if (!current) throw new Error("recordedDatabase: the database exists only inside a test");
      return current;
    },
  };
}
