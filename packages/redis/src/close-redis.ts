import type { Redis } from "ioredis";

/**
 * Ends a connection this package created: `QUIT` when it is up (pending replies arrive first),
 * else an immediate disconnect, because a `QUIT` queued on a client that is reconnecting to a
 * dead server would wait forever.
 *
 * @internal
 */
export async function closeRedis(redis: Redis, timeoutMs = 1000): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status !== "ready") {
    redis.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  } finally {
    clearTimeout(timer);
    // quit() may have ended it meanwhile; the status is not narrowed by the await.
    if ((redis.status as string) !== "end") redis.disconnect();
  }
}
