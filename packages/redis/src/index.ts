/**
 * @module @stepwise/redis
 *
 * The engine's `Queue` and `Bus` on Redis, for `stepwise start` and `stepwise worker` with many
 * worker processes on many machines. Queue operations are single Lua scripts over keys that
 * share one hash tag (Redis Cluster ready); waiting workers wake on pub/sub notices. Redis is
 * derived state: the engine's reconciler re-enqueues from Postgres whatever Redis loses.
 *
 * @example
 * import { createSystemClock } from "@stepwise/engine";
 * import { connectRedis, createRedisBus, createRedisQueue } from "@stepwise/redis";
 *
 * const redis = await connectRedis(); // REDIS_URL, else redis://127.0.0.1:6379
 * const queue = createRedisQueue({ redis, clock: createSystemClock() });
 * const bus = createRedisBus({ redis });
 * // createEngine({ store, queue, bus, clock, ... })
 * await queue.close();
 * await bus.close();
 * await redis.quit();
 *
 * Every export of this file is public API.
 */

export type { ConnectRedisOptions } from "./connect-redis.js";
export { connectRedis, DEFAULT_REDIS_URL } from "./connect-redis.js";
export type { RedisBusOptions } from "./create-redis-bus.js";
export { createRedisBus } from "./create-redis-bus.js";
export type { RedisQueueOptions } from "./create-redis-queue.js";
export { createRedisQueue } from "./create-redis-queue.js";
export type { RedisRealtimeOptions } from "./create-redis-realtime.js";
export { createRedisRealtime } from "./create-redis-realtime.js";
export { RedisUnavailableError } from "./redis-unavailable-error.js";
