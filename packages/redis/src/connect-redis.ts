import { Redis } from "ioredis";
import { RedisUnavailableError } from "./redis-unavailable-error.js";

/** The server {@link connectRedis} and `createTestRedis` use when neither a URL nor `REDIS_URL` is given. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /**
   * Milliseconds to keep trying the first connection before rejecting with a
   * {@link RedisUnavailableError}. Long enough for a Redis started alongside the worker (a
   * compose file) to come up, short enough that a wrong URL fails while someone is watching.
   * (Default: 5000)
   */
  timeoutMs?: number;
  /** Name shown by `CLIENT LIST`, to tell workers apart. (Default: none) */
  connectionName?: string;
}

/**
 * Connects to Redis with settings for a long-running worker, and resolves once the connection
 * is ready.
 *
 * Commands issued together are sent in one write (auto-pipelining). After the first
 * connection, the client reconnects forever with capped exponential backoff,
 * and commands wait for the reconnection instead of failing (`maxRetriesPerRequest: null`):
 * the queue and bus ride out a Redis restart. The first connection is different: if it is not
 * ready within `timeoutMs`, the promise rejects with a {@link RedisUnavailableError} naming the
 * address, and the client is disconnected.
 *
 * @param url `redis://` or `rediss://` URL. (Default: `REDIS_URL`, else {@link DEFAULT_REDIS_URL})
 *
 * @example
 * const redis = await connectRedis(); // REDIS_URL or redis://127.0.0.1:6379
 * const queue = createRedisQueue({ redis, clock });
 * // ...
 * await queue.close();
 * await redis.quit();
 */
export async function connectRedis(url?: string, options: ConnectRedisOptions = {}): Promise<Redis> {
  const target = url ?? process.env["REDIS_URL"] ?? DEFAULT_REDIS_URL;
  const timeoutMs = options.timeoutMs ?? 5000;
  const redis = new Redis(target, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectionName: options.connectionName,
    // Commands issued in one tick of the event loop (the dequeues and run-end notices of many
    // passes) go out in one write: on a busy worker, socket writes cost more than the commands.
    enableAutoPipelining: true,
    // Capped exponential backoff with jitter, so that a fleet of workers does not reconnect in
    // lockstep after a Redis restart. Never gives up: returning a number keeps retrying.
    retryStrategy: (times) => Math.round(Math.min(100 * 2 ** Math.min(times, 6), 5000) * (0.5 + Math.random() / 2)),
  });

  let lastError: unknown;
  const onError = (error: unknown) => {
    lastError = error;
  };
  // Listening also keeps ioredis from printing "Unhandled error event" for each refused attempt.
  redis.on("error", onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new RedisUnavailableError({ address: describeUrl(target), cause: lastError ?? `no answer within ${timeoutMs} ms` })),
        timeoutMs,
      );
      redis.once("ready", () => resolve());
      // connect() rejects on the first failed attempt although ioredis goes on retrying;
      // the deadline above, not this promise, decides.
      redis.connect().catch((error: unknown) => {
        lastError ??= error;
      });
    });
  } catch (error) {
    redis.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
    redis.off("error", onError);
  }
  return redis;
}

/** The URL without credentials, for messages. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || "6379"}${parsed.pathname && parsed.pathname !== "/" ? parsed.pathname : ""}`;
  } catch {
    return "(unparsable REDIS_URL)";
  }
}
