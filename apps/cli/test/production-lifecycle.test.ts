import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { freePort } from "@stepwise/redis/testing";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { runsByStatus, waitForCompleted } from "./helpers/cluster.js";
import { createEventKey } from "./helpers/event-key.js";
import { runCli } from "./helpers/spawn-cli.js";
import { spawnProduction } from "./helpers/spawn-production.js";
import { usePostgresAndRedis } from "./helpers/use-postgres-and-redis.js";

const functions = fileURLToPath(new URL("./fixtures/slow-functions.ts", import.meta.url));
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";

describe("stepwise start / worker / migrate", () => {
  const fixture = usePostgresAndRedis();

  it("fails at start with a message that says what is wrong", { timeout: 60_000 }, async () => {
    const { database } = fixture;
    const closedPort = await freePort();
    const badPostgres = await runCli(["worker", "--functions", functions], {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/nope`,
      REDIS_URL: redisUrl,
    });
    expect(badPostgres.code).toBe(1);
    expect(badPostgres.output).toContain(`cannot reach Postgres at 127.0.0.1:${closedPort}/nope`);

    const noUrl = await runCli(["worker", "--functions", functions], { DATABASE_URL: "", REDIS_URL: redisUrl });
    expect(noUrl.output).toContain("DATABASE_URL is not set");

    const badRedis = await runCli(["start", "--functions", functions, "--port", "0"], {
      DATABASE_URL: database.url,
      REDIS_URL: `redis://127.0.0.1:${closedPort}`,
    });
    expect(badRedis.code).toBe(1);
    expect(badRedis.output).toContain(`cannot reach Redis at 127.0.0.1:${closedPort}`);

    // A fresh database: the worker refuses an out-of-date schema; migrate fixes it.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const fresh = `stepwise_fresh_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS ${fresh}`);
    await admin.query(`CREATE DATABASE ${fresh}`);
    const freshUrl = database.url.replace(/\/[^/]+$/, `/${fresh}`);
    try {
      const stale = await runCli(["worker", "--functions", functions], { DATABASE_URL: freshUrl, REDIS_URL: redisUrl });
      expect(stale.code).toBe(1);
      expect(stale.output).toMatch(/schema is not current: 6 migration\(s\) pending .*run `stepwise migrate`/);
      const migrated = await runCli(["migrate"], { DATABASE_URL: freshUrl });
      expect(migrated.output).toContain("applied migrations 1, 2, 3");
      expect((await runCli(["migrate"], { DATABASE_URL: freshUrl })).output).toContain("the schema is current");
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${fresh} WITH (FORCE)`);
      await admin.end();
    }
  });

  it("on SIGTERM lets running steps finish within the grace period, then exits", { timeout: 60_000 }, async () => {
    const { database, redis } = fixture;
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl, STEPWISE_REDIS_PREFIX: redis.prefix };
    const server = await spawnProduction({ mode: "start", args: ["--functions", functions, "--quiet", "--concurrency", "1"], env });
    const eventKey = await createEventKey(database.url);
    // A second worker that will take over what the first releases.
    try {
      await fetch(`${server.url}/e/${eventKey}`, {
        method: "POST",
        body: JSON.stringify([{ name: "slow/start", data: { ms: 1500 } }]),
        headers: { "content-type": "application/json" },
      });
      await waitFor(async () => (await runsByStatus(database.pool))["running"] === 1);
      const exited = once(server.child, "exit");
      server.child.kill("SIGTERM");
      const [code] = (await exited) as [number];
      expect(code).toBe(0);
      // The step in flight finished before the process exited: its result is recorded.
      const { rows } = await database.pool.query<{ output: unknown }>("SELECT output FROM steps WHERE step_id = 'wait'");
      expect(rows).toEqual([{ output: "slept 1500" }]);
      expect(server.output()).toContain("SIGTERM: finishing running steps");
    } finally {
      server.child.kill("SIGKILL");
    }

    // With a grace shorter than the step, the run is released and another worker completes it.
    const impatient = await spawnProduction({ mode: "start", args: ["--functions", functions, "--quiet", "--concurrency", "1", "--grace", "200"], env });
    try {
      await fetch(`${impatient.url}/e/${eventKey}`, {
        method: "POST",
        body: JSON.stringify([{ name: "slow/start", data: { ms: 3000 } }]),
        headers: { "content-type": "application/json" },
      });
      await waitFor(async () => (await runsByStatus(database.pool))["running"] === 1);
      const exited = once(impatient.child, "exit");
      impatient.child.kill("SIGTERM");
      await exited;
      expect(impatient.output()).toContain("released 1 runs to other workers");
      const worker = await spawnProduction({ mode: "worker", args: ["--functions", functions, "--quiet"], env });
      try {
        await waitForCompleted(database.pool, 2, 30_000);
      } finally {
        worker.child.kill("SIGKILL");
      }
    } finally {
      impatient.child.kill("SIGKILL");
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
