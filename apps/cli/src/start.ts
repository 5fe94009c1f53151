import { createEngine, createSystemClock, syncClockOffset } from "@stepwise/engine";
import { assertSchemaCurrent, createPostgresKeyStore, createPostgresStore, migrate } from "@stepwise/postgres";
import { connectRedis, createRedisBus, createRedisQueue, createRedisRealtime } from "@stepwise/redis";
import { createServer } from "@stepwise/server";
import { assertPortFree } from "./assert-port-free.js";
import { connectPostgres } from "./connect-postgres.js";
import { listen } from "./listen.js";
import { loadFunctions } from "./load-functions.js";
import { createCliLogger, type LogFormat, logLifecycle, resolveLogFormat } from "./logging.js";
import { createPrinter } from "./printer.js";
import { startTelemetry } from "./telemetry.js";

/** Options of {@link startProduction}. */
export interface StartOptions {
  /** `"start"`: HTTP server, scheduler and workers, migrating first; `"worker"`: workers only, requiring a current schema. */
  mode: "start" | "worker";
  /** Module exporting the Stepwise client or functions. (Default: as `stepwise dev`) */
  functions?: string;
  /** (Default: `DATABASE_URL`; required) */
  databaseUrl?: string;
  /** (Default: `REDIS_URL`, else `redis://127.0.0.1:6379`) */
  redisUrl?: string;
  /** Key prefix in Redis, shared by every process of one deployment. (Default: `STEPWISE_REDIS_PREFIX`, else `"stepwise"`) */
  redisPrefix?: string;
  /** HTTP port for `start`; 0 picks a free one. (Default: 8288) */
  port?: number;
  /** HTTP interface for `start`. (Default: `"127.0.0.1"`; use `"0.0.0.0"` behind a proxy or in a container) */
  host?: string;
  /** Most runs executing at once in this process. (Default: 100) */
  concurrency?: number;
  /** How long a claim lasts without renewal: a crashed worker's runs move on after this, in ms. (Default: 30000) */
  leaseMs?: number;
  /** On shutdown, how long running steps may take before their runs are released, in ms. (Default: 30000) */
  graceMs?: number;
  /** Print each event, run and step. (Default: true) */
  print?: boolean;
  /** `json` lines or `pretty` ones. (Default: see `resolveLogFormat`: pretty on a terminal, JSON otherwise) */
  logFormat?: LogFormat;
}

/** A running `stepwise start` or `stepwise worker`. */
export interface RunningStepwise {
  /** The HTTP API (`start` only). */
  url?: string;
  /** Stops taking work, lets running steps finish within the grace period, and disconnects. */
  close(): Promise<{ released: number }>;
}

/**
 * `stepwise start` / `stepwise worker`: the engine on a Postgres server (`DATABASE_URL`, the
 * truth) and Redis (`REDIS_URL`: queue and bus, derived state). Any number of these processes
 * may run on any number of machines against the same Postgres and Redis.
 */
export async function startProduction(options: StartOptions): Promise<RunningStepwise> {
  const logFormat = options.logFormat ?? resolveLogFormat();
  const logger = createCliLogger(logFormat);
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 8288;
  // The module and the port first: a typo in either fails here, before any connection is made
  // and before `start` migrates the database.
  const loaded = await loadFunctions(options.functions);
  if (options.mode === "start") await assertPortFree({ host, port });
  const pool = await connectPostgres({
    databaseUrl: options.databaseUrl,
    onError: (error) => logger.warn({ error: error.message }, "a Postgres connection failed; the pool will open a new one"),
  });
  const stopTelemetry = startTelemetry(`stepwise-${options.mode}`);
  const cleanups: Array<() => Promise<unknown>> = [stopTelemetry, () => pool.end()];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {});
  };
  try {
    if (options.mode === "start") await migrate(pool);
    else await assertSchemaCurrent(pool);
    const redis = await connectRedis(options.redisUrl);
    cleanups.push(() => redis.quit());
    const prefix = options.redisPrefix ?? process.env["STEPWISE_REDIS_PREFIX"] ?? "stepwise";
    const store = createPostgresStore({ pool });
    const clock = createSystemClock();
    const queue = createRedisQueue({ redis, clock, prefix });
    const bus = createRedisBus({ redis, prefix });
    // Shared by every process: a worker publishes, any server process streams it to browsers.
    const realtime = createRedisRealtime({ redis, clock, prefix });
    cleanups.push(
      () => queue.close(),
      () => bus.close(),
      () => realtime.close(),
    );
    const engine = createEngine({
      store,
      queue,
      bus,
      realtime,
      clock,
      clockSync: () => syncClockOffset(clock, () => store.now()),
      clients: loaded.clients,
      functions: loaded.functions,
      concurrency: options.concurrency,
      leaseMs: options.leaseMs,
      scheduler: options.mode === "start",
      logger,
    });
    if (options.print !== false) engine.on(logFormat === "json" ? logLifecycle(logger) : createPrinter());
    await engine.start();
    const stopEngine = async () => (await engine.stop({ graceMs: options.graceMs ?? 30_000 })).released;
    if (options.mode === "worker") {
      return { close: async () => ({ released: await stopEngine().finally(cleanup) }) };
    }
    const keys = createPostgresKeyStore({ pool });
    if ((await keys.countActiveKeys()) === 0) {
      logger.warn(
        {},
        "no API key exists: every request to the API is refused (401) until one does; create one with `stepwise keys create --scope admin` (and `--scope event` for senders)",
      );
    }
    const realtimeSecret = process.env["STEPWISE_REALTIME_SECRET"] || undefined;
    if (!realtimeSecret) {
      logger.warn(
        {},
        "STEPWISE_REALTIME_SECRET is not set: realtime tokens minted by this process are accepted by this process only; give every server process the same secret (openssl rand -hex 32)",
      );
    }
    const server = await listen(createServer({ engine, logger, auth: { mode: "keys", keys }, realtimeSecret }), { host, port });
    return {
      url: server.url,
      async close() {
        await server.close();
        return { released: await stopEngine().finally(cleanup) };
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
