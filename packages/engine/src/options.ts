import { hostname } from "node:os";
import { type AnyStepwise, type AnyStepwiseFunction, type Logger, silentLogger } from "@stepwise/core";
import { createMemoryRealtime } from "./memory/memory-realtime.js";
import type { Bus } from "./ports/bus.js";
import type { Clock } from "./ports/clock.js";
import { createSystemClock } from "./ports/clock.js";
import type { Queue } from "./ports/queue.js";
import type { Realtime } from "./ports/realtime.js";
import type { RunStore } from "./ports/run-store.js";

/** Options of `createEngine`. */
export interface EngineOptions {
  store: RunStore;
  queue: Queue;
  /** (Default: the system clock) */
  clock?: Clock;
  /** Tells other processes about ended runs, so their `waitForRun` answers at once. (Default: none; the store is polled) */
  bus?: Bus;
  /**
   * Started with the engine and stopped with it, e.g. `() => syncClockOffset(...)`, which keeps a
   * system clock aligned with the database's. (Default: none)
   */
  clockSync?: () => () => void;
  /** Clients whose functions this engine runs; their `send()`/`invoke()` go through the engine. (Default: none) */
  clients?: AnyStepwise[];
  /** More functions to run. (Default: none) */
  functions?: AnyStepwiseFunction[];
  /** Identifies this worker in leases. (Default: `<hostname>:<pid>:<random>`) */
  workerId?: string;
  /** Most runs executing at once in this process. (Default: 100) */
  concurrency?: number;
  /** How long a claim lasts without renewal, in ms; renewed every third of it. (Default: 30000) */
  leaseMs?: number;
  /** How often to re-enqueue due runs from the store and recover expired leases, in ms. (Default: 1000) */
  reconcileIntervalMs?: number;
  /**
   * Which running runs to recover at start: `"expired"` leases only, or `"all"` (right when this
   * process owns the data alone, as the embedded mode does). (Default: `"expired"`)
   */
  recoverOnStart?: "expired" | "all";
  /**
   * How often `waitForRun` re-reads the store for a run that has not ended, in ms: the answer
   * for a run another process ends comes from its notice on the bus at once, and from this read
   * when the notice was lost (or there is no bus). (Default: 1000)
   */
  waitPollMs?: number;
  /**
   * Run workers (claim and execute runs). Without them (a process that serves the API only), the
   * reconciler matches events left unmatched but leaves the queue and expired leases to the
   * processes with workers. (Default: true)
   */
  workers?: boolean;
  /**
   * Start runs this process creates (from `send`, `invoke`, `step.invoke`, follow-ups) in this
   * process's own workers when a slot is free, without a round trip through the queue: the
   * event → start latency of a run is then the ingest and the claim. Runs that find no free
   * slot go to the queue for any worker; a crash before the claim leaves the run queued in the
   * store, where the reconciler finds it. (Default: true when `workers` is on)
   */
  eagerStart?: boolean;
  /** Run the cron scheduler. (Default: true) */
  scheduler?: boolean;
  /**
   * Realtime channels: handlers' `publish()` and, unless `publishLifecycle` is off, every run's
   * lifecycle (topic `lifecycle` on `run:<id>`, and but for step events on
   * `function:<qualified id>`). Share one Redis
   * realtime between the server and the workers so that a browser follows runs any worker
   * executes. (Default: in memory, this process only)
   */
  realtime?: Realtime;
  /** Publish runs' lifecycle events on `realtime`. (Default: true) */
  publishLifecycle?: boolean;
  logger?: Logger;
}

/** {@link EngineOptions} with defaults applied. */
export interface ResolvedEngineOptions extends Required<Omit<EngineOptions, "clients" | "functions" | "bus" | "clockSync">> {
  bus?: Bus;
  clockSync?: () => () => void;
  clients: AnyStepwise[];
  functions: AnyStepwiseFunction[];
}

/** Applies defaults, once, so nothing downstream checks for `undefined`. */
export function resolveEngineOptions(options: EngineOptions): ResolvedEngineOptions {
  const clock = options.clock ?? createSystemClock();
  return {
    store: options.store,
    queue: options.queue,
    clock,
    bus: options.bus,
    clockSync: options.clockSync,
    clients: options.clients ?? [],
    functions: options.functions ?? [],
    workerId: options.workerId ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
    concurrency: options.concurrency ?? 100,
    leaseMs: options.leaseMs ?? 30_000,
    reconcileIntervalMs: options.reconcileIntervalMs ?? 1000,
    recoverOnStart: options.recoverOnStart ?? "expired",
    waitPollMs: options.waitPollMs ?? 1000,
    workers: options.workers ?? true,
    eagerStart: (options.workers ?? true) && (options.eagerStart ?? true),
    scheduler: options.scheduler ?? true,
    realtime: options.realtime ?? createMemoryRealtime({ clock }),
    publishLifecycle: options.publishLifecycle ?? true,
    logger: options.logger ?? silentLogger,
  };
}
