import { performance } from "node:perf_hooks";
import { afterEach, expect, it } from "vitest";
import { connectRedis, DEFAULT_REDIS_URL } from "../src/connect-redis.js";
import { freePort } from "../src/private-redis-server.js";
import { RedisUnavailableError } from "../src/redis-unavailable-error.js";

const savedUrl = process.env["REDIS_URL"];
afterEach(() => {
  if (savedUrl === undefined) delete process.env["REDIS_URL"];
  else process.env["REDIS_URL"] = savedUrl;
});

it("rejects with a message naming the address when nothing listens there", async () => {
  const port = await freePort();
  const began = performance.now();
  const connecting = connectRedis(`redis://127.0.0.1:${port}`, { timeoutMs: 300 });
  await expect(connecting).rejects.toBeInstanceOf(RedisUnavailableError);
  await expect(connecting).rejects.toThrow(`cannot reach Redis at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; is it running? set REDIS_URL`);
  expect(performance.now() - began).toBeLessThan(1000);
});

it("keeps the password out of the message", async () => {
  const port = await freePort();
  const error = await connectRedis(`redis://user:secret@127.0.0.1:${port}/2`, { timeoutMs: 200 }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(RedisUnavailableError);
  expect((error as RedisUnavailableError).address).toBe(`127.0.0.1:${port}/2`);
  expect((error as Error).message).not.toContain("secret");
});

it("reads REDIS_URL, and connects to a live server ready for commands", async () => {
  process.env["REDIS_URL"] = savedUrl ?? DEFAULT_REDIS_URL;
  const redis = await connectRedis();
  expect(redis.status).toBe("ready");
  expect(await redis.ping()).toBe("PONG");
  // Settings for a long-running worker: commands wait for a reconnection instead of failing.
  expect(redis.options.maxRetriesPerRequest).toBeNull();
  expect(redis.options.retryStrategy?.(50)).toBeGreaterThan(0);
  await redis.quit();
});
