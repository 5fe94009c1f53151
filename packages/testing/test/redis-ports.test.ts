import { createRedisBus, createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { busContract } from "../src/contracts/bus.js";
import { queueContract } from "../src/contracts/queue.js";

// REDIS_URL (default: redis://127.0.0.1:6379) must reach a server; these suites are not
// skipped when it is missing, so a missing server fails loudly. Each test gets its own prefix.

queueContract("redis", async (clock) => {
  const testRedis = await createTestRedis();
  const queue = createRedisQueue({ redis: testRedis.redis, clock, prefix: testRedis.prefix });
  return {
    queue,
    close: async () => {
      await queue.close();
      await testRedis.close();
    },
  };
});

busContract("redis", async () => {
  const testRedis = await createTestRedis();
  const bus = createRedisBus({ redis: testRedis.redis, prefix: testRedis.prefix });
  return {
    bus,
    close: async () => {
      await bus.close();
      await testRedis.close();
    },
  };
});
