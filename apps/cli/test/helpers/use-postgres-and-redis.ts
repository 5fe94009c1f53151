import { createTestPostgres, type TestPostgres } from "@stepwise/postgres/testing";
import { createTestRedis, type TestRedis } from "@stepwise/redis/testing";
import { afterAll, beforeAll } from "vitest";

/** A fresh Postgres database and Redis key prefix for the file's tests, made before them and dropped after. */
export function usePostgresAndRedis(): { database: TestPostgres; redis: TestRedis } {
  const fixture = {} as { database: TestPostgres; redis: TestRedis };
  beforeAll(async () => {
    fixture.database = await createTestPostgres();
    fixture.redis = await createTestRedis();
  });
  afterAll(async () => {
    await fixture.redis?.close();
    await fixture.database?.close();
  });
  return fixture;
}
