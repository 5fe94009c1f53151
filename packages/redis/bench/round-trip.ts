/**
 * Wake-up latency of the Redis queue across two connections (two "processes"): an available
 * item enqueued by instance A while instance B waits in `dequeue`, timed from A's `enqueue`
 * call to B's `dequeue` resolving; next to a PING on A's connection, as the unit of one round
 * trip. Also the 10,000-delayed-items enqueue and a dequeue among them.
 *
 * Run from the repository root (REDIS_URL selects the server):
 *   node --conditions=@stepwise/source --import tsx packages/redis/bench/round-trip.ts
 */
import { performance } from "node:perf_hooks";
import { createSystemClock } from "@stepwise/engine";
import { connectRedis } from "../src/connect-redis.js";
import { createRedisQueue } from "../src/create-redis-queue.js";
import { createTestRedis } from "../src/testing.js";

const ROUNDS = 1000;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] as number;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const testRedis = await createTestRedis();
const other = await connectRedis(testRedis.url);
const clock = createSystemClock();
const a = createRedisQueue({ redis: testRedis.redis, clock, prefix: testRedis.prefix });
// A poll interval far above the figures: a wake-up measured here comes from the notice.
const b = createRedisQueue({ redis: other, clock, prefix: testRedis.prefix, pollIntervalMs: 60_000, ownsConnection: true });
const abort = new AbortController();

try {
  // Warm up: scripts loaded, subscription made, JIT.
  for (let index = 0; index < 50; index++) {
    const waiting = b.dequeue(abort.signal);
    await a.enqueue([{ runId: `warm-${index}`, functionId: "fn", availableAt: clock.now() }]);
    await waiting;
    await testRedis.redis.ping();
  }

  // Interleaved, so that both figures see the same machine state (CPU frequency, neighbours).
  const wake: number[] = [];
  const ping: number[] = [];
  for (let index = 0; index < ROUNDS; index++) {
    let started = performance.now();
    await testRedis.redis.ping();
    ping.push(performance.now() - started);

    const waiting = b.dequeue(abort.signal);
    await pause(2); // B looks, finds nothing, and sleeps
    started = performance.now();
    await a.enqueue([{ runId: `run-${index}`, functionId: "fn", availableAt: clock.now() }]);
    const item = await waiting;
    wake.push(performance.now() - started);
    if (item?.runId !== `run-${index}`) throw new Error(`got ${item?.runId}, expected run-${index}`);
  }

  const direct: number[] = [];
  for (let index = 0; index < ROUNDS; index++) {
    await a.enqueue([{ runId: `direct-${index}`, functionId: "fn", availableAt: clock.now() }]);
    const started = performance.now();
    await a.dequeue(abort.signal);
    direct.push(performance.now() - started);
  }

  const delayed = Array.from({ length: 10_000 }, (_, index) => ({
    runId: `delayed-${index}`,
    functionId: "fn",
    availableAt: clock.now() + 3_600_000 + ((index * 7919) % 10_000) * 1000,
  }));
  let started = performance.now();
  await a.enqueue(delayed);
  const bulkMs = performance.now() - started;
  const among: number[] = [];
  for (let index = 0; index < 200; index++) {
    await a.enqueue([{ runId: `among-${index}`, functionId: "fn", availableAt: clock.now() }]);
    started = performance.now();
    await a.dequeue(abort.signal);
    among.push(performance.now() - started);
  }

  const format = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
  console.log(`rounds: ${ROUNDS}, server: ${testRedis.url}`);
  console.log(`enqueue in A -> dequeued in B (wake-up): median ${format(median(wake))}, p99 ${format(percentile(wake, 0.99))}`);
  console.log(`PING on A's connection:               median ${format(median(ping))}, p99 ${format(percentile(ping, 0.99))}`);
  console.log(`ratio wake-up / PING (medians):       ${(median(wake) / median(ping)).toFixed(1)}`);
  console.log(`dequeue of an available item:         median ${format(median(direct))}`);
  console.log(`enqueue of 10,000 delayed items:      ${bulkMs.toFixed(0)} ms (one call, ${Math.ceil(10_000 / 500)} script calls)`);
  console.log(`dequeue among 10,000 delayed items:   median ${format(median(among))}`);
} finally {
  abort.abort();
  await b.close();
  await a.close();
  await testRedis.close();
}
