import { performance } from "node:perf_hooks";
import { createSystemClock } from "@stepwise/engine";
import type { Redis } from "ioredis";
import { afterEach, beforeEach, expect, it } from "vitest";
import { connectRedis } from "../src/connect-redis.js";
import { createRedisQueue } from "../src/create-redis-queue.js";
import { type PrivateRedisServer, startPrivateRedisServer } from "../src/private-redis-server.js";
import { ManualClock } from "./manual-clock.js";

// Flushing, pausing or restarting the shared test server would break the test files running
// beside this one: these tests run a redis-server of their own.

let server: PrivateRedisServer;
let connections: Redis[];
beforeEach(async () => {
  server = await startPrivateRedisServer();
  connections = [];
});
afterEach(async () => {
  for (const redis of connections) redis.disconnect();
  await server.kill();
});

async function connect(): Promise<Redis> {
  const redis = await connectRedis(server.url);
  // Refused reconnections while the server is down are expected here.
  redis.on("error", () => {});
  connections.push(redis);
  return redis;
}

it("survives FLUSHALL while a dequeue waits: the items are lost, the queue keeps working", async () => {
  const clock = new ManualClock();
  const queue = createRedisQueue({ redis: await connect(), clock });
  const abort = new AbortController();
  await queue.enqueue([{ runId: "delayed", functionId: "fn", availableAt: clock.now() + 60_000 }]);
  const waiting = queue.dequeue(abort.signal);
  await new Promise((resolve) => setTimeout(resolve, 30));

  await (await connect()).flushall();
  expect(await queue.size()).toBe(0);
  expect(await queue.nextAvailableAt()).toBeNull();
  // The timer armed for the lost item fires and finds nothing; the waiter sleeps on.
  clock.advance(60_000);
  await new Promise((resolve) => setTimeout(resolve, 30));

  // What the reconciler would do: enqueue the run again.
  await queue.enqueue([{ runId: "delayed", functionId: "fn", availableAt: clock.now() }]);
  expect((await waiting)?.runId).toBe("delayed");
  await queue.enqueue([
    { runId: "b", functionId: "fn", availableAt: clock.now() },
    { runId: "c", functionId: "fn", availableAt: clock.now() },
  ]);
  expect((await queue.dequeue(abort.signal))?.runId).toBe("b");
  expect((await queue.dequeue(abort.signal))?.runId).toBe("c");
  await queue.close();
});

it("rides out a Redis restart: a waiting dequeue gets an item enqueued after it", async () => {
  const clock = createSystemClock();
  const producer = createRedisQueue({ redis: await connect(), clock });
  const consumer = createRedisQueue({ redis: await connect(), clock, pollIntervalMs: 200 });
  const abort = new AbortController();
  const waiting = consumer.dequeue(abort.signal);
  await new Promise((resolve) => setTimeout(resolve, 50));

  await server.kill();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await server.start();
  // The producer's command waits for its reconnection rather than failing.
  await producer.enqueue([{ runId: "after-restart", functionId: "fn", availableAt: clock.now() }]);
  expect((await waiting)?.runId).toBe("after-restart");
  await producer.close();
  await consumer.close();
});

it("resolves an aborted dequeue at once even while Redis does not answer, and puts back what its late script took", async () => {
  const clock = createSystemClock();
  const queue = createRedisQueue({ redis: await connect(), clock });
  await queue.enqueue([{ runId: "kept", functionId: "fn", availableAt: clock.now() }]);
  // Holds write commands (the dequeue script writes) for 300 ms.
  await (await connect()).client("PAUSE", 300, "WRITE");
  const abort = new AbortController();
  const dequeued = queue.dequeue(abort.signal);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const began = performance.now();
  abort.abort();
  expect(await dequeued).toBeNull();
  expect(performance.now() - began).toBeLessThan(50);
  // Once the pause ends, the script runs, takes the item, and the queue puts it back.
  await new Promise((resolve) => setTimeout(resolve, 400));
  expect(await queue.size()).toBe(1);
  expect((await queue.dequeue(new AbortController().signal))?.runId).toBe("kept");
  await queue.close();
});
