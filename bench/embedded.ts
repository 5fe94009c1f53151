// `pnpm bench`: figures for the embedded default (PGlite on disk + in-memory queue), each next
// to a floor measured in the same run on the same PGlite instance. Not a test: it prints.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Stepwise } from "@stepwise/core";
import { createEngine, createMemoryQueue, createSystemClock } from "@stepwise/engine";
import { createPostgresStore, migrate, openPglite } from "@stepwise/postgres";

const quick = process.env["STEPWISE_BENCH_QUICK"] === "1";
const dir = mkdtempSync(join(tmpdir(), "stepwise-bench-"));

import { createInsertFloor, defineBenchFunctions, measureEngine } from "./measure.js";
import { mean, median, ms, percentile, ratioRange } from "./stats.js";

/** The embedded default: PGlite on disk + in-memory queue, and `stepwise dev` start-up. */
export async function benchEmbedded(): Promise<void> {
  try {
    await main();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const database = await openPglite({ dataDir: join(dir, "pgdata") });
  await migrate(database.pool);
  const store = createPostgresStore({ pool: database.pool });
  const clock = createSystemClock();

  const stepwise = new Stepwise({ id: "bench" });
  const starts = defineBenchFunctions(stepwise);
  const engine = createEngine({ store, queue: createMemoryQueue({ clock }), clock, clients: [stepwise], recoverOnStart: "all" });
  await engine.start();

  // Floor: one single-row INSERT commit on the same PGlite, through the same path as the store
  // (the pool's single client is shared).
  const floorSamples = await createInsertFloor(database.pool);
  const floorRounds = quick ? 300 : 3000;
  await floorSamples.measure(floorRounds / 3); // warm-up
  floorSamples.samples.length = 0;
  const rounds = quick ? 3 : 30;
  const figures = await measureEngine({
    engine,
    starts,
    rounds,
    eventsPerRound: quick ? 10 : 30,
    floor: async () => {
      const before = floorSamples.samples.length;
      await floorSamples.measure(floorRounds / rounds);
      return mean(floorSamples.samples.slice(before));
    },
  });
  await engine.stop();

  const floor = median(floorSamples.samples);
  const { latencies, t1, t10, t100, ratios10, ratios100 } = figures;
  const perStep10 = (t10 - t1) / 9;
  const perStep100 = (t100 - t10) / 90;

  console.log(`\nStepwise bench, embedded default (PGlite 0.5.14 on disk, in-memory queue), Node ${process.version}`);
  console.log("| figure | value | vs floor |");
  console.log("|---|---|---|");
  console.log(`| floor: single-row INSERT commit (median of ${floorSamples.samples.length}) | ${ms(floor)} | 1.00× |`);
  console.log(
    `| floor: the same commits' mean (the per-step rows divide by each round's) | ${ms(mean(floorSamples.samples))} | ${(mean(floorSamples.samples) / floor).toFixed(2)}× |`,
  );
  console.log(`| event → run start p50 (${latencies.length} events) | ${ms(percentile(latencies, 50))} | ${(percentile(latencies, 50) / floor).toFixed(2)}× |`);
  console.log(`| event → run start p99 | ${ms(percentile(latencies, 99))} | ${(percentile(latencies, 99) / floor).toFixed(2)}× |`);
  console.log(`| run of 1 / 10 / 100 steps (median) | ${ms(t1)} / ${ms(t10)} / ${ms(t100)} | |`);
  console.log(
    `| per-step overhead (T10 − T1)/9; vs the round's mean commit: median of ${rounds} rounds (range) | ${ms(perStep10)} | ${ratioRange(ratios10)} |`,
  );
  console.log(`| per-step overhead (T100 − T10)/90 | ${ms(perStep100)} | ${ratioRange(ratios100)} |`);
  console.log(`| flatness (T100−T10)/90 ÷ (T10−T1)/9 | ${(perStep100 / perStep10).toFixed(2)} | |`);

  await database.close();
  await benchDevReady();
}

/** `stepwise dev` start-up on a warm data dir: the built CLI, spawned as a user runs it. */
async function benchDevReady(): Promise<void> {
  const bin = fileURLToPath(new URL("../apps/cli/bin/stepwise.js", import.meta.url));
  const functions = fileURLToPath(new URL("../examples/quickstart/src/functions.ts", import.meta.url));
  const dataDir = join(dir, "dev");
  const samples: Array<{ reported: number; wall: number }> = [];
  for (let index = 0; index < (quick ? 2 : 4); index++) {
    const started = performance.now();
    const reported = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [bin, "dev", "--functions", functions, "--data-dir", dataDir, "--port", "0"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NO_COLOR: "1" },
      });
      let output = "";
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ready in (\d+) ms/.exec(output);
        if (match) {
          child.once("exit", () => resolve(Number(match[1])));
          child.kill("SIGTERM");
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code) => !/ready in/.test(output) && reject(new Error(`dev exited ${code}: ${output}`)));
    });
    samples.push({ reported, wall: performance.now() - started });
  }
  const warm = samples.slice(1);
  console.log(`\n| stepwise dev on a warm data dir | value |\n|---|---|`);
  console.log(`| ready (as printed, from start of startDev), median of ${warm.length} | ${median(warm.map((s) => s.reported))} ms |`);
  console.log(`| process spawn → ready line (incl. Node + module load), median | ${median(warm.map((s) => s.wall)).toFixed(0)} ms |`);
  console.log(`| cold (first start, creates the data dir) | ${samples[0]?.wall.toFixed(0)} ms |`);
}
