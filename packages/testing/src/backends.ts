import { createPostgresStore } from "@stepwise/postgres";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisBus, createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { createTestEngine, type TestEngine, type TestEngineOptions } from "./create-test-engine.js";
import { FakeClock } from "./fake-clock.js";

/** The two deployments engine-level tests run on: embedded (PGlite + memory) and production (Postgres + Redis). */
export const BACKENDS = ["pglite + memory", "postgres + redis"] as const;
/** One of {@link BACKENDS}. */
export type Backend = (typeof BACKENDS)[number];

/**
 * A started test engine on `backend`: a fresh PGlite database with a memory queue, or a fresh
 * Postgres database (cloned from the migrated template, at `DATABASE_URL`) with a Redis queue
 * and bus under a fresh prefix (at `REDIS_URL`). `close()` drops what it made.
 *
 * @example
 * describe.each(BACKENDS)("on %s", (backend) => {
 *   it("runs", async () => {
 *     await using engine = await createBackendEngine(backend, { clients: [stepwise] });
 *   });
 * });
 */
export async function createBackendEngine(backend: Backend, options: TestEngineOptions = {}): Promise<TestEngine> {
  if (backend === "pglite + memory") return createTestEngine(options);
  const clock = options.clock ?? new FakeClock();
  const database = await createTestPostgres();
  const redis = await createTestRedis();
  const queue = options.queue ?? createRedisQueue({ redis: redis.redis, clock, prefix: redis.prefix, pollIntervalMs: 200 });
  const bus = createRedisBus({ redis: redis.redis, prefix: redis.prefix });
  return createTestEngine({
    ...options,
    clock,
    store: createPostgresStore({ pool: database.pool }),
    queue,
    bus,
    async onClose() {
      await options.onClose?.();
      await bus.close();
      await redis.close();
      await database.close();
    },
  });
}
