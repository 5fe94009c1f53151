import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { createEngine, createMemoryQueue, createSystemClock, measureClockOffset } from "@stepwise/engine";
import { createPostgresStore, migrate, openPglite } from "@stepwise/postgres";
import { createServer } from "@stepwise/server";
import { assertPortFree } from "./assert-port-free.js";
import { listen } from "./listen.js";
import { loadFunctions } from "./load-functions.js";
import { createCliLogger } from "./logging.js";
import { createPrinter } from "./printer.js";
import { startTelemetry } from "./telemetry.js";

/** Options of {@link startDev}. */
export interface DevOptions {
  /** Module exporting the Stepwise client or functions. (Default: the first of `src/stepwise.ts`, `src/functions.ts`, ...) */
  functions?: string;
  /** Port on 127.0.0.1; 0 picks a free one. (Default: 8288) */
  port?: number;
  /** Where the embedded database lives. (Default: `.stepwise`) */
  dataDir?: string;
  /** Print each event, run and step. (Default: true) */
  print?: boolean;
}

/** A running dev server. */
export interface DevServer {
  url: string;
  /** The loaded functions and what triggers each, e.g. `user.created` or `cron 0 9 * * * (UTC)`. */
  functions: Array<{ id: string; triggers: string[] }>;
  port: number;
  readyMs: number;
  close(): Promise<void>;
}

/**
 * Starts `stepwise dev`: embedded Postgres (PGlite) stored in `dataDir`, the engine with an
 * in-memory queue, and the HTTP API on 127.0.0.1. The functions module is loaded and the port
 * checked before `dataDir` is created, so either failing leaves nothing on disk.
 */
export async function startDev(options: DevOptions = {}): Promise<DevServer> {
  const started = performance.now();
  // Dev is for a person at a terminal: readable lines (the printer shows runs and steps).
  const logger = createCliLogger("pretty");
  const dataDir = resolve(options.dataDir ?? ".stepwise");
  const host = "127.0.0.1";
  const port = options.port ?? 8288;
  // What a typo can break comes before anything is written: a wrong --functions, a module that
  // throws or a taken port must not leave a data dir behind (nor a database initialized in it).
  const loaded = await loadFunctions(options.functions);
  await assertPortFree({ host, port });
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = lockDataDir(dataDir);
  const stopTelemetry = startTelemetry("stepwise-dev");
  try {
    const database = await openPglite({ dataDir: resolve(dataDir, "pgdata") });
    await migrate(database.pool);
    const store = createPostgresStore({ pool: database.pool });
    const clock = createSystemClock({ offsetMs: await measureClockOffset(() => store.now()) });
    const engine = createEngine({
      store,
      queue: createMemoryQueue({ clock }),
      clock,
      clients: loaded.clients,
      functions: loaded.functions,
      // This process owns the data dir alone (see the lock), so every "running" run is an orphan.
      recoverOnStart: "all",
      logger,
    });
    if (options.print !== false) engine.on(createPrinter());
    await engine.start();
    const server = await listen(createServer({ engine, logger, auth: { mode: "local" } }), { host, port });
    const readyMs = Math.round(performance.now() - started);
    return {
      url: server.url,
      functions: [...engine.functions.values()].map((fn) => ({
        id: fn.id,
        triggers: fn.config.triggers.map((trigger) =>
          "cron" in trigger ? `cron ${trigger.cron} (${trigger.timezone ?? "UTC"})` : `${trigger.event}${trigger.if ? ` if ${trigger.if}` : ""}`,
        ),
      })),
      port: server.port,
      readyMs,
      async close() {
        await server.close();
        // A step stuck in user code must not keep `stepwise dev` from exiting.
        await engine.stop({ graceMs: 5000 });
        await database.close();
        await stopTelemetry();
        releaseLock();
      },
    };
  } catch (error) {
    await stopTelemetry();
    releaseLock();
    throw error;
  }
}

/**
 * PGlite must never be opened by two processes at once: a pid file guards the data dir, and a
 * stale one (its process gone, e.g. after `kill -9`) is taken over.
 */
const lockedHere = new Set<string>();

function lockDataDir(dataDir: string): () => void {
  const lockPath = resolve(dataDir, "dev.pid");
  if (lockedHere.has(lockPath)) throw new Error(`${dataDir} is in use by another stepwise process (pid ${process.pid}, this one); close it first`);
  try {
    const pid = Number(readFileSync(lockPath, "utf8"));
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new Error(`${dataDir} is in use by another stepwise process (pid ${pid}); stop it or pass another --data-dir`);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  writeFileSync(lockPath, String(process.pid));
  lockedHere.add(lockPath);
  return () => {
    lockedHere.delete(lockPath);
    rmSync(lockPath, { force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
