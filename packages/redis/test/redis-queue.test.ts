import { type Clock, createSystemClock, type QueueItem } from "@stepwise/engine";
import { Redis } from "ioredis";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { connectRedis } from "../src/connect-redis.js";
import { createRedisQueue } from "../src/create-redis-queue.js";
import { freePort } from "../src/private-redis-server.js";
import { RedisUnavailableError } from "../src/redis-unavailable-error.js";
import { createTestRedis, type TestRedis } from "../src/testing.js";
import { ManualClock } from "./manual-clock.js";
import { recordScriptCalls } from "./script-calls.js";

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

/** A queue on a connection of its own, like a queue in another process, and the script calls it makes. */
async function otherProcessQueue(clock: Clock = createSystemClock(), pollIntervalMs?: number) {
  const redis = await connectRedis(testRedis.url);
  const scripts = recordScriptCalls(redis);
  const queue = createRedisQueue({ redis, clock, prefix: testRedis.prefix, ownsConnection: true, pollIntervalMs });
  cleanups.push(() => queue.close());
  return { queue, scripts };
}

function localQueue(clock: Clock = createSystemClock(), pollIntervalMs?: number) {
  const queue = createRedisQueue({ redis: testRedis.redis, clock, prefix: testRedis.prefix, pollIntervalMs });
  cleanups.push(() => queue.close());
  return queue;
}

/** Longer than any test: a waiting dequeue that wakes did not wake by polling. */
const NEVER_POLL = 3_600_000;

const item = (runId: string, availableAt: number, priority?: number): QueueItem => ({ runId, functionId: "fn", availableAt, priority });

it("delivers each of 500 items exactly once to two instances racing for them", async () => {
  const clock = createSystemClock();
  const a = localQueue(clock);
  const { queue: b } = await otherProcessQueue(clock);
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

it("wakes a dequeue waiting in another instance on the enqueue's notice (not by polling)", async () => {
  // b polls once an hour and its clock never moves (no timer fires): only a's notice can wake it.
  const clock = new ManualClock();
  const a = localQueue(clock);
  const { queue: b, scripts } = await otherProcessQueue(clock, NEVER_POLL);
  const abort = new AbortController();
  cleanups.push(async () => abort.abort());
  for (let round = 0; round < 3; round++) {
    const looks = scripts.dequeues();
    let taken: string | undefined;
    const waiting = b.dequeue(abort.signal).then((next) => {
      taken = next?.runId;
    });
    // b subscribed, looked once, found nothing and fell asleep.
    await vi.waitFor(() => expect(scripts.dequeues()).toBe(looks + 1));
    expect(taken).toBeUndefined();
    await a.enqueue([item(`run-${round}`, clock.now())]);
    await vi.waitFor(() => expect(taken).toBe(`run-${round}`), { timeout: 5000 });
    await waiting;
    // One more look, the one the notice caused: no retries, no spinning.
    expect(scripts.dequeues()).toBe(looks + 2);
  }
});

it("enqueues 10,000 delayed items quickly and keeps nextAvailableAt and the order right", async () => {
  const clock = new ManualClock();
  const scripts = recordScriptCalls(testRedis.redis);
  // Only the timer on `clock` can wake its waiting dequeue.
  const queue = localQueue(clock, NEVER_POLL);
  const start = clock.now();
  // Times spread over ~3 hours in a scrambled order; the earliest is run-0 at start + 60 s.
  const items = Array.from({ length: 10_000 }, (_, index) => item(`run-${index}`, start + 60_000 + ((index * 7919) % 10_000) * 1000));
  await queue.enqueue(items);
  // Quick because batched: one script call per 500 items, not a round trip per item.
  expect(scripts.enqueues()).toBe(10_000 / 500);
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
  // It looked, found only delayed items, and armed its timer for the earliest.
  await vi.waitFor(() => expect(clock.pendingTimers()).toEqual([start + 60_000]));
  expect(got).toBeUndefined();
  clock.advance(60_000);
  await vi.waitFor(() => expect(got).toBe("run-0"));
  await waiting;
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
  const scripts = recordScriptCalls(testRedis.redis);
  // No poll and no timer: nothing but close() can end these waits.
  const queue = createRedisQueue({ redis: testRedis.redis, clock: new ManualClock(), prefix: testRedis.prefix, pollIntervalMs: NEVER_POLL });
  const abort = new AbortController();
  const results: Array<QueueItem | null> = [];
  const waiting = [queue.dequeue(abort.signal), queue.dequeue(abort.signal)].map((dequeued) => dequeued.then((result) => results.push(result)));
  // Both looked, found nothing and fell asleep.
  await vi.waitFor(() => expect(scripts.dequeues()).toBe(2));
  expect(results).toEqual([]);
  await queue.close();
  await vi.waitFor(() => expect(results).toEqual([null, null]));
  await Promise.all(waiting);
  expect(await queue.dequeue(abort.signal)).toBeNull();
  // Without a look at Redis.
  expect(scripts.calls).toHaveLength(2);
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

it("sends the enqueues of one turn of the event loop as one script call, and those of a later turn as another", async () => {
  const { queue, scripts } = await otherProcessQueue();
  const now = Date.now();
  // 40 enqueues in one turn (the ingests one store commit answers): one call.
  await Promise.all(Array.from({ length: 40 }, (_, index) => queue.enqueue([item(`turn-${index}`, now)])));
  expect(scripts.enqueues()).toBe(1);
  // One enqueue, then 25 in the next turn while its call is in flight: one call each turn.
  const first = queue.enqueue([item("first", now)]);
  await new Promise((resolve) => setImmediate(resolve));
  const meanwhile = Array.from({ length: 25 }, (_, index) => queue.enqueue([item(`meanwhile-${index}`, now), item(`turn-${index}`, now)]));
  await Promise.all([first, ...meanwhile]);
  expect(scripts.enqueues()).toBe(3);
  expect(await queue.size()).toBe(40 + 1 + 25);
  // Each item once, whichever call carried it.
  const taken = (await queue.dequeueMany(AbortSignal.timeout(5000), 100)).map((entry) => entry.runId);
  expect(new Set(taken).size).toBe(taken.length);
  expect(taken.length).toBe(66);
});

it("refuses an item without a finite time before it reaches Redis, and fails no other caller's items", async () => {
  const { queue, scripts } = await otherProcessQueue();
  const good = queue.enqueue([item("good", Date.now())]);
  await expect(queue.enqueue([item("bad", Number.NaN)])).rejects.toThrow(/availableAt must be a finite number \(run bad\)/);
  await good;
  expect(scripts.enqueues()).toBe(1);
  expect(await queue.size()).toBe(1);
});
