import type { Duration, RunInfo, SendEventResult } from "@stepwise/core";
import { createEngine, createMemoryQueue, type Engine, type EngineOptions, type Queue, type RunStore } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite } from "@stepwise/postgres/testing";
import { FakeClock } from "./fake-clock.js";

/** Options of {@link createTestEngine}: engine options without the ports, which it provides. */
export interface TestEngineOptions extends Omit<EngineOptions, "store" | "queue" | "clock"> {
  /** (Default: a new `FakeClock` at 2030-01-01) */
  clock?: FakeClock;
  /** (Default: a fresh PGlite database, cloned from a migrated template) */
  store?: RunStore;
  /** (Default: an in-memory queue on `clock`) Closed by `close()`. */
  queue?: Queue;
  /** Called by `close()` after the engine stopped: closes what the caller made for it (a database, a Redis prefix). */
  onClose?: () => Promise<void>;
}

/** An engine on a fresh embedded database with a fake clock, started. */
export interface TestEngine extends Engine {
  clock: FakeClock;
  store: RunStore;
  /** The engine's queue (to read what it holds: items, concurrency slots). */
  queue: Queue;
  /** Advances the fake clock, then waits until the engine is idle. */
  advance(duration: Duration): Promise<void>;
  /** Advances the fake clock to `date` (never backwards), then waits until the engine is idle. */
  advanceTo(date: Date | number): Promise<void>;
  /** Sends events and answers the first run each started (throws when an event started none). */
  sendAndGetRuns(events: Parameters<Engine["send"]>[0]): Promise<{ ids: SendEventResult["ids"]; runIds: string[] }>;
  /** Waits (real time, default 10 s) for a run to end. */
  result(runId: string, timeoutMs?: number): Promise<RunInfo>;
  /** Stops the engine and deletes its database. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates and starts an engine for tests: a fresh PGlite database (cloned from a migrated
 * template, ~0.5 s), an in-memory queue and a {@link FakeClock}. The reconciler runs once
 * a day of fake time, so long `advance()`s stay cheap.
 *
 * @example
 * await using engine = await createTestEngine({ clients: [stepwise] });
 * const { runIds } = await engine.sendAndGetRuns({ name: "user.created", data: { id: 1 } });
 * await engine.advance("7d");
 * expect((await engine.result(runIds[0])).status).toBe("completed");
 */
export async function createTestEngine(options: TestEngineOptions = {}): Promise<TestEngine> {
  const clock = options.clock ?? new FakeClock();
  let closeDatabase: () => Promise<void> = async () => {};
  let store = options.store;
  if (!store) {
    const database = await createTestPglite();
    store = createPostgresStore({ pool: database.pool });
    closeDatabase = database.close;
  }
  const { onClose, queue = createMemoryQueue({ clock }), ...engineOptions } = options;
  const engine = createEngine({ reconcileIntervalMs: 24 * 60 * 60 * 1000, recoverOnStart: "all", ...engineOptions, store, queue, clock });
  clock.onSettle(() => engine.idle());
  await engine.start();
  const ownStore = store;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    clock.onSettle(undefined);
    await engine.stop();
    await queue.close();
    await closeDatabase();
    await onClose?.();
  };
  return Object.assign(engine, {
    clock,
    store: ownStore,
    queue,
    async advance(duration: Duration) {
      await engine.idle();
      await clock.advance(duration);
      await engine.idle();
    },
    async advanceTo(date: Date | number) {
      await engine.idle();
      await clock.advanceTo(date);
      await engine.idle();
    },
    async sendAndGetRuns(events: Parameters<Engine["send"]>[0]) {
      const { ids } = await engine.send(events);
      const runIds: string[] = [];
      for (const id of ids) {
        const runs = await engine.runsForEvent(id);
        if (runs.length === 0) throw new Error(`event ${id} started no run`);
        runIds.push(...runs.map((run) => run.id));
      }
      return { ids, runIds };
    },
    result: (runId: string, timeoutMs = 10_000) => engine.waitForRun(runId, { timeoutMs }),
    close,
    [Symbol.asyncDispose]: close,
  });
}
