// Measurements shared by the embedded and the server bench, so both report the same figures.
import type { AnyStepwise } from "@stepwise/core";
import type { Engine } from "@stepwise/engine";
import type pg from "pg";
import { median } from "./stats.js";

/**
 * Defines the bench's functions on `stepwise`: `start-latency` (records when its handler
 * starts) and `chain-1|10|100` (that many sequential one-line steps). Answers the start times.
 */
export function defineBenchFunctions(stepwise: AnyStepwise): Map<number, number> {
  const starts = new Map<number, number>();
  stepwise.createFunction({ id: "start-latency" }, { event: "bench/start" }, async ({ event }) => {
    starts.set(event.data["i"] as number, performance.now());
  });
  for (const steps of [1, 10, 100]) {
    stepwise.createFunction({ id: `chain-${steps}` }, { event: `bench/chain-${steps}` }, async ({ step }) => {
      let total = 0;
      for (let index = 0; index < steps; index++) total += await step.run(`step-${index}`, () => index);
      return total;
    });
  }
  return starts;
}

/** A floor: one single-row INSERT commit through the pool's connect → query → release path. */
export async function createInsertFloor(pool: pg.Pool): Promise<{ samples: number[]; measure(rounds: number): Promise<void> }> {
  const setup = await pool.connect();
  await setup.query("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, run_id text NOT NULL, payload jsonb)");
  setup.release();
  const samples: number[] = [];
  return {
    samples,
    async measure(rounds) {
      for (let index = 0; index < rounds; index++) {
        const started = performance.now();
        const client = await pool.connect();
        await client.query("INSERT INTO bench_floor (run_id, payload) VALUES ($1, $2::jsonb)", ["run_x", JSON.stringify(index)]);
        client.release();
        samples.push(performance.now() - started);
      }
    },
  };
}

/** Event → run start latencies and median run times of 1/10/100-step chains. */
export interface EngineFigures {
  latencies: number[];
  t1: number;
  t10: number;
  t100: number;
}

/**
 * Measures `engine` in `rounds` rounds, calling `floors()` at the start of each so that machine
 * noise hits the engine and its floors alike.
 */
export async function measureEngine(options: {
  engine: Engine;
  starts: Map<number, number>;
  rounds: number;
  eventsPerRound: number;
  floors: (round: number) => Promise<void>;
}): Promise<EngineFigures> {
  const { engine, starts } = options;
  for (const steps of [1, 10, 100]) await engine.invoke(`chain-${steps}`, {}); // warm-up
  const latencies: number[] = [];
  const chainTimes = new Map<number, number[]>([
    [1, []],
    [10, []],
    [100, []],
  ]);
  for (let round = 0; round < options.rounds; round++) {
    await options.floors(round);
    for (let index = 0; index < options.eventsPerRound; index++) {
      const i = round * 1000 + index;
      const sent = performance.now();
      const { ids } = await engine.send({ name: "bench/start", data: { i } });
      const [run] = await engine.runsForEvent(ids[0] as string);
      await engine.waitForRun(run?.id as string);
      latencies.push((starts.get(i) as number) - sent);
    }
    for (const [steps, times] of chainTimes) {
      for (let index = 0; index < (steps === 100 ? 2 : 5); index++) {
        const started = performance.now();
        await engine.invoke(`chain-${steps}`, {});
        times.push(performance.now() - started);
      }
    }
  }
  const [t1, t10, t100] = [1, 10, 100].map((steps) => median(chainTimes.get(steps) as number[])) as [number, number, number];
  return { latencies, t1, t10, t100 };
}
