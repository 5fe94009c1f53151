/**
 * @module @stepwise/redis/testing
 *
 * A Redis connection and a key prefix of its own for each test, on the server `REDIS_URL`
 * names (Default: redis://127.0.0.1:6379). Tests of one server run side by side: each works
 * under a random prefix, and `close()` deletes that prefix's keys.
 *
 * @example
 * import { createRedisQueue } from "@stepwise/redis";
 * import { createTestRedis } from "@stepwise/redis/testing";
 *
 * const testRedis = await createTestRedis();
 * const queue = createRedisQueue({ redis: testRedis.redis, clock, prefix: testRedis.prefix });
 * // ...
 * await queue.close();
 * await testRedis.close();
 *
 * Every export of this file is public API.
 */

import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { closeRedis } from "./close-redis.js";
import { connectRedis, DEFAULT_REDIS_URL } from "./connect-redis.js";

export type { PrivateRedisServer } from "./private-redis-server.js";
export { freePort, startPrivateRedisServer } from "./private-redis-server.js";

/** A connection and a prefix that exist for one test; see {@link createTestRedis}. */
export interface TestRedis {
  /** A client from `connectRedis`, owned by this fixture. */
  redis: Redis;
  /** A random prefix, `stepwise-test-<hex>`, to pass as `prefix` to queues and buses. */
  prefix: string;
  /** The server's URL; it may carry a password, so keep it out of logs. */
  url: string;
  /** Deletes every key containing `prefix` (SCAN, then UNLINK) and quits the connection. */
  close(): Promise<void>;
}

/** Options of {@link createTestRedis}. */
export interface TestRedisOptions {
  /** The server. (Default: `REDIS_URL`, else redis://127.0.0.1:6379) */
  url?: string;
}

/**
 * Connects to the test Redis server and picks a fresh prefix. Rejects with a
 * `RedisUnavailableError` naming the address when no server answers, so that a missing server
 * fails the suite loudly instead of skipping it.
 *
 * @example
 * const testRedis = await createTestRedis();
 * afterEach(() => testRedis.close());
 */
export async function createTestRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const url = options.url ?? process.env["REDIS_URL"] ?? DEFAULT_REDIS_URL;
  const redis = await connectRedis(url, { timeoutMs: 3000 });
  const prefix = `stepwise-test-${randomBytes(6).toString("hex")}`;
  let closed: Promise<void> | undefined;
  return {
    redis,
    prefix,
    url,
    close() {
      closed ??= (async () => {
        try {
          await deleteKeys(redis, `*${prefix}*`);
        } finally {
          await closeRedis(redis);
        }
      })();
      return closed;
    },
  };
}

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}
