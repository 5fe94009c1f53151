import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { connectRedis } from "../src/connect-redis.js";
import { createRedisBus } from "../src/create-redis-bus.js";
import { createTestRedis, type TestRedis } from "../src/testing.js";

// What the bus contract (packages/testing) does not cover: two processes, failing handlers,
// and what close() leaves behind.

let testRedis: TestRedis;
beforeEach(async () => {
  testRedis = await createTestRedis();
});
afterEach(() => testRedis.close());

it("carries messages between instances on different connections, under the prefix", async () => {
  const other = await connectRedis(testRedis.url);
  const publisher = createRedisBus({ redis: other, prefix: testRedis.prefix, ownsConnection: true });
  const subscriber = createRedisBus({ redis: testRedis.redis, prefix: testRedis.prefix });
  const seen: unknown[] = [];
  await subscriber.subscribe("runs", (message) => seen.push(message));
  expect(await testRedis.redis.pubsub("NUMSUB", `${testRedis.prefix}:bus:runs`)).toEqual([`${testRedis.prefix}:bus:runs`, 1]);
  await publisher.publish("runs", { runId: "r1", output: [1, "two", null] });
  await publisher.publish("runs", undefined);
  await vi.waitFor(() => expect(seen).toEqual([{ runId: "r1", output: [1, "two", null] }, null]));
  await publisher.close();
  await subscriber.close();
});

it("keeps delivering after handlers throw or reject, and reports the errors", async () => {
  const errors: Array<[string, string]> = [];
  const bus = createRedisBus({
    redis: testRedis.redis,
    prefix: testRedis.prefix,
    onHandlerError: (error, channel) => errors.push([channel, (error as Error).message]),
  });
  const seen: unknown[] = [];
  await bus.subscribe("c", () => {
    throw new Error("sync failure");
  });
  await bus.subscribe("c", async () => {
    throw new Error("async failure");
  });
  await bus.subscribe("c", (message) => seen.push(message));
  await bus.publish("c", 1);
  await bus.publish("c", 2);
  await vi.waitFor(() => expect(seen).toEqual([1, 2]));
  await vi.waitFor(() => expect(errors).toHaveLength(4));
  expect(errors).toContainEqual(["c", "sync failure"]);
  expect(errors).toContainEqual(["c", "async failure"]);
  // A message that is not JSON (published by something else) is reported, not delivered.
  await testRedis.redis.publish(`${testRedis.prefix}:bus:c`, "{not json");
  await bus.publish("c", 3);
  await vi.waitFor(() => expect(seen).toEqual([1, 2, 3]));
  expect(errors.filter(([, message]) => /JSON/.test(message))).toHaveLength(1);
  await bus.close();
});

it("unsubscribes from Redis when the last handler of a channel leaves, and resubscribes", async () => {
  const bus = createRedisBus({ redis: testRedis.redis, prefix: testRedis.prefix });
  const channel = `${testRedis.prefix}:bus:c`;
  const first = await bus.subscribe("c", () => {});
  const second = await bus.subscribe("c", () => {});
  await first();
  expect(await testRedis.redis.pubsub("NUMSUB", channel)).toEqual([channel, 1]);
  await second();
  expect(await testRedis.redis.pubsub("NUMSUB", channel)).toEqual([channel, 0]);
  // A quick unsubscribe/subscribe pair ends subscribed.
  const third = await bus.subscribe("c", () => {});
  const seen: unknown[] = [];
  const [, fourth] = await Promise.all([third(), bus.subscribe("c", (message) => seen.push(message))]);
  expect(await testRedis.redis.pubsub("NUMSUB", channel)).toEqual([channel, 1]);
  await bus.publish("c", "still here");
  await vi.waitFor(() => expect(seen).toEqual(["still here"]));
  await fourth();
  await bus.close();
});

it("ends its subscriber connection on close and leaves the caller's client open", async () => {
  const name = `bus-${testRedis.prefix}`;
  const redis = await connectRedis(testRedis.url, { connectionName: name });
  const bus = createRedisBus({ redis, prefix: testRedis.prefix });
  await bus.subscribe("c", () => {});
  const connectionsNamed = async () =>
    String(await testRedis.redis.client("LIST"))
      .split("\n")
      .filter((line) => line.includes(`name=${name} `)).length;
  expect(await connectionsNamed()).toBe(2);
  await bus.close();
  await vi.waitFor(async () => expect(await connectionsNamed()).toBe(1));
  expect(await redis.ping()).toBe("PONG");
  await expect(bus.subscribe("c", () => {})).rejects.toThrow(/closed/);
  await redis.quit();
});
