import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { startPrivateRedisServer } from "@stepwise/redis/testing";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { bodyCounts, type Cluster, runsByStatus, startCluster, waitForCompleted } from "./helpers/cluster.js";
import { startPrivatePostgres } from "./helpers/private-postgres.js";

const soak = process.env["STEPWISE_SOAK"] === "1";
const RUNS = Number(process.env["STEPWISE_OUTAGE_RUNS"] ?? (soak ? 1000 : 150));
const CONCURRENCY = 4;
const functions = fileURLToPath(new URL("./fixtures/fault-functions.ts", import.meta.url));
// Each event carries an id, so that a batch sent again after an unanswered request is deduplicated.
const events = (count: number, from = 0) =>
  Array.from({ length: count }, (_, index) => ({ name: "fault/start", id: `n-${from + index}`, data: { n: from + index } }));

describe("Postgres + Redis outages under load", { timeout: soak ? 900_000 : 180_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
  });
  const logFile = () => {
    const dir = mkdtempSync(join(tmpdir(), "stepwise-outage-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, "bodies.log");
  };
  const track = (cluster: Cluster) => {
    cleanups.push(() => cluster.stop());
    return cluster;
  };

  /** Every run completed, each step committed once; answers how many step bodies re-ran. */
  async function expectAllDone(pool: pg.Pool, runs: number, log: string): Promise<number> {
    expect(await runsByStatus(pool)).toEqual({ completed: runs });
    const { rows } = await pool.query<{ count: string }>("SELECT count(*) FROM steps WHERE status = 'completed'");
    expect(Number(rows[0]?.count)).toBe(runs * 3);
    const bodies = bodyCounts(log);
    expect(bodies.distinct).toBe(runs * 3);
    return bodies.total - bodies.distinct;
  }

  it("loses nothing to FLUSHALL or a Redis crash and restart: the reconciler re-enqueues from Postgres", async () => {
    const database = await createTestPostgres();
    cleanups.push(() => database.close());
    const redis = await startPrivateRedisServer();
    cleanups.push(() => redis.kill());
    const log = logFile();
    const cluster = track(
      await startCluster({
        functions,
        databaseUrl: database.url,
        redisUrl: redis.url,
        redisPrefix: "outage",
        env: { STEPWISE_FAULT_LOG: log },
        workers: 2,
        concurrency: CONCURRENCY,
      }),
    );
    await cluster.send(events(RUNS));
    const admin = new pg.Pool({ connectionString: database.url, max: 1 });
    cleanups.push(() => admin.end());
    // Flush once a few runs are done, then crash Redis and bring it back empty.
    await waitForCompleted(database.pool, Math.floor(RUNS / 5), 60_000);
    const { default: Redis } = await import("ioredis");
    const client = new Redis(redis.url);
    await client.flushall();
    await client.quit();
    await waitForCompleted(database.pool, Math.floor(RUNS / 2), 60_000);
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await redis.start();
    await waitForCompleted(database.pool, RUNS, 120_000);
    const rerun = await expectAllDone(database.pool, RUNS, log);
    // Losing Redis loses no work in flight: step bodies never had to run twice.
    expect(rerun).toBe(0);
  });

  it("resumes by itself after pg_terminate_backend kills the engine's connections, repeatedly", async () => {
    const database = await createTestPostgres();
    cleanups.push(() => database.close());
    const log = logFile();
    const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";
    const cluster = track(
      await startCluster({
        functions,
        databaseUrl: database.url,
        redisUrl,
        redisPrefix: `terminate-${process.pid}`,
        env: { STEPWISE_FAULT_LOG: log },
        workers: 2,
        concurrency: CONCURRENCY,
      }),
    );
    await cluster.send(events(RUNS));
    const databaseName = new URL(database.url).pathname.slice(1);
    let terminations = 0;
    let last = Date.now();
    await waitForCompleted(database.pool, RUNS, 150_000, async () => {
      if (Date.now() - last < 700) return;
      const { rows } = await database.pool.query<{ terminated: boolean }>(
        "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> 'stepwise-test'",
        [databaseName],
      );
      terminations += rows.filter((row) => row.terminated).length;
      last = Date.now();
    });
    const rerun = await expectAllDone(database.pool, RUNS, log);
    expect(terminations).toBeGreaterThan(0);
    console.log(`pg_terminate_backend: ${terminations} connections terminated, ${rerun} step bodies re-ran, 0 lost`);
  });

  it("keeps every acknowledged event and committed step across a Postgres restart in immediate mode", async () => {
    const server = await startPrivatePostgres();
    cleanups.push(() => server.stop());
    const log = logFile();
    const cluster = track(
      await startCluster({
        functions,
        databaseUrl: server.url,
        redisUrl: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379",
        redisPrefix: `restart-${process.pid}`,
        env: { STEPWISE_FAULT_LOG: log },
        workers: 2,
        concurrency: CONCURRENCY,
      }),
    );
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    pool.on("error", () => {});
    cleanups.push(() => pool.end());
    // Events keep arriving through the restart; those answered 200 were acknowledged.
    const acknowledged: string[] = [];
    let sent = 0;
    const sender = (async () => {
      while (sent < RUNS) {
        const batch = events(10, sent);
        try {
          acknowledged.push(...(await cluster.send(batch)));
          sent += batch.length;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200)); // not acknowledged: send again
        }
      }
    })();
    await waitForCompleted(pool, Math.floor(RUNS / 3), 60_000);
    server.restartImmediate();
    await sender;
    await waitForCompleted(pool, RUNS, 150_000);
    const { rows } = await pool.query<{ id: string }>("SELECT e.id FROM events e JOIN runs r ON r.event_id = e.id WHERE r.status = 'completed'");
    const stored = new Set(rows.map((row) => row.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    expect(new Set(acknowledged).size).toBe(RUNS);
    const rerun = await expectAllDone(pool, RUNS, log);
    console.log(`Postgres immediate restart: ${acknowledged.length} acknowledged events all completed, ${rerun} step bodies re-ran`);
  });
});
