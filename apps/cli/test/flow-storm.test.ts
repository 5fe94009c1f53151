import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createTestPostgres, type TestPostgres } from "@stepwise/postgres/testing";
import { createTestRedis, type TestRedis } from "@stepwise/redis/testing";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Cluster, runsByStatus, startCluster, waitForCompleted } from "./helpers/cluster.js";

// CI size; `pnpm test:soak` (STEPWISE_SOAK=1) runs 5,000 runs, a kill every ~3 s.
const soak = process.env["STEPWISE_SOAK"] === "1";
const RUNS = Number(process.env["STEPWISE_STORM_RUNS"] ?? (soak ? 5000 : 600));
const KILL_EVERY_MS = soak ? 3000 : 1500;
const KEYS = Array.from({ length: 10 }, (_, index) => `k${index}`);
/** The function's `concurrency.limit` (fixtures/storm-functions.ts). */
const LIMIT = 5;
/** Short, so that a killed worker's slots expire within the test; the sampler runs meanwhile. */
const LEASE_MS = 3000;
/** Runs per process at once: 4 executing processes (start and 3 workers) could run 64, more than the 10 keys × 5 allow. */
const CONCURRENCY = 16;
const SAMPLE_EVERY_MS = 50;
/** A CI-size storm takes about 20 s, 5,000 runs under 2 min; the margin is for a loaded machine. */
const COMPLETE_WITHIN_MS = Math.max(100_000, RUNS * 100);

/** The Redis key of a slot key's leases (see packages/redis/src/queue-keys.ts). */
function slotKey(prefix: string, key: string): string {
  return `{${prefix}}:queue:slot:${createHash("sha1").update(key).digest("hex")}`;
}

/**
 * Every 50 ms, from this process: step bodies executing per key (rows of `storm_inflight`,
 * leaving out workers killed already, whose rows stay though they execute nothing), and the
 * unexpired slot leases per key in Redis.
 */
function startSampler(options: { client: pg.Client; redis: TestRedis; killed: Set<number> }) {
  const maxInFlight = new Map<string, number>(KEYS.map((key) => [key, 0]));
  const maxSlots = new Map<string, number>(KEYS.map((key) => [key, 0]));
  const slotKeys = KEYS.map((key) => slotKey(options.redis.prefix, `storm-test/storm-work#0:${key}`));
  let samples = 0;
  let missedTicks = 0;
  let stopped = false;
  const loop = (async () => {
    const start = Date.now();
    let tick = 0;
    while (!stopped) {
      const [inFlight, slots] = await Promise.all([
        options.client.query<{ key: string; count: number }>(
          "SELECT key, count(*)::int AS count FROM storm_inflight WHERE NOT (pid = ANY($1::int[])) GROUP BY key",
          [[...options.killed]],
        ),
        (async () => {
          const now = Date.now();
          const pipeline = options.redis.redis.pipeline();
          for (const key of slotKeys) pipeline.zcount(key, `(${now}`, "+inf");
          return ((await pipeline.exec()) ?? []).map(([error, count]) => {
            if (error) throw error;
            return count as number;
          });
        })(),
      ]);
      samples++;
      for (const row of inFlight.rows) maxInFlight.set(row.key, Math.max(maxInFlight.get(row.key) ?? 0, row.count));
      KEYS.forEach((key, index) => {
        maxSlots.set(key, Math.max(maxSlots.get(key) ?? 0, slots[index] ?? 0));
      });
      // The next 50 ms tick; ticks that a slow sample overran are counted, not made up.
      const next = Math.max(tick + 1, Math.ceil((Date.now() - start) / SAMPLE_EVERY_MS));
      missedTicks += next - tick - 1;
      tick = next;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + tick * SAMPLE_EVERY_MS - Date.now())));
    }
  })();
  return {
    maxInFlight,
    maxSlots,
    get samples() {
      return samples;
    },
    get missedTicks() {
      return missedTicks;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Keys under `pattern`, by SCAN. */
async function scanKeys(redis: TestRedis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== "0");
  return found;
}

describe("keyed concurrency limit across worker processes under kill -9", () => {
  const functions = fileURLToPath(new URL("./fixtures/storm-functions.ts", import.meta.url));
  let database: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let cluster: Cluster | undefined;
  let sampler: ReturnType<typeof startSampler> | undefined;
  let client: pg.Client | undefined;
  let killer: ReturnType<typeof setInterval> | undefined;
  /** Worker replacements under way, each settled before the cluster stops (else one could start after). */
  const replacements: Array<Promise<void>> = [];

  afterAll(async () => {
    clearInterval(killer);
    await Promise.allSettled(replacements);
    await sampler?.stop();
    await cluster?.stop();
    await client?.end();
    await redis?.close();
    await database?.close();
  });

  it(`runs ${RUNS} runs over ${KEYS.length} keys with at most ${LIMIT} executing per key, while workers are killed with -9; none lost, no slot left held`, {
    timeout: COMPLETE_WITHIN_MS + 50_000,
  }, async () => {
    database = await createTestPostgres();
    redis = await createTestRedis();
    await database.pool.query("CREATE TABLE storm_inflight (id uuid PRIMARY KEY, run_id text NOT NULL, key text NOT NULL, pid int NOT NULL)");
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    cluster = await startCluster({
      functions,
      databaseUrl: database.url,
      redisUrl: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379",
      redisPrefix: redis.prefix,
      env: { STEPWISE_STORM_DATABASE_URL: database.url },
      workers: 3,
      concurrency: CONCURRENCY,
      leaseMs: LEASE_MS,
    });
    const running = cluster;
    const killed = new Set<number>();
    sampler = startSampler({ client, redis, killed });

    await running.send(Array.from({ length: RUNS }, (_, n) => ({ name: "storm/start", data: { n, key: KEYS[n % KEYS.length] } })));
    // A kill every KILL_EVERY_MS, not waiting for the replacement (a worker takes seconds to
    // start on a loaded machine), but with at most two replacements starting at once, so that
    // one of the three workers (and the server's) always keeps executing.
    let kills = 0;
    let lastKillAt = 0;
    let starting = 0;
    killer = setInterval(() => {
      if (starting >= 2) return;
      starting++;
      const replacing = running.replaceRandomWorker((pid) => {
        // Recorded before the signal: from then on the victim's rows are no executions.
        killed.add(pid);
        kills++;
        lastKillAt = Date.now();
      });
      replacing.catch(() => {}).finally(() => starting--);
      replacements.push(replacing);
    }, KILL_EVERY_MS);
    await waitForCompleted(database.pool, RUNS, COMPLETE_WITHIN_MS);
    const completedAt = Date.now();
    clearInterval(killer);
    await Promise.all(replacements);
    await sampler.stop();

    const inFlightMax = Object.fromEntries(sampler.maxInFlight);
    const slotsMax = Object.fromEntries(sampler.maxSlots);
    console.log(
      `storm test: ${RUNS} runs over ${KEYS.length} keys, ${kills} kill -9s, ${sampler.samples} samples every ${SAMPLE_EVERY_MS} ms ` +
        `(${sampler.missedTicks} ticks overrun), max executing per key ${JSON.stringify(inFlightMax)}, max slots held per key ${JSON.stringify(slotsMax)}`,
    );
    expect(kills).toBeGreaterThan(0);
    expect(sampler.samples).toBeGreaterThan(0);
    // Never more than the limit executing for one key; and the limit reached, so that the
    // bound is the limit's doing and not too little load.
    expect(Math.max(...Object.values(inFlightMax))).toBeLessThanOrEqual(LIMIT);
    expect(Math.max(...Object.values(inFlightMax))).toBe(LIMIT);
    expect(Math.max(...Object.values(slotsMax))).toBeLessThanOrEqual(LIMIT);
    expect(Math.max(...Object.values(slotsMax))).toBe(LIMIT);

    expect(await runsByStatus(database.pool)).toEqual({ completed: RUNS });
    const outputs = await database.pool.query<{ output: { n: number; total: number } }>("SELECT output FROM runs");
    expect(outputs.rows.every((row) => row.output.total === 1 + 2 + 3 + 4)).toBe(true);
    expect(new Set(outputs.rows.map((row) => row.output.n)).size).toBe(RUNS);
    // Rows left behind are bodies a kill interrupted: none of a live worker's.
    const left = await database.pool.query<{ pid: number }>("SELECT pid FROM storm_inflight");
    expect(left.rows.filter((row) => !killed.has(row.pid))).toEqual([]);
    expect(left.rows.length).toBeLessThanOrEqual(kills * CONCURRENCY);

    // Quiescence: once every killed worker's leases have run out (and a lease's worth after the
    // last completion, for live workers' releases), no slot is held and nothing waits.
    const quietAt = Math.max(lastKillAt, completedAt) + LEASE_MS + 500;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, quietAt - Date.now())));
    const now = Date.now();
    const leaseKeys = await scanKeys(redis, `{${redis.prefix}}:queue:slot:*`);
    const held: Record<string, number> = {};
    for (const key of leaseKeys) {
      const count = await redis.redis.zcount(key, `(${now}`, "+inf");
      if (count > 0) held[key] = count;
    }
    expect(held).toEqual({});
    const queue = `{${redis.prefix}}:queue:`;
    expect({
      blockedRuns: await redis.redis.hlen(`${queue}blocked-runs`),
      schedule: await redis.redis.zcard(`${queue}schedule`),
      items: await redis.redis.hlen(`${queue}items`),
      blocked: (await scanKeys(redis, `${queue}blocked:*`)).length,
    }).toEqual({ blockedRuns: 0, schedule: 0, items: 0, blocked: 0 });
    expect(await runsByStatus(database.pool)).toEqual({ completed: RUNS });
  });
});
