import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestPostgres, type TestPostgres } from "@stepwise/postgres/testing";
import { createTestRedis } from "@stepwise/redis/testing";
import { afterAll, describe, expect, it } from "vitest";
import { killHard } from "./helpers/spawn-dev.js";
import { type ProductionProcess, spawnProduction } from "./helpers/spawn-production.js";

// CI size; `pnpm test:soak` (STEPWISE_SOAK=1) runs the full size: 2,000 runs.
const soak = process.env["STEPWISE_SOAK"] === "1";
const RUNS = Number(process.env["STEPWISE_FAULT_RUNS"] ?? (soak ? 2000 : 300));
const KILL_EVERY_MS = soak ? 3000 : 1000;
const WORKERS = 3;
const CONCURRENCY = 4;

describe("Postgres + Redis under worker crashes", () => {
  const dir = mkdtempSync(join(tmpdir(), "stepwise-faults-"));
  const log = join(dir, "bodies.log");
  const functions = fileURLToPath(new URL("./fixtures/fault-functions.ts", import.meta.url));
  const processes = new Set<ProductionProcess>();
  let database: TestPostgres | undefined;
  let redisCleanup: (() => Promise<void>) | undefined;

  afterAll(async () => {
    for (const running of processes) await killHard(running.child);
    await redisCleanup?.();
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`drains ${RUNS} multi-step runs while worker processes are killed with -9: none lost, no step committed twice`, {
    timeout: soak ? 900_000 : 240_000,
  }, async () => {
    database = await createTestPostgres();
    const redis = await createTestRedis();
    redisCleanup = redis.close;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379",
      STEPWISE_REDIS_PREFIX: redis.prefix,
      STEPWISE_FAULT_LOG: log,
    };
    // Short leases so that runs of a killed worker move on within seconds.
    const args = ["--functions", functions, "--concurrency", String(CONCURRENCY), "--lease", "2000", "--quiet"];
    const spawnWorker = async () => {
      const worker = await spawnProduction({ mode: "worker", args, env });
      processes.add(worker);
      return worker;
    };
    const server = await spawnProduction({ mode: "start", args, env });
    processes.add(server);
    const workers = await Promise.all(Array.from({ length: WORKERS }, spawnWorker));

    for (let offset = 0; offset < RUNS; offset += 500) {
      const batch = Array.from({ length: Math.min(500, RUNS - offset) }, (_, index) => ({ name: "fault/start", data: { n: offset + index } }));
      const response = await fetch(`${server.url}/e/dev`, { method: "POST", body: JSON.stringify(batch), headers: { "content-type": "application/json" } });
      expect(response.status).toBe(200);
    }

    const completed = async () =>
      Number((await database!.pool.query<{ count: string }>("SELECT count(*) FROM runs WHERE status = 'completed'")).rows[0]?.count ?? 0);
    let kills = 0;
    const deadline = Date.now() + (soak ? 840_000 : 200_000);
    let lastKill = Date.now();
    while ((await completed()) < RUNS) {
      if (Date.now() > deadline) throw new Error(`only ${await completed()} of ${RUNS} runs completed; ${kills} kills`);
      if (Date.now() - lastKill >= KILL_EVERY_MS) {
        const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0] as ProductionProcess;
        await killHard(victim.child);
        processes.delete(victim);
        kills++;
        workers.push(await spawnWorker());
        lastKill = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const { rows } = await database.pool.query<{ status: string; count: string }>("SELECT status, count(*) FROM runs GROUP BY status");
    expect(rows).toEqual([{ status: "completed", count: String(RUNS) }]);
    const steps = await database.pool.query<{ count: string; distinct_steps: string }>(
      "SELECT count(*) AS count, count(DISTINCT (run_id, step_key)) AS distinct_steps FROM steps WHERE status = 'completed'",
    );
    expect(steps.rows[0]).toEqual({ count: String(RUNS * 3), distinct_steps: String(RUNS * 3) });
    const outputs = await database.pool.query<{ output: { n: number; total: number } }>("SELECT output FROM runs");
    expect(outputs.rows.every((row) => row.output.total === 6)).toBe(true);
    expect(new Set(outputs.rows.map((row) => row.output.n)).size).toBe(RUNS);

    // Step bodies: each ran at least once; more only where a kill interrupted it.
    const lines = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
    const counts = new Map<string, number>();
    for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
    expect(counts.size).toBe(RUNS * 3);
    const rerun = lines.length - counts.size;
    // A kill interrupts at most CONCURRENCY steps of the killed worker.
    expect(rerun).toBeLessThanOrEqual(kills * CONCURRENCY);
    expect(kills).toBeGreaterThan(0);
    console.log(`fault test: ${RUNS} runs, ${kills} kill -9s, ${rerun} step bodies re-ran (in flight at a kill), 0 lost, 0 duplicate commits`);
  });
});
