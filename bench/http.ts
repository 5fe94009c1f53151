// The HTTP server's figures (issue: HTTP server), on Postgres + Redis over loopback, each next to
// a floor measured in the same run: the Event API against a bare Hono handler that commits one
// INSERT per request, and realtime publish → SSE receive against a Redis PUBLISH → message.
import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { Stepwise } from "@stepwise/core";
import { createEngine, createSystemClock, type Realtime } from "@stepwise/engine";
import { createPostgresKeyStore, createPostgresStore } from "@stepwise/postgres";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisQueue, createRedisRealtime } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { createApiKey, createRealtimeTokens, createServer } from "@stepwise/server";
import { Hono } from "hono";
import pg from "pg";
import { postgresCpuByPid, postgresCpuSince, redisCpuSeconds } from "./cpu.js";
import { median, ms, percentile } from "./stats.js";

const quick = process.env["STEPWISE_BENCH_QUICK"] === "1";
const SECONDS = quick ? 2 : 6;
const CONNECTIONS = 10;
const ROUNDS = quick ? 1 : 3;
const WARM_UP_SECONDS = quick ? 2 : 4;
const BENCH_SECRET = "bench-realtime-secret-0123456789abcdef";

type RedisClient = Awaited<ReturnType<typeof createTestRedis>>["redis"];

type Served = { url: string; close(): Promise<void> };

async function serveApp(app: { fetch: (request: Request) => Response | Promise<Response> }): Promise<Served> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/** What one load run measured: requests/s, latency, and CPU per request of each part of the machine. */
interface LoadFigures {
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  /** CPU ms per request of this process (the server: HTTP, engine, drivers), of Postgres, of Redis. */
  cpu: { server: number; postgres: number; redis: number };
}

const AUTOCANNON = fileURLToPath(new URL("../node_modules/.bin/autocannon", import.meta.url));

/**
 * POST `url` with `body` from `CONNECTIONS` clients for `seconds`. The load comes from an
 * autocannon process of its own, as clients would, so that the CPU this process uses is the
 * server's alone.
 */
async function load(url: string, body: string, redis: RedisClient, seconds = SECONDS): Promise<LoadFigures> {
  const args = ["-j", "-c", String(CONNECTIONS), "-d", String(seconds), "-m", "POST", "-H", "content-type: application/json", "-b", body, url];
  const postgresBefore = postgresCpuByPid();
  const redisBefore = await redisCpuSeconds(redis);
  const serverBefore = process.cpuUsage();
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(AUTOCANNON, args, { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`autocannon exited with ${code}`))));
  });
  const server = process.cpuUsage(serverBefore);
  const postgres = postgresCpuSince(postgresBefore);
  const redisCpu = (await redisCpuSeconds(redis)) - redisBefore;
  const result = JSON.parse(output) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number; mean: number };
    non2xx: number;
    errors: number;
  };
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  const perRequest = (seconds: number) => (seconds * 1000) / result.requests.total;
  // autocannon's percentiles are whole milliseconds; the mean keeps the fraction for the ratio.
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.mean,
    cpu: { server: perRequest((server.user + server.system) / 1e6), postgres: perRequest(postgres), redis: perRequest(redisCpu) },
  };
}

export async function benchHttp(): Promise<void> {
  const database = await createTestPostgres();
  const redisFixture = await createTestRedis();
  const { redis, prefix } = redisFixture;
  const clock = createSystemClock();
  const stepwise = new Stepwise({ id: "bench-http" });
  stepwise.createFunction({ id: "noop" }, { event: "bench/http" }, async () => null);
  const realtime = createRedisRealtime({ redis, clock, prefix });
  // One pool for both, of the CLI's default size (10), on the same server.
  const pool = new pg.Pool({ connectionString: database.url, max: 10 });
  // Ingest only: the Event API's own cost (events and runs stored, runs queued), no workers competing for the CPU.
  const engine = createEngine({
    store: createPostgresStore({ pool }),
    queue: createRedisQueue({ redis, clock, prefix }),
    realtime,
    clock,
    clients: [stepwise],
    workers: false,
    scheduler: false,
  });
  await engine.start();
  // Keys as `stepwise start` checks them: in Postgres, each trusted for 10 s once checked.
  const keys = createPostgresKeyStore({ pool });
  const { key } = await createApiKey(keys, { scope: "event", name: "bench" });
  const stepwiseServer = await serveApp(createServer({ engine, auth: { mode: "keys", keys }, realtimeSecret: BENCH_SECRET }));
  // The floor: a bare Hono handler that parses the body and commits one INSERT, answering an id.
  await pool.query("CREATE TABLE bench_floor (id text PRIMARY KEY, body jsonb NOT NULL)");
  let next = 0;
  const floorApp = new Hono().post("/e/:key", async (context) => {
    const body = await context.req.json();
    const id = `floor_${process.pid}_${next++}`;
    await pool.query("INSERT INTO bench_floor (id, body) VALUES ($1, $2)", [id, JSON.stringify(body)]);
    return context.json({ ids: [id] });
  });
  const floorServer = await serveApp(floorApp);
  try {
    const one = JSON.stringify({ name: "bench/http", data: { order: 1 } });
    const batch = JSON.stringify(Array.from({ length: 100 }, (_, n) => ({ name: "bench/http", data: { order: n } })));
    const rows: string[] = [];
    for (const [label, body, perRequest] of [
      ["1 event per request", one, 1],
      ["batches of 100", batch, 100],
    ] as const) {
      // Warm-up, unmeasured: V8 optimizes the hot paths first (the Event API's path is longer
      // than the floor's, so a cold run measures the compiler more than the server).
      await load(`${floorServer.url}/e/x`, body, redis, WARM_UP_SECONDS);
      await load(`${stepwiseServer.url}/e/${key}`, body, redis, WARM_UP_SECONDS);
      const floors: LoadFigures[] = [];
      const ours: LoadFigures[] = [];
      // Interleaved, so that both see the same machine.
      for (let round = 0; round < ROUNDS; round++) {
        floors.push(await load(`${floorServer.url}/e/x`, body, redis));
        ours.push(await load(`${stepwiseServer.url}/e/${key}`, body, redis));
      }
      const summary = (runs: typeof floors) => ({
        rps: median(runs.map((entry) => entry.rps)),
        p50: median(runs.map((entry) => entry.p50)),
        p99: median(runs.map((entry) => entry.p99)),
        mean: median(runs.map((entry) => entry.mean)),
        server: median(runs.map((entry) => entry.cpu.server)),
        postgres: median(runs.map((entry) => entry.cpu.postgres)),
        redis: median(runs.map((entry) => entry.cpu.redis)),
        machine: median(runs.map((entry) => entry.cpu.server + entry.cpu.postgres + entry.cpu.redis)),
      });
      const floor = summary(floors);
      const stepwiseFigures = summary(ours);
      rows.push(
        `| Event API, ${label}: events/s | ${Math.round(stepwiseFigures.rps * perRequest)} | ${Math.round(floor.rps)} req/s (one INSERT each) | ${(floor.rps / stepwiseFigures.rps).toFixed(2)}× the floor's time per request |`,
        `| Event API, ${label}: CPU per event, server / Postgres / Redis | ${ms(stepwiseFigures.server / perRequest)} / ${ms(stepwiseFigures.postgres / perRequest)} / ${ms(stepwiseFigures.redis / perRequest)} | ${ms(floor.server)} / ${ms(floor.postgres)} / ${ms(floor.redis)} per INSERT request | ${(stepwiseFigures.server / perRequest / floor.server).toFixed(2)}× the server's |`,
        `| Event API, ${label}: CPU per event, the three together | ${ms(stepwiseFigures.machine / perRequest)} | ${ms(floor.machine)} per INSERT request | ${(stepwiseFigures.machine / perRequest / floor.machine).toFixed(2)}× |`,
        `| Event API, ${label}: p50 / p99 (mean) per request | ${stepwiseFigures.p50} / ${stepwiseFigures.p99} ms (${ms(stepwiseFigures.mean)}) | ${floor.p50} / ${floor.p99} ms (${ms(floor.mean)}) | ${(stepwiseFigures.mean / floor.mean).toFixed(2)}× the mean, ${(stepwiseFigures.p99 / Math.max(1, floor.p99)).toFixed(2)}× p99 |`,
      );
    }
    rows.push(...(await realtimeLatency(stepwiseServer.url, engine.realtime, redis, prefix)));
    console.log(
      `\nStepwise bench, HTTP server on Postgres + Redis (loopback, ${CONNECTIONS} connections from an autocannon process, median of ${ROUNDS} interleaved rounds of ${SECONDS} s after a ${WARM_UP_SECONDS} s warm-up each), Node ${process.version}`,
    );
    console.log("| figure | Stepwise | floor (same run) | ratio |");
    console.log("|---|---|---|---|");
    for (const row of rows) console.log(row);
  } finally {
    await stepwiseServer.close();
    await floorServer.close();
    await engine.stop();
    await realtime.close();
    await pool.end();
    await redisFixture.close();
    await database.close();
  }
}

/**
 * publish → SSE receive through the server, with 1 and with 1,000 subscribers on one channel
 * (each subscriber a fetch stream holding a channel token, as a browser would), next to a Redis
 * PUBLISH → message round trip.
 */
async function realtimeLatency(url: string, realtime: Realtime, redis: RedisClient, prefix: string): Promise<string[]> {
  const floor: number[] = [];
  const subscriber = redis.duplicate();
  await subscriber.subscribe(`${prefix}:floor`);
  let pending: ((at: number) => void) | undefined;
  subscriber.on("message", () => pending?.(performance.now()));
  for (let index = 0; index < (quick ? 50 : 300); index++) {
    const started = performance.now();
    const received = new Promise<number>((resolve) => (pending = resolve));
    await redis.publish(`${prefix}:floor`, "x");
    floor.push((await received) - started);
  }
  subscriber.disconnect();
  const rows = [`| floor: Redis PUBLISH → message p50 / p99 | | ${ms(percentile(floor, 50))} / ${ms(percentile(floor, 99))} | |`];
  for (const count of [1, quick ? 200 : 1000]) {
    const channel = `bench-${count}`;
    const latencies: number[] = [];
    const controllers: AbortController[] = [];
    let ready = 0;
    let onReady: (() => void) | undefined;
    let received = 0;
    let onAll: (() => void) | undefined;
    // What a browser holds: a token for the channel, minted with the server's secret.
    const token = createRealtimeTokens(BENCH_SECRET).mint({ channels: [channel], expiresAt: Date.now() + 3_600_000 });
    const readers = Array.from({ length: count }, async () => {
      const controller = new AbortController();
      controllers.push(controller);
      const response = await fetch(`${url}/v1/realtime?channel=${channel}&token=${token}`, { signal: controller.signal });
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end = buffer.indexOf("\n\n");
          while (end >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf("\n\n");
            if (event.startsWith("event: ready")) {
              ready++;
              if (ready === count) onReady?.();
            } else if (event.startsWith("event: message")) {
              const data = event.split("\n").find((line) => line.startsWith("data: "));
              const sentAt = (JSON.parse(data?.slice(6) ?? "{}") as { data: { at: number } }).data.at;
              latencies.push(performance.now() - sentAt);
              received++;
              if (received === count) onAll?.();
            }
          }
        }
      } catch {
        // Aborted at the end.
      }
    });
    if (ready < count) await new Promise<void>((resolve) => (onReady = resolve));
    for (let index = 0; index < (quick ? 20 : 100); index++) {
      received = 0;
      const all = new Promise<void>((resolve) => (onAll = resolve));
      await realtime.publish({ channel, topic: "tick", data: { at: performance.now() } });
      await all;
    }
    for (const controller of controllers) controller.abort();
    await Promise.allSettled(readers);
    rows.push(
      `| realtime publish → SSE receive, ${count} subscriber${count === 1 ? "" : "s"}: p50 / p99 (${latencies.length} deliveries) | ${ms(percentile(latencies, 50))} / ${ms(percentile(latencies, 99))} | | ${(percentile(latencies, 50) / percentile(floor, 50)).toFixed(1)}× the PUBLISH floor (p50) |`,
    );
  }
  return rows;
}
