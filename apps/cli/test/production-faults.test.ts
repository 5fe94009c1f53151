import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestPostgres, type TestPostgres } from "@stepwise/postgres/testing";
import { createTestRedis, type TestRedis } from "@stepwise/redis/testing";
import { afterAll, describe, expect, it } from "vitest";
import { bodyCounts, type Cluster, runsByStatus, startCluster, waitForCompleted } from "./helpers/cluster.js";

// CI size; `pnpm test:soak` (STEPWISE_SOAK=1) runs the full size: 2,000 runs.
const soak = process.env["STEPWISE_SOAK"] === "1";
const RUNS = Number(process.env["STEPWISE_FAULT_RUNS"] ?? (soak ? 2000 : 300));
const KILL_EVERY_MS = soak ? 3000 : 1000;
const CONCURRENCY = 4;

describe("Postgres + Redis under worker crashes", () => {
  const dir = mkdtempSync(join(tmpdir(), "stepwise-faults-"));
  const log = join(dir, "bodies.log");
  const functions = fileURLToPath(new URL("./fixtures/fault-functions.ts", import.meta.url));
  let database: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let cluster: Cluster | undefined;

  afterAll(async () => {
    await cluster?.stop();
    await redis?.close();
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`drains ${RUNS} multi-step runs while worker processes are killed with -9: none lost, no step committed twice`, {
    timeout: soak ? 900_000 : 240_000,
  }, async () => {
    database = await createTestPostgres();
    redis = await createTestRedis();
    cluster = await startCluster({
      functions,
      databaseUrl: database.url,
      redisUrl: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379",
      redisPrefix: redis.prefix,
      env: { STEPWISE_FAULT_LOG: log },
      workers: 3,
      concurrency: CONCURRENCY,
    });
    const running = cluster;
    await running.send(Array.from({ length: RUNS }, (_, n) => ({ name: "fault/start", data: { n } })));

    let kills = 0;
    let lastKill = Date.now();
    await waitForCompleted(database.pool, RUNS, soak ? 840_000 : 200_000, async () => {
      if (Date.now() - lastKill < KILL_EVERY_MS) return;
      await running.replaceRandomWorker();
      kills++;
      lastKill = Date.now();
    });

    expect(await runsByStatus(database.pool)).toEqual({ completed: RUNS });
    const steps = await database.pool.query<{ count: string; distinct_steps: string }>(
      "SELECT count(*) AS count, count(DISTINCT (run_id, step_key)) AS distinct_steps FROM steps WHERE status = 'completed'",
    );
    expect(steps.rows[0]).toEqual({ count: String(RUNS * 3), distinct_steps: String(RUNS * 3) });
    const outputs = await database.pool.query<{ output: { n: number; total: number } }>("SELECT output FROM runs");
    expect(outputs.rows.every((row) => row.output.total === 6)).toBe(true);
    expect(new Set(outputs.rows.map((row) => row.output.n)).size).toBe(RUNS);

    // Step bodies: each ran at least once; more only where a kill interrupted it (at most
    // CONCURRENCY steps of the killed worker each time).
    const bodies = bodyCounts(log);
    expect(bodies.distinct).toBe(RUNS * 3);
    const rerun = bodies.total - bodies.distinct;
    expect(rerun).toBeLessThanOrEqual(kills * CONCURRENCY);
    expect(kills).toBeGreaterThan(0);
    console.log(`fault test: ${RUNS} runs, ${kills} kill -9s, ${rerun} step bodies re-ran (in flight at a kill), 0 lost, 0 duplicate commits`);
  });
});
