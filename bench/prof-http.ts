import { spawn, spawnSync } from "node:child_process";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Stepwise } from "@stepwise/core";
import { createEngine, createSystemClock } from "@stepwise/engine";
import { createPostgresKeyStore, createPostgresStore } from "@stepwise/postgres";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisQueue, createRedisRealtime } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { createApiKey, createServer } from "@stepwise/server";
import { Hono } from "hono";
import pg from "pg";

const counts = new Map<string, number>();
const orig = pg.Client.prototype.query;
(pg.Client.prototype as any).query = function (this: any, ...args: any[]) {
  const t = typeof args[0] === "string" ? args[0] : (args[0]?.name ?? args[0]?.text);
  const k = String(t).slice(0, 60).replace(/\s+/g, " ");
  counts.set(k, (counts.get(k) ?? 0) + 1);
  return (orig as any).apply(this, args);
};
const database = await createTestPostgres();
const redisFixture = await createTestRedis();
const { redis, prefix } = redisFixture;
const clock = createSystemClock();
const stepwise = new Stepwise({ id: "bench-http" });
stepwise.createFunction({ id: "noop" }, { event: "bench/http" }, async () => null);
const realtime = createRedisRealtime({ redis, clock, prefix });
const pool = new pg.Pool({ connectionString: database.url, max: 10 });
const engine = createEngine({
  store: createPostgresStore({ pool, ...(process.env.MIF ? { groupCommit: { maxInFlight: Number(process.env.MIF) } } : {}) }),
  queue: process.env.MEMQ === "1" ? (undefined as never) : createRedisQueue({ redis, clock, prefix }),
  realtime,
  clock,
  clients: [stepwise],
  workers: false,
  scheduler: false,
  reconcileIntervalMs: Number(process.env.RECON ?? 1000),
  publishLifecycle: process.env.LIFE !== "0",
});
await engine.start();
const keys = createPostgresKeyStore({ pool });
const { key } = await createApiKey(keys, { scope: "event", name: "bench" });
await pool.query("CREATE TABLE bench_floor (id text PRIMARY KEY, body jsonb NOT NULL)");
let next = 0;
const floorApp = new Hono().post("/e/:key", async (context) => {
  const body = await context.req.json();
  const id = `floor_${process.pid}_${next++}`;
  await pool.query("INSERT INTO bench_floor (id, body) VALUES ($1, $2)", [id, JSON.stringify(body)]);
  return context.json({ ids: [id] });
});
const app =
  process.env.FLOOR === "1" ? floorApp : createServer({ engine, auth: { mode: "keys", keys }, realtimeSecret: "bench-realtime-secret-0123456789abcdef" });
const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
  const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
});
const { port } = server.address() as AddressInfo;
const body = JSON.stringify({ name: "bench/http", data: { order: 1 } });
if (process.env.WARM) {
  const w = spawn(
    "npx",
    ["autocannon", "-c", "10", "-d", process.env.WARM, "-m", "POST", "-H", "content-type: application/json", "-b", body, `http://127.0.0.1:${port}/e/${key}`],
    { stdio: "ignore" },
  );
  await new Promise((r) => w.on("exit", r));
}
const { Session } = await import("node:inspector/promises");
const session = new Session(); session.connect();
if (process.env.PROF) { await session.post("Profiler.enable"); await session.post("Profiler.setSamplingInterval", { interval: 200 }); await session.post("Profiler.start"); }
const cpu0 = process.cpuUsage();
const child = spawn(
  "npx",
  [
    "autocannon",
    "-j",
    "-c",
    "10",
    "-d",
    process.env.SECS ?? "5",
    "-m",
    "POST",
    "-H",
    "content-type: application/json",
    "-b",
    body,
    `http://127.0.0.1:${port}/e/${key}`,
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
let out = "";
child.stdout.on("data", (d) => (out += d));
await new Promise((r) => child.on("exit", r));
const cpu1 = process.cpuUsage(cpu0);
if (process.env.PROF) { const { profile } = await session.post("Profiler.stop"); (await import("node:fs")).writeFileSync(process.env.PROF, JSON.stringify(profile)); }
const total = JSON.parse(out).requests.total;
console.log(
  `requests ${total} (${Math.round(total / Number(process.env.SECS ?? 5))}/s), server cpu per request ${((cpu1.user + cpu1.system) / 1000 / total).toFixed(3)} ms`,
);
if (process.env.COUNTS) console.log([...counts].sort((a, b) => b[1] - a[1]).slice(0, 15));
const origRedis = 0;
server.close();
(server as any).closeAllConnections?.();
await engine.stop();
await realtime.close();
await pool.end();
await redisFixture.close();
await database.close();
