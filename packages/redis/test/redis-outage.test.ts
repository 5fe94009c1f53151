import { createSystemClock } from "@stepwise/engine";
import type { Redis } from "ioredis";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { connectRedis } from "../src/connect-redis.js";
import { createRedisQueue } from "../src/create-redis-queue.js";
import { type PrivateRedisServer, startPrivateRedisServer } from "../src/private-redis-server.js";
import { ManualClock } from "./manual-clock.js";
import { recordScriptCalls } from "./script-calls.js";

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
  const redis = await connect();
  const scripts = recordScriptCalls(redis);
  // Polling off: each look the waiter makes is one the timer or a notice caused.
  const queue = createRedisQueue({ redis, clock, pollIntervalMs: 3_600_000 });
  const abort = new AbortController();
  await queue.enqueue([{ runId: "delayed", functionId: "fn", availableAt: clock.now() + 60_000 }]);
  let got: string | null | undefined;
  const waiting = queue.dequeue(abort.signal).then((next) => {
    got = next?.runId ?? null;
  });
  // It looked, found the item not yet due, and armed its timer for it.
  await vi.waitFor(() => expect(clock.pendingTimers()).toEqual([clock.now() + 60_000]));
  expect(scripts.dequeues()).toBe(1);

  await (await connect()).flushall();
  expect(await queue.size()).toBe(0);
  expect(await queue.nextAvailableAt()).toBeNull();
  // The timer armed for the lost item fires and finds nothing; the waiter sleeps on.
  clock.advance(60_000);
  await vi.waitFor(() => expect(scripts.dequeues()).toBe(2));
  expect(got).toBeUndefined();
  expect(clock.pendingTimers()).toEqual([]);

  // What the reconciler would do: enqueue the run again.
  await queue.enqueue([{ runId: "delayed", functionId: "fn", availableAt: clock.now() }]);
  await vi.waitFor(() => expect(got).toBe("delayed"));
  await waiting;
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
  const producerRedis = await connect();
  const consumerRedis = await connect();
  const scripts = recordScriptCalls(consumerRedis);
  const producer = createRedisQueue({ redis: producerRedis, clock });
  const consumer = createRedisQueue({ redis: consumerRedis, clock, pollIntervalMs: 200 });
  const abort = new AbortController();
  let got: string | null | undefined;
  let failure: unknown;
  const waiting = consumer.dequeue(abort.signal).then(
    (next) => {
      got = next?.runId ?? null;
    },
    (error: unknown) => {
      failure = error;
    },
  );
  // The consumer looked, found nothing and is asleep before Redis goes away.
  await vi.waitFor(() => expect(scripts.dequeues()).toBe(1));

  await server.kill();
  // Both clients saw the connection drop: what follows happens across a real outage.
  await vi.waitFor(() => expect([producerRedis.status, consumerRedis.status]).not.toContain("ready"));
  expect(failure).toBeUndefined();
  await server.start();
  // The producer's command waits for its reconnection rather than failing.
  await producer.enqueue([{ runId: "after-restart", functionId: "fn", availableAt: clock.now() }]);
  await vi.waitFor(() => expect({ got, failure }).toEqual({ got: "after-restart", failure: undefined }), { timeout: 10_000 });
  await waiting;
  await producer.close();
  await consumer.close();
});

it("resolves an aborted dequeue at once even while Redis does not answer, and puts back what its late script took", async () => {
  const clock = createSystemClock();
  const redis = await connect();
  const scripts = recordScriptCalls(redis);
  const queue = createRedisQueue({ redis, clock });
  await queue.enqueue([{ runId: "kept", functionId: "fn", availableAt: clock.now() }]);
  expect(scripts.enqueues()).toBe(1);
  // Holds write commands (the dequeue script writes) until UNPAUSE: longer than this test.
  const admin = await connect();
  await admin.client("PAUSE", 600_000, "WRITE");
  const abort = new AbortController();
  let result: unknown = "pending";
  const dequeued = queue.dequeue(abort.signal).then((next) => {
    result = next;
  });
  // Its script call is sent (and held by the pause).
  await vi.waitFor(() => expect(scripts.calls.filter((call) => call.keys.length === 6)).toHaveLength(1));
  abort.abort();
  // Answered while Redis still holds the script: the abort did not wait for Redis.
  await vi.waitFor(() => expect(result).toBeNull());
  await dequeued;
  expect(scripts.dequeues()).toBe(0);
  // Once the pause ends, the script runs, takes the item, and the queue puts it back (one more enqueue call).
  await admin.client("UNPAUSE");
  await vi.waitFor(() => expect(scripts.enqueues()).toBe(2));
  expect(scripts.dequeues()).toBe(1);
  expect(await queue.size()).toBe(1);
  expect((await queue.dequeue(new AbortController().signal))?.runId).toBe("kept");
  await queue.close();
});
