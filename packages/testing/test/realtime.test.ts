import { createMemoryRealtime, createSystemClock } from "@stepwise/engine";
import { createRedisRealtime } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { realtimeContract } from "../src/contracts/realtime.js";

realtimeContract("memory", async ({ maxLength }) => {
  const realtime = createMemoryRealtime({ clock: createSystemClock(), maxLength });
  return { realtime, close: () => realtime.close() };
});

// REDIS_URL (default redis://127.0.0.1:6379) must reach a server; a missing one fails loudly.
realtimeContract("Redis Streams", async ({ maxLength }) => {
  const redis = await createTestRedis();
  const realtime = createRedisRealtime({ redis: redis.redis, clock: createSystemClock(), prefix: redis.prefix, maxLength });
  return {
    realtime,
    async close() {
      await realtime.close();
      await redis.close();
    },
  };
});
