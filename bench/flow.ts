// Flow-control figures on Postgres + Redis: what a concurrency limit costs a single-step run,
// next to the same run without one, measured in the same run: event → result latency, and the
// Redis commands (from INFO commandstats) and script calls each run makes.
import { Stepwise } from "@stepwise/core";
import { createEngine, createSystemClock, type Engine } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisBus, createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";

type Redis = Awaited<ReturnType<typeof createTestRedis>>["redis"];

import { median, ms, percentile } from "./stats.js";

const quick = process.env["STEPWISE_BENCH_QUICK"] === "1";
const RUNS = quick ? 200 : 1000;
const ROUNDS = quick ? 2 : 5;

/** Calls per command from `INFO commandstats` (server-wide: the bench runs alone). */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info("commandstats");
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]));
  return calls;
}

function delta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [command, calls] of after) {
    const grown = calls - (before.get(command) ?? 0);
    if (grown > 0) out.set(command, grown);
  }
  return out;
}

/** Sequential runs of `event`: each sent, then awaited to its end. Answers the latencies (ms). */
async function runOneAtATime(engine: Engine, event: string, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const { ids } = await engine.send({ name: event, data: { n: index } });
    const [run] = await engine.runsForEvent(ids[0] as string);
    await engine.waitForRun(run?.id as string, { timeoutMs: 30_000 });
    latencies.push(performance.now() - started);
  }
  return latencies;
}

export async function benchFlow(): Promise<void> {
  const database = await createTestPostgres();
  const redisFixture = await createTestRedis();
  const { redis, prefix } = redisFixture;
  const clock = createSystemClock();
  const stepwise = new Stepwise({ id: "bench-flow" });
  stepwise.createFunction({ id: "unlimited" }, { event: "bench/unlimited" }, async ({ event, step }) => step.run("only", () => event.data["n"]));
  stepwise.createFunction({ id: "limited", concurrency: 10 }, { event: "bench/limited" }, async ({ event, step }) => step.run("only", () => event.data["n"]));
  // Two engines on one store: the default (runs of unlimited functions start in the process
  // that created them, with no queue round trip), and one that always goes through the queue,
  // where the comparison with a limited run is like for like.
  const engines = [true, false].map((eagerStart) => {
    const queue = createRedisQueue({ redis, clock, prefix: `${prefix}-${eagerStart ? "eager" : "queued"}` });
    const bus = createRedisBus({ redis, prefix: `${prefix}-${eagerStart ? "eager" : "queued"}` });
    // The reconciler is off: each engine would queue the other's due runs in its own queue.
    const engine = createEngine({
      store: createPostgresStore({ pool: database.pool }),
      queue,
      bus,
      clock,
      clients: [stepwise],
      eagerStart,
      reconcileIntervalMs: 86_400_000,
    });
    return { engine, queue, bus };
  });
  try {
    const cases = [
      { label: "unlimited, eager start (the default)", engine: engines[0]?.engine as Engine, event: "bench/unlimited" },
      { label: "unlimited, through the queue", engine: engines[1]?.engine as Engine, event: "bench/unlimited" },
      { label: "concurrency-limited (limit 10), through the queue", engine: engines[1]?.engine as Engine, event: "bench/limited" },
      { label: "concurrency-limited (limit 10), eager start (the default)", engine: engines[0]?.engine as Engine, event: "bench/limited" },
    ];
    for (const { engine } of engines) await engine.start();
    // Warm up: prepared statements, script cache, connections.
    for (const entry of cases) await runOneAtATime(entry.engine, entry.event, 50);
    const latencies = cases.map(() => [] as number[]);
    const commands = cases.map(() => new Map<string, number>());
    // Interleaved rounds, so that the machine's noise falls on every case alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, entry] of cases.entries()) {
        const before = await commandCalls(redis);
        latencies[index]?.push(...(await runOneAtATime(entry.engine, entry.event, RUNS / ROUNDS)));
        const grown = delta(before, await commandCalls(redis));
        for (const [command, calls] of grown) commands[index]?.set(command, (commands[index]?.get(command) ?? 0) + calls);
      }
    }
    console.log(`\nStepwise bench, flow control on Postgres + Redis: single-step runs one at a time (${RUNS} each), Node ${process.version}`);
    console.log("| case | event → result p50 | p99 | Redis commands per run | of which script calls (EVALSHA) |");
    console.log("|---|---|---|---|---|");
    const p50s: number[] = [];
    for (const [index, entry] of cases.entries()) {
      const samples = latencies[index] as number[];
      const used = commands[index] as Map<string, number>;
      // INFO itself is counted once per measure; leave it out.
      used.delete("info");
      const total = [...used.values()].reduce((sum, calls) => sum + calls, 0);
      const scripts = (used.get("evalsha") ?? 0) + (used.get("eval") ?? 0);
      p50s.push(median(samples));
      console.log(
        `| ${entry.label} | ${ms(median(samples))} | ${ms(percentile(samples, 99))} | ${(total / RUNS).toFixed(2)} | ${(scripts / RUNS).toFixed(2)} |`,
      );
    }
    const [eager, queued, limited, limitedEager] = p50s as [number, number, number, number];
    console.log(`| limited vs unlimited through the queue (p50) | ${(limited / queued).toFixed(2)}× | | | |`);
    console.log(`| limited vs unlimited, both eager start (p50) | ${(limitedEager / eager).toFixed(2)}× | | | |`);
    for (const [index, entry] of cases.entries()) {
      const used = [...(commands[index] as Map<string, number>).entries()].sort((a, b) => b[1] - a[1]);
      console.log(`  ${entry.label}: ${used.map(([command, calls]) => `${command} ${(calls / RUNS).toFixed(2)}`).join(", ")} per run`);
    }
  } finally {
    for (const { engine, queue, bus } of engines) {
      await engine.stop();
      await queue.close();
      await bus.close();
    }
    await redisFixture.close();
    await database.close();
  }
}
