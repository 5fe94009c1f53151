import { performance } from "node:perf_hooks";
import { type Clock, createSystemClock, type QueueItem } from "@stepwise/engine";
import { Redis } from "ioredis";
import { afterEach, beforeEach, expect, it } from "vitest";
import { connectRedis } from "../src/connect-redis.js";
import { createRedisQueue } from "../src/create-redis-queue.js";
import { freePort } from "../src/private-redis-server.js";
import { RedisUnavailableError } from "../src/redis-unavailable-error.js";
import { createTestRedis, type TestRedis } from "../src/testing.js";
import { ManualClock } from "./manual-clock.js";

// What the queue contract (packages/testing) does not cover: several instances on several
// connections, as several worker processes would be, volume, and the key layout.

let testRedis: TestRedis;
let cleanups: Array<() => Promise<unknown>>;
beforeEach(async () => {
  testRedis = await createTestRedis();
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await testRedis.close();
});

/** A queue on a connection of its own, like a queue in another process. */
async function otherProcessQueue(clock: Clock = createSystemClock(), pollIntervalMs?: number) {
  const redis = await connectRedis(testRedis.url);
  const queue = createRedisQueue({ redis, clock, prefix: testRedis.prefix, ownsConnection: true, pollIntervalMs });
  cleanups.push(() => queue.close());
  return queue;
}

function localQueue(clock: Clock = createSystemClock()) {
  const queue = createRedisQueue({ redis: testRedis.redis, clock, prefix: testRedis.prefix });
  cleanups.push(() => queue.close());
  return queue;
}

const item = (runId: string, availableAt: number, priority?: number): QueueItem => ({ runId, functionId: "fn", availableAt, priority });

it("delivers each of 500 items exactly once to two instances racing for them", async () => {
  const clock = createSystemClock();
  const a = localQueue(clock);
  const b = await otherProcessQueue(clock);
  const abort = new AbortController();
  const taken = new Map<string, string[]>();
  let count = 0;
  const worker = async (name: string, queue: typeof a) => {
    for (;;) {
      const next = await queue.dequeue(abort.signal);
      if (!next) return;
      taken.set(next.runId, [...(taken.get(next.runId) ?? []), name]);
      if (++count === 500) abort.abort();
    }
  };
  const workers = [worker("a1", a), worker("a2", a), worker("a3", a), worker("b1", b), worker("b2", b), worker("b3", b)];
  // Enqueued by both instances, while the workers wait, in batches.
  for (let batch = 0; batch < 10; batch++) {
    const items = Array.from({ length: 50 }, (_, index) => item(`run-${batch * 50 + index}`, clock.now()));
    await (batch % 2 === 0 ? a : b).enqueue(items);
  }
  await Promise.all(workers);
  expect(taken.size).toBe(500);
  expect([...taken.values()].filter((takers) => takers.length !== 1)).toEqual([]);
  const byInstance = [...taken.values()].flat().reduce((counts, name) => counts.add(name[0] as string), new Set<string>());
  expect(byInstance).toEqual(new Set(["a", "b"]));
  expect(await a.size()).toBe(0);
});

it("wakes a dequeue waiting in another instance within 100 ms of an enqueue (not by polling)", async () => {
  const clock = createSystemClock();
  const a = localQueue(clock);
  const b = await otherProcessQueue(clock, 10_000);
  const abort = new AbortController();
  cleanups.push(async () => abort.abort());
  for (let round = 0; round < 3; round++) {
    const waiting = b.dequeue(abort.signal);
    // Let b subscribe, look, and fall asleep.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await a.enqueue([item(`run-${round}`, clock.now())]);
    expect((await waiting)?.runId).toBe(`run-${round}`);
    expect(performance.now() - started).toBeLessThan(100);
  }
});

it("enqueues 10,000 delayed items quickly and keeps nextAvailableAt and the order right", async () => {
  const clock = new ManualClock();
  const queue = localQueue(clock);
  const start = clock.now();
  // Times spread over ~3 hours in a scrambled order; the earliest is run-0 at start + 60 s.
  const items = Array.from({ length: 10_000 }, (_, index) => item(`run-${index}`, start + 60_000 + ((index * 7919) % 10_000) * 1000));
  const began = performance.now();
  await queue.enqueue(items);
  const enqueueMs = performance.now() - began;
  expect(enqueueMs).toBeLessThan(3000);
  expect(await queue.size()).toBe(10_000);
  expect(await queue.nextAvailableAt()).toBe(start + 60_000);

  // Enqueueing them all again later keeps the earlier times.
  await queue.enqueue(items.map((entry) => ({ ...entry, availableAt: entry.availableAt + 5000 })));
  expect(await queue.size()).toBe(10_000);
  expect(await queue.nextAvailableAt()).toBe(start + 60_000);

  // An available item among them is answered at once; the delayed ones wait.
  const abort = new AbortController();
  cleanups.push(async () => abort.abort());
  await queue.enqueue([item("now", start)]);
  expect(await queue.nextAvailableAt()).toBe(start);
  expect((await queue.dequeue(abort.signal))?.runId).toBe("now");

  let got: string | undefined;
  const waiting = queue.dequeue(abort.signal).then((next) => {
    got = next?.runId;
  });
  await new Promise((resolve) => setTimeout(resolve, 30));
  expect(got).toBeUndefined();
  clock.advance(60_000);
  await waiting;
  expect(got).toBe("run-0");
  expect(await queue.nextAvailableAt()).toBe(start + 61_000);
});

it("orders items of one time by priority, any finite number, then by arrival", async () => {
  const clock = new ManualClock();
  const queue = localQueue(clock);
  const now = clock.now();
  const priorities = [0, -1.5, 2, 1e9, -1e9, 0.25, 2, -0];
  await queue.enqueue(priorities.map((priority, index) => item(`p${index}`, now, priority)));
  await queue.enqueue([item("later", now + 1, 1e12), item("none", now)]);
  clock.advance(1);
  const abort = new AbortController();
  const order: string[] = [];
  for (let index = 0; index < 10; index++) order.push((await queue.dequeue(abort.signal))?.runId as string);
  expect(order).toEqual(["p3", "p2", "p6", "p5", "p0", "p7", "none", "p1", "p4", "later"]);
});

it("gives back the item as enqueued, and a later enqueue of an earlier time replaces it whole", async () => {
  const clock = new ManualClock();
  const queue = localQueue(clock);
  await queue.enqueue([{ runId: "r", functionId: "first", availableAt: clock.now() + 500, priority: 1 }]);
  await queue.enqueue([{ runId: "r", functionId: "second", availableAt: clock.now() + 100 }]);
  expect(await queue.nextAvailableAt()).toBe(clock.now() + 100);
  clock.advance(100);
  expect(await queue.dequeue(new AbortController().signal)).toEqual({ runId: "r", functionId: "second", availableAt: clock.now() });
});

it("keeps every key under the queue's hash tag", async () => {
  const clock = new ManualClock();
  const queue = localQueue(clock);
  await queue.enqueue([item("a", clock.now()), item("b", clock.now() + 1000), item("c", clock.now(), 3)]);
  await queue.dequeue(new AbortController().signal);
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await testRedis.redis.scan(cursor, "MATCH", `*${testRedis.prefix}*`, "COUNT", 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== "0");
  expect(keys.sort()).toEqual([`{${testRedis.prefix}}:queue:arrivals`, `{${testRedis.prefix}}:queue:items`, `{${testRedis.prefix}}:queue:schedule`]);
  // The hash tag is the first {...} of the key: all three hash to one cluster slot.
  for (const key of keys) expect(key.match(/\{([^}]*)\}/)?.[1]).toBe(testRedis.prefix);
});

it("resolves waiting dequeues with null on close, and later ones at once", async () => {
  const queue = createRedisQueue({ redis: testRedis.redis, clock: createSystemClock(), prefix: testRedis.prefix });
  const abort = new AbortController();
  const waiting = [queue.dequeue(abort.signal), queue.dequeue(abort.signal)];
  await new Promise((resolve) => setTimeout(resolve, 50));
  const began = performance.now();
  await queue.close();
  expect(await Promise.all(waiting)).toEqual([null, null]);
  expect(performance.now() - began).toBeLessThan(100);
  expect(await queue.dequeue(abort.signal)).toBeNull();
  // The client is the caller's: still usable.
  expect(await testRedis.redis.ping()).toBe("PONG");
});

it("says which address it cannot reach when the client has no server", async () => {
  const port = await freePort();
  const redis = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {});
  const queue = createRedisQueue({ redis, clock: createSystemClock(), prefix: testRedis.prefix, ownsConnection: true });
  cleanups.push(() => queue.close());
  const message = new RegExp(`^cannot reach Redis at 127\\.0\\.0\\.1:${port}: .+; is it running\\? set REDIS_URL$`);
  await expect(queue.size()).rejects.toThrow(message);
  await expect(queue.enqueue([item("a", Date.now())])).rejects.toBeInstanceOf(RedisUnavailableError);
  await expect(queue.dequeue(new AbortController().signal)).rejects.toThrow(message);
});
