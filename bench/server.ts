// Postgres + Redis figures (issue: production backends), each next to floors measured in the same
// run on the same servers: one single-row INSERT commit, one Redis PING.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Stepwise } from "@stepwise/core";
import { createEngine, createSystemClock } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisBus, createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { cpuTimes, postgresCpuByPid, postgresCpuSince } from "./cpu.js";
import { createInsertFloor, defineBenchFunctions, measureEngine } from "./measure.js";
import { mean, median, ms, percentile, ratioRange } from "./stats.js";

const quick = process.env["STEPWISE_BENCH_QUICK"] === "1";
/** Connections of each `stepwise worker` process's pool (the CLI's default). */
const WORKER_POOL_SIZE = 10;
const THROUGHPUT_RUNS = Number(process.env["STEPWISE_BENCH_RUNS"] ?? (quick ? 2000 : 10_000));

export async function benchServer(): Promise<void> {
  const database = await createTestPostgres();
  const redisFixture = await createTestRedis();
  const { redis, prefix } = redisFixture;
  const store = createPostgresStore({ pool: database.pool });
  const clock = createSystemClock();
  const stepwise = new Stepwise({ id: "bench-server" });
  const starts = defineBenchFunctions(stepwise);
  const queue = createRedisQueue({ redis, clock, prefix: `${prefix}-latency` });
  const bus = createRedisBus({ redis, prefix: `${prefix}-latency` });
  const engine = createEngine({ store, queue, bus, clock, clients: [stepwise] });
  await engine.start();
  try {
    // Floors: a single-row INSERT commit on the same server, a Redis PING.
    const insertFloor = await createInsertFloor(database.pool);
    const pingFloor: number[] = [];
    const measureFloors = async (rounds: number) => {
      await insertFloor.measure(rounds);
      for (let index = 0; index < rounds; index++) {
        const started = performance.now();
        await redis.ping();
        pingFloor.push(performance.now() - started);
      }
    };
    await measureFloors(100);
    insertFloor.samples.length = 0;
    pingFloor.length = 0;
    const rounds = quick ? 4 : 30;
    const { latencies, t1, t10, t100, ratios10, ratios100 } = await measureEngine({
      engine,
      starts,
      rounds,
      eventsPerRound: 20,
      floor: async () => {
        const before = insertFloor.samples.length;
        await measureFloors(quick ? 50 : 150);
        return mean(insertFloor.samples.slice(before));
      },
    });
    const floor = median(insertFloor.samples);
    const ping = median(pingFloor);
    const perStep10 = (t10 - t1) / 9;
    const perStep100 = (t100 - t10) / 90;

    console.log(`\nStepwise bench, Postgres server + Redis (in-process engine for latency), Node ${process.version}`);
    console.log("| figure | value | vs INSERT floor | vs PING |");
    console.log("|---|---|---|---|");
    console.log(`| floor: single-row INSERT commit (median of ${insertFloor.samples.length}) | ${ms(floor)} | 1.00× | |`);
    console.log(
      `| floor: the same commits' mean (the per-step rows divide by each round's) | ${ms(mean(insertFloor.samples))} | ${(mean(insertFloor.samples) / floor).toFixed(2)}× | |`,
    );
    console.log(`| floor: Redis PING (median) | ${ms(ping)} | | 1.00× |`);
    console.log(
      `| event → run start p50 (${latencies.length} events) | ${ms(percentile(latencies, 50))} | ${(percentile(latencies, 50) / floor).toFixed(2)}× | ${(percentile(latencies, 50) / ping).toFixed(1)}× |`,
    );
    console.log(`| event → run start p99 | ${ms(percentile(latencies, 99))} | ${(percentile(latencies, 99) / floor).toFixed(2)}× | |`);
    console.log(`| run of 1 / 10 / 100 steps (median) | ${ms(t1)} / ${ms(t10)} / ${ms(t100)} | | |`);
    console.log(
      `| per-step overhead (T10 − T1)/9; vs the round's mean commit: median of ${rounds} rounds (range) | ${ms(perStep10)} | ${ratioRange(ratios10)} | |`,
    );
    console.log(`| per-step overhead (T100 − T10)/90 | ${ms(perStep100)} | ${ratioRange(ratios100)} | |`);
    await engine.stop();
    await throughput(database.url, `${prefix}-throughput`, floor);
  } finally {
    await engine.stop();
    await queue.close();
    await bus.close();
    await redisFixture.close();
    await database.close();
  }
}

/**
 * The next transaction id the server will assign: its growth counts write transactions (each
 * a commit with a WAL flush), server-wide, without assigning one itself.
 */
async function nextTransactionId(pool: import("pg").Pool): Promise<number> {
  const { rows } = await pool.query<{ next: string }>("SELECT txid_snapshot_xmax(txid_current_snapshot()) AS next");
  return Number(rows[0]?.next);
}

/**
 * Transactions this database has ended so far (every autocommitted statement is one). Backends
 * report theirs at most once a second, so a reading right after work waits for them.
 */
async function endedTransactions(pool: import("pg").Pool): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const { rows } = await pool.query<{ ended: string }>("SELECT xact_commit + xact_rollback AS ended FROM pg_stat_database WHERE datname = current_database()");
  return Number(rows[0]?.ended);
}

/**
 * The commit floor of throughput: single-row INSERT commits per second from `connections`
 * clients at once, for `seconds`, on the same server (Postgres's own group commit of the WAL
 * flush included).
 */
async function commitsPerSecond(pool: import("pg").Pool, connections: number, seconds: number): Promise<number> {
  await pool.query("CREATE TABLE IF NOT EXISTS bench_commit_floor (id bigserial PRIMARY KEY, run_id text NOT NULL, payload jsonb)");
  const end = performance.now() + seconds * 1000;
  let commits = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await pool.connect();
      try {
        while (performance.now() < end) {
          await client.query("INSERT INTO bench_commit_floor (run_id, payload) VALUES ($1, $2::jsonb)", ["run_x", "1"]);
          commits++;
        }
      } finally {
        client.release();
      }
    }),
  );
  return commits / ((performance.now() - started) / 1000);
}

/** Starts a `stepwise worker` process on the bench's functions; resolves once it runs. */
function startWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const bin = fileURLToPath(new URL("../apps/cli/bin/stepwise.js", import.meta.url));
  const functions = fileURLToPath(new URL("./functions.ts", import.meta.url));
  const profile = process.env["BENCH_WORKER_PROF"];
  const args = [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []), bin, "worker", "--functions", functions, "--quiet", "--concurrency", "100"];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("stepwise worker: running")) resolve(child);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`worker exited ${code}: ${output}`)));
  });
}

/**
 * Throughput in two phases: the ingest of THROUGHPUT_RUNS events (one run each) with no worker
 * running, then two `stepwise worker` processes draining those runs, each next to the commit
 * floor of the same server.
 */
async function throughput(databaseUrl: string, prefix: string, floorMs: number): Promise<void> {
  const env = { ...process.env, DATABASE_URL: databaseUrl, STEPWISE_REDIS_PREFIX: prefix, NO_COLOR: "1" };
  // The sender: an engine without workers, so that only the two processes execute runs.
  const pg = await import("pg");
  const pool = new pg.default.Pool({ connectionString: databaseUrl, max: WORKER_POOL_SIZE * 2 });
  const { connectRedis } = await import("@stepwise/redis");
  const redis = await connectRedis();
  const clock = createSystemClock();
  const stepwise = new Stepwise({ id: "bench" });
  stepwise.createFunction({ id: "one-step" }, { event: "bench/one-step" }, async () => null);
  const queue = createRedisQueue({ redis, clock, prefix });
  const sender = createEngine({ store: createPostgresStore({ pool }), queue, clock, clients: [stepwise], workers: false, scheduler: false });
  await sender.start();
  const workers: ChildProcess[] = [];
  try {
    const floorCommits = await commitsPerSecond(pool, WORKER_POOL_SIZE * 2, quick ? 2 : 4);

    const selfBefore = process.cpuUsage();
    const sendStarted = performance.now();
    for (let offset = 0; offset < THROUGHPUT_RUNS; offset += 1000) {
      await sender.send(
        Array.from({ length: Math.min(1000, THROUGHPUT_RUNS - offset) }, (_, index) => ({ name: "bench/one-step", data: { n: offset + index } })),
      );
    }
    const sendSeconds = (performance.now() - sendStarted) / 1000;
    const self = process.cpuUsage(selfBefore);

    const transactionsBefore = await nextTransactionId(pool);
    const endedBefore = await endedTransactions(pool);
    const postgresBefore = postgresCpuByPid();
    workers.push(...(await Promise.all([startWorker(env), startWorker(env)])));
    const cpuBefore = workers.map((child) => cpuTimes(child.pid as number));
    const drainStarted = performance.now();
    for (;;) {
      const { rows } = await pool.query<{ count: string }>("SELECT count(*) FROM runs WHERE status = 'completed' AND function_id = 'bench/one-step'");
      if (Number(rows[0]?.count) >= THROUGHPUT_RUNS) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - drainStarted) / 1000;
    const cpuUsed = workers.map((child, index) => {
      const [now, before] = [cpuTimes(child.pid as number), cpuBefore[index] as { user: number; system: number }];
      return { user: now.user - before.user, system: now.system - before.system };
    });
    const cpu = cpuUsed.map((used) => used.user + used.system);
    // The kernel's share is mostly socket work: loopback TCP to Postgres and Redis.
    const kernelShare = cpuUsed.reduce((sum, used) => sum + used.system, 0) / cpu.reduce((sum, value) => sum + value, 0);
    const postgresCpu = postgresCpuSince(postgresBefore);
    const transactionsPerRun = ((await nextTransactionId(pool)) - transactionsBefore) / THROUGHPUT_RUNS;
    const statementsPerRun = ((await endedTransactions(pool)) - endedBefore) / THROUGHPUT_RUNS;
    const span = await pool.query<{ seconds: number }>(
      "SELECT extract(epoch FROM max(ended_at) - min(started_at))::float8 AS seconds FROM runs WHERE function_id = 'bench/one-step'",
    );
    const drainSeconds = Number(span.rows[0]?.seconds);
    const runsPerSecond = THROUGHPUT_RUNS / drainSeconds;
    const workerCpuPerRun = (cpu.reduce((sum, value) => sum + value, 0) * 1000) / THROUGHPUT_RUNS;
    console.log(`\n| throughput: ${THROUGHPUT_RUNS} single-step runs | value | vs floor |\n|---|---|---|`);
    console.log(`| floor: single-row INSERT commits/s, ${WORKER_POOL_SIZE * 2} connections at once | ${floorCommits.toFixed(0)} | 1.00× |`);
    console.log(
      `| ingest: events/s accepted (\`send\` of 1,000, no worker running) | ${(THROUGHPUT_RUNS / sendSeconds).toFixed(0)} | ${(THROUGHPUT_RUNS / sendSeconds / floorCommits).toFixed(2)}× |`,
    );
    console.log(`| ingest: sender CPU per event | ${((self.user + self.system) / 1000 / THROUGHPUT_RUNS).toFixed(3)} ms | |`);
    console.log(`| drain: runs/s, 2 worker processes (first start → last end) | ${runsPerSecond.toFixed(0)} | ${(runsPerSecond / floorCommits).toFixed(2)}× |`);
    console.log(
      `| drain: wall time per run vs one INSERT commit | ${(1000 / runsPerSecond).toFixed(3)} ms | ${(1000 / runsPerSecond / floorMs).toFixed(2)}× |`,
    );
    console.log(`| drain: write transactions per run (claim, step, end: 3 alone) | ${transactionsPerRun.toFixed(2)} | |`);
    console.log(`| drain: statements per run, reads included (the bench's own polling too) | ${statementsPerRun.toFixed(2)} | |`);
    console.log(
      `| drain: CPU, worker 1 / worker 2 | ${cpu.map((value) => `${value.toFixed(2)} s (${((value / seconds) * 100).toFixed(0)}%)`).join(" / ")} | |`,
    );
    console.log(`| drain: CPU per run, workers / Postgres | ${workerCpuPerRun.toFixed(3)} ms / ${((postgresCpu * 1000) / THROUGHPUT_RUNS).toFixed(3)} ms | |`);
    console.log(`| drain: share of the workers' CPU spent in the kernel (socket I/O) | ${(kernelShare * 100).toFixed(0)}% | |`);
  } finally {
    await sender.stop();
    await queue.close();
    // A profiled worker writes its profile on a graceful exit only.
    const profiling = process.env["BENCH_WORKER_PROF"] !== undefined;
    await Promise.all(workers.map((child) => new Promise((resolve) => child.once("exit", resolve).kill(profiling ? "SIGTERM" : "SIGKILL"))));
    await redis.quit();
    await pool.end();
  }
}
