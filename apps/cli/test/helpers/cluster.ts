import { existsSync, readFileSync } from "node:fs";
import type pg from "pg";
import { createEventKey } from "./event-key.js";
import { killHard } from "./spawn-dev.js";
import { type ProductionProcess, spawnProduction } from "./spawn-production.js";

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  functions: string;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  /** Extra environment for the processes (e.g. the step body log). */
  env?: Record<string, string>;
  /** `stepwise worker` processes besides the one `stepwise start`. */
  workers: number;
  /** Runs per process at once. */
  concurrency: number;
  /** Lease, short so that a killed worker's runs move on within seconds, yet long enough that a worker slowed by a loaded CI machine keeps it (ms). (Default: 4000) */
  leaseMs?: number;
}

/** One `stepwise start` and some `stepwise worker`s, as child processes. */
export interface Cluster {
  server: ProductionProcess;
  workers: ProductionProcess[];
  /** kill -9 a random worker and start a new one; `beforeKill` learns the victim's pid just before the signal. */
  replaceRandomWorker(beforeKill?: (pid: number) => void): Promise<void>;
  /** POSTs events in batches of 500; answers the acknowledged event ids. */
  send(events: Array<{ name: string; data: Record<string, unknown>; id?: string }>): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts a cluster of real processes against one Postgres and one Redis. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const env = { DATABASE_URL: options.databaseUrl, REDIS_URL: options.redisUrl, STEPWISE_REDIS_PREFIX: options.redisPrefix, ...options.env };
  const args = ["--functions", options.functions, "--concurrency", String(options.concurrency), "--lease", String(options.leaseMs ?? 4000), "--quiet"];
  const spawnWorker = () => spawnProduction({ mode: "worker", args, env });
  const server = await spawnProduction({ mode: "start", args, env });
  // `stepwise start` refuses requests without a key: the cluster sends with an event key, made
  // once start has migrated the database.
  const eventKey = await createEventKey(options.databaseUrl);
  const workers = await Promise.all(Array.from({ length: options.workers }, spawnWorker));
  return {
    server,
    workers,
    async replaceRandomWorker(beforeKill) {
      const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0] as ProductionProcess;
      if (victim.child.pid !== undefined) beforeKill?.(victim.child.pid);
      await killHard(victim.child);
      workers.push(await spawnWorker());
    },
    async send(events) {
      const ids: string[] = [];
      for (let offset = 0; offset < events.length; offset += 500) {
        const response = await fetch(`${server.url}/e/${eventKey}`, {
          method: "POST",
          body: JSON.stringify(events.slice(offset, offset + 500)),
          headers: { "content-type": "application/json" },
        });
        if (response.status !== 200) throw new Error(`POST /e/<key> answered ${response.status}: ${await response.text()}`);
        ids.push(...((await response.json()) as { ids: string[] }).ids);
      }
      return ids;
    },
    async stop() {
      for (const running of [server, ...workers]) await killHard(running.child);
    },
  };
}

/** Runs by status, e.g. `{ completed: 300 }`. */
export async function runsByStatus(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; count: string }>("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status");
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
}

/** Polls until `count` runs completed, doing `during()` between polls; throws with the statuses on timeout. */
export async function waitForCompleted(pool: pg.Pool, count: number, timeoutMs: number, during?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = await runsByStatus(pool).catch(() => ({}) as Record<string, number>);
    if ((statuses["completed"] ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${JSON.stringify(statuses)} of ${count} runs completed in ${timeoutMs} ms`);
    await during?.();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** How often each step body ran, from the shared log ("<n> <step>" per line). */
export function bodyCounts(log: string): { distinct: number; total: number } {
  const lines = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : [];
  return { distinct: new Set(lines).size, total: lines.length };
}
