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

/** Event → run start latencies, median run times of 1/10/100-step chains, and per-step ratios. */
export interface EngineFigures {
  latencies: number[];
  t1: number;
  t10: number;
  t100: number;
  /**
   * Per round: (T10 − T1)/9 and (T100 − T10)/90 of that round's chains, each divided by that
   * round's floor. Pairing a round's figures with its own floor keeps the drift of a shared
   * machine (minutes of faster or slower disk) out of the ratio. The floor of a round is the
   * mean of its back-to-back INSERT commits, like for like: a per-step figure is a chain's
   * extra time over its extra steps, a mean that carries every slow commit (a median of
   * single commits would not, and the WAL flush's tail is long on shared disks).
   */
  ratios10: number[];
  ratios100: number[];
}

/**
 * Measures `engine` in `rounds` rounds; each starts and ends with `floor(round)`, which measures
 * the floor's back-to-back commits and answers their mean: the round's floor is the mean of the
 * two, so that machine noise (and its drift during the round) hits the engine and its floor alike.
 */
export async function measureEngine(options: {
  engine: Engine;
  starts: Map<number, number>;
  rounds: number;
  eventsPerRound: number;
  floor: (round: number) => Promise<number>;
}): Promise<EngineFigures> {
  const { engine, starts } = options;
  for (const steps of [1, 10, 100]) await engine.invoke(`chain-${steps}`, {}); // warm-up
  const latencies: number[] = [];
  const all = new Map<number, number[]>([
    [1, []],
    [10, []],
    [100, []],
  ]);
  const ratios10: number[] = [];
  const ratios100: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const floorBefore = await options.floor(round);
    for (let index = 0; index < options.eventsPerRound; index++) {
      const i = round * 1000 + index;
      const sent = performance.now();
      const { ids } = await engine.send({ name: "bench/start", data: { i } });
      const [run] = await engine.runsForEvent(ids[0] as string);
      await engine.waitForRun(run?.id as string);
      latencies.push((starts.get(i) as number) - sent);
    }
    const round1: number[] = [];
    const round10: number[] = [];
    const round100: number[] = [];
    // Interleaved, so that a slow second hits the three chain lengths alike.
    for (let index = 0; index < 3; index++) {
      for (const [steps, times] of [
        [1, round1],
        [10, round10],
        [100, round100],
      ] as const) {
        const started = performance.now();
        await engine.invoke(`chain-${steps}`, {});
        times.push(performance.now() - started);
      }
    }
    const floor = (floorBefore + (await options.floor(round))) / 2;
    ratios10.push((median(round10) - median(round1)) / 9 / floor);
    ratios100.push((median(round100) - median(round10)) / 90 / floor);
    all.get(1)?.push(...round1);
    all.get(10)?.push(...round10);
    all.get(100)?.push(...round100);
  }
  const [t1, t10, t100] = [1, 10, 100].map((steps) => median(all.get(steps) as number[])) as [number, number, number];
  return { latencies, t1, t10, t100, ratios10, ratios100 };
}
