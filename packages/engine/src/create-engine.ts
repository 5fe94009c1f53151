import {
  type AnyStepwiseFunction,
  ErrorCode,
  type EventPayload,
  INVOKE_EVENT_NAME,
  parseEvents,
  type RunInfo,
  type SendEventResult,
  StepwiseError,
  type StepwiseEvent,
  type StepwiseTransport,
  type StepwiseWebhook,
  type WaitOptions,
} from "@stepwise/core";
import type { StepRecord } from "@stepwise/core/internal";
import { type CancelManyFilter, createCancelMany } from "./cancel-many.js";
import { checkReady } from "./check-ready.js";
import type { RunToQueue } from "./flow/flow-keys.js";
import { createRunQueuer } from "./flow/queue-runs.js";
import { createTimeoutWatch } from "./flow/timeouts.js";
import { FunctionRegistry } from "./function-registry.js";
import { createIngest } from "./ingest/ingest.js";
import { createReconciler } from "./ingest/reconciler.js";
import { createWaitMatcher } from "./ingest/wait-matching.js";
import { Lifecycle, type LifecycleListener } from "./lifecycle.js";
import { publishLifecycle } from "./lifecycle-publisher.js";
import { type EngineOptions, resolveEngineOptions } from "./options.js";
import type { InspectableQueue } from "./ports/queue.js";
import type { Realtime } from "./ports/realtime.js";
import { type ListRunsFilter, publicEvent, type RunStore, type StoredEvent } from "./ports/run-store.js";
import { newEventId, newRunId, Router } from "./router.js";
import { type CancelResult, createRunActions } from "./run-actions.js";
import { createRunWaiters, toRunInfo } from "./run-waiters.js";
import { startCronScheduler } from "./scheduler/cron-scheduler.js";
import { createDispatcher } from "./worker/dispatcher.js";
import type { ProcessContext } from "./worker/process-run.js";

/** A running engine: workers, scheduler and the API the client and server call. */
export interface Engine {
  /** Starts workers, the reconciler and cron (after recovering runs left by a crash). */
  start(): Promise<void>;
  /**
   * Stops taking work and waits for running passes to end, at most `graceMs` (Default: no
   * limit); runs still executing then are released for other workers.
   */
  stop(options?: { graceMs?: number }): Promise<{ released: number }>;
  /** Validates, stores and routes events; answers their ids once stored. */
  send(events: EventPayload | EventPayload[]): Promise<SendEventResult>;
  /** Starts a run of a function and resolves with the run once it has ended. */
  invoke(functionId: string, data: Record<string, unknown>, options?: WaitOptions): Promise<RunInfo>;
  /** Resolves with a run once it has ended. Rejects with WAIT_TIMEOUT or RUN_NOT_FOUND. */
  waitForRun(runId: string, options?: WaitOptions): Promise<RunInfo>;
  runsForEvent(eventId: string): Promise<RunInfo[]>;
  /** Events, newest received first, by name and receive time; page on with `before` (see `RunStore.listEvents`). */
  listEvents: RunStore["listEvents"];
  /** One stored event, or `null`. */
  getEvent(eventId: string): Promise<StepwiseEvent | null>;
  /**
   * Runs, newest first, filtered by function (its qualified or plain id), status, event and
   * creation time; page on with `before` (see `ListRunsFilter`).
   */
  listRuns(filter: ListRunsFilter): Promise<RunInfo[]>;
  getRun(runId: string): Promise<RunInfo | null>;
  /** The recorded steps of a run, in the order they were first recorded, with their times. */
  listSteps(runId: string): Promise<StepRecord[]>;
  /**
   * Cancels a run that has not ended, and the runs it invoked: they end `cancelled`, their
   * waits close, a pass executing one (here or, through the bus, in another process) is aborted
   * and records nothing more, and a parent waiting on the run's result gets a failed step.
   * Answers the run and the ids cancelled (none when it had ended). Rejects with RUN_NOT_FOUND.
   */
  cancel(runId: string, options?: { reason?: string }): Promise<CancelResult>;
  /**
   * Cancels every run of a function that has not ended, created in `[since, until)`, whose
   * event meets `if` (CEL over `event`), each as {@link Engine.cancel} cancels one. Answers how
   * many runs were cancelled (with the runs they invoked). Rejects with FUNCTION_NOT_FOUND or
   * INVALID_EXPRESSION.
   */
  cancelMany(filter: CancelManyFilter): Promise<{ cancelled: number }>;
  /**
   * Starts a new run of a run's function with the same event (`rerunOf` names the original).
   * With `fromStep` (a step key, or an id: its first execution), the new run reuses the
   * results the original recorded before that step and executes from it on. Rejects with
   * RUN_NOT_FOUND, STEP_NOT_FOUND or FUNCTION_NOT_FOUND (the function is no longer deployed).
   */
  rerun(runId: string, options?: { fromStep?: string }): Promise<RunInfo>;
  /**
   * Runs every function a stored event starts today again (each a rerun of its newest run of
   * the event, or its first run); waits the event once resolved are not resolved again.
   * Rejects with EVENT_NOT_FOUND.
   */
  replayEvent(eventId: string): Promise<RunInfo[]>;
  /** Subscribes to lifecycle events; returns the unsubscribe function. */
  on(listener: LifecycleListener): () => void;
  /**
   * Resolves once nothing is in flight here (no pass, reserved slot, held run, ingest,
   * reconciler pass or cron tick) and nothing in the queue is due.
   */
  idle(): Promise<void>;
  /** What this process's workers hold now (for metrics, tests and the dashboard). */
  workload(): EngineWorkload;
  /** Items in the queue, due or not (the whole deployment's, when the queue is shared). */
  queueSize(): Promise<number>;
  /**
   * Whether the store and the queue answer now (a read of each, at most `timeoutMs` each,
   * Default: 2000): `"ok"`, or what went wrong. For readiness probes (`GET /ready`).
   */
  checkReady(timeoutMs?: number): Promise<{ store: string; queue: string }>;
  /**
   * Re-enqueues every due run and recovers expired leases now. The reconciler does this
   * periodically, there for runs due for more than `DUE_RUN_GRACE_MS` only.
   */
  reconcile(): Promise<void>;
  /** The functions this engine runs, by qualified id (`<app id>/<function id>`). */
  readonly functions: ReadonlyMap<string, AnyStepwiseFunction>;
  /** The webhooks of this engine's clients, by id (served at `POST /webhooks/<id>`). */
  readonly webhooks: ReadonlyMap<string, StepwiseWebhook>;
  /** A transport for `Stepwise` clients in this process. */
  readonly transport: StepwiseTransport;
  /** The realtime channels handlers publish on and the engine publishes runs' lifecycle on (see `EngineOptions.realtime`). */
  readonly realtime: Realtime;
}

/** What one engine's workers hold at a moment. */
export interface EngineWorkload {
  /** Passes executing now (at most `concurrency`). */
  running: number;
  /**
   * Runs taken from the queue that wait here for a free worker slot (eager starts filled them
   * meanwhile). Runs waiting for a function's concurrency slot stay in the queue, for any worker.
   */
  held: number;
  /** Most runs a worker holds that it cannot run yet (its `concurrency`); the rest stay in the queue. */
  maxHeld: number;
}

/**
 * Creates the engine over its ports. Nothing runs until `start()`.
 *
 * @example
 * const engine = createEngine({ store, queue: createMemoryQueue({ clock }), clock, clients: [stepwise] });
 * await engine.start();
 */
export function createEngine(engineOptions: EngineOptions): Engine {
  const options = resolveEngineOptions(engineOptions);
  const { store, queue, clock, logger } = options;
  const lifecycle = new Lifecycle();
  const registry = new FunctionRegistry(options.clients, options.functions);
  const webhooks = new Map<string, StepwiseWebhook>();
  for (const webhook of options.clients.flatMap((client) => client.webhooks)) {
    if (webhooks.has(webhook.id) && webhooks.get(webhook.id) !== webhook) {
      throw new StepwiseError({
        code: ErrorCode.InvalidFunctionConfig,
        category: "user",
        message: `two apps define a webhook "${webhook.id}" (${webhooks.get(webhook.id)?.appId}, ${webhook.appId}); webhook ids are paths and must be unique`,
      });
    }
    webhooks.set(webhook.id, webhook);
  }
  const functions = registry.functions;
  if (options.publishLifecycle) publishLifecycle(lifecycle, options.realtime);
  const router = new Router(functions.values(), () => clock.now());
  const waiters = createRunWaiters({ store, bus: options.bus, lifecycle, pollMs: options.waitPollMs });
  const waitForRun = waiters.waitForRun;
  let stopCron: (() => void) | undefined;
  let stopReconciler: (() => void) | undefined;
  let stopClockSync: (() => void) | undefined;

  // Work in flight outside the dispatcher (ingests, reconciler passes, cron ticks): it may start
  // runs, so `idle()` waits for it.
  let inFlight = 0;
  const track = async <T>(work: Promise<T>): Promise<T> => {
    inFlight++;
    try {
      return await work;
    } finally {
      inFlight--;
    }
  };

  const enqueue: (runs: RunToQueue[]) => Promise<void> = createRunQueuer({ store, queue, functionOf: (functionId) => functions.get(functionId) });

  /**
   * Runs this process just made runnable: due ones with a known function start here when a
   * slot is free (`eagerStart`), the rest go to the queue. Not for the reconciler's re-enqueues:
   * those runs may sit in the queue already, where a second item would cost a wasted claim.
   */
  const startOrEnqueue = async (items: RunToQueue[]) => {
    if (!options.eagerStart || items.length === 0) return enqueue(items);
    const now = clock.now();
    const due = new Set(items.filter((item) => item.availableAt <= now));
    const left = dispatcher.offer([...due]);
    await enqueue(left.length === due.size ? items : [...items.filter((item) => !due.has(item)), ...left]);
  };

  const context: ProcessContext = {
    options,
    lifecycle,
    router,
    resolveFunction: (functionId) => registry.runnableFunction(functionId),
    resolveInvoked: (functionId, appId) => registry.resolve(functionId, appId),
    sendEvents: (events) => send(events),
    enqueue: (items) => startOrEnqueue(items),
    runEnded: (run) => waiters.runEnded(run),
    matchRecentEvents: (runId, trigger, waits, sinceMs) => track(waitMatcher.matchRecentEvents(runId, trigger, waits, sinceMs)),
    watchDeadline: (at) => timeouts.watch(at),
    announceSingletons: (cancelled) => actions.announceSingletons(cancelled),
  };
  const dispatcher = createDispatcher(context, functions);
  /** Cancels a run as `cancel` does, for flow control (a `cancelOn` event, a timeout, a bulk cancel); answers how many runs ended. */
  const cancelFor = async (runId: string, reason: string) => (await actions.cancel(runId, { reason })).cancelled.length;
  const waitMatcher = createWaitMatcher({ store, now: () => clock.now(), enqueue, cancel: cancelFor });
  const matchWaits = waitMatcher.matchEvents;
  const ingestEvents = createIngest({
    options,
    lifecycle,
    router,
    dispatcher,
    matchWaits,
    enqueue,
    watchDeadline: (at) => timeouts.watch(at),
    announceSingletons: (cancelled) => actions.announceSingletons(cancelled),
    background: (work) => void track(work),
  });
  const ingest: typeof ingestEvents = (events, extraRuns) => track(ingestEvents(events, extraRuns));
  const timeouts = createTimeoutWatch({
    store,
    clock,
    lifecycle,
    functionOf: (functionId) => functions.get(functionId),
    cancel: cancelFor,
    track,
  });
  const reconciler = createReconciler({
    options,
    lifecycle,
    runs: (functionId) => registry.runnableFunction(functionId) !== undefined,
    matchWaits,
    sweepTimeouts: timeouts.sweep,
    enqueue,
    track,
  });
  const reconcile = reconciler.reconcile;
  const actions = createRunActions({ options, lifecycle, registry, router, waiters, dispatcher, enqueue });
  const cancelMany = createCancelMany(store, cancelFor);

  function toStored(payloads: EventPayload[]): StoredEvent[] {
    const now = clock.now();
    return payloads.map((payload) => ({ id: newEventId(), key: payload.id, name: payload.name, data: payload.data ?? {}, ts: payload.ts ?? now }));
  }

  async function send(events: EventPayload | EventPayload[]): Promise<SendEventResult> {
    const { ids } = await ingest(toStored(parseEvents(events)));
    return { ids };
  }

  async function startRun(id: string, data: Record<string, unknown>): Promise<string> {
    const functionId = registry.require(id);
    const [event] = toStored(parseEvents({ name: INVOKE_EVENT_NAME, data }));
    const runId = newRunId();
    const fields = router.runFields(functionId, event as StoredEvent);
    const { runs } = await ingest([event as StoredEvent], [{ id: runId, functionId, eventId: (event as StoredEvent).id, ...fields }]);
    if (!runs.some((run) => run.id === runId)) {
      throw new StepwiseError({
        code: ErrorCode.DuplicateRun,
        category: "user",
        message: `no run of "${functionId}" was started: a run of it holds idempotency key ${JSON.stringify(fields.idempotencyKey)} (for 24 h)`,
        details: { functionId, idempotencyKey: fields.idempotencyKey },
      });
    }
    return runId;
  }

  const transport: StepwiseTransport = {
    send,
    async invoke(functionId, data, waitOptions) {
      const runId = await startRun(functionId, data);
      try {
        return await waitForRun(runId, waitOptions);
      } catch (error) {
        if (StepwiseError.isInstance(error) && error.code === ErrorCode.WaitTimeout) {
          throw new StepwiseError({
            code: ErrorCode.InvokeTimeout,
            message: `invoke of "${functionId}" got no result within ${waitOptions.timeoutMs} ms (run ${runId} goes on)`,
            details: { runId },
          });
        }
        throw error;
      }
    },
    runsForEvent: async (eventId) => (await store.listRunsForEvent(eventId)).map(toRunInfo),
    waitForRun,
  };
  for (const client of options.clients) client.setTransport(transport);

  return {
    functions,
    webhooks,
    realtime: options.realtime,
    transport,
    send,
    invoke: (functionId, data, waitOptions = {}) => transport.invoke(functionId, data, waitOptions),
    waitForRun,
    runsForEvent: transport.runsForEvent,
    async getRun(runId) {
      const run = await store.getRun(runId);
      return run ? toRunInfo(run) : null;
    },
    listSteps: (runId) => store.listSteps(runId),
    cancel: actions.cancel,
    async cancelMany(filter) {
      const functionId = registry.resolve(filter.functionId);
      if (!functionId)
        throw new StepwiseError({ code: ErrorCode.FunctionNotFound, category: "user", message: `no function "${filter.functionId}" is registered` });
      return cancelMany({ ...filter, functionId });
    },
    rerun: actions.rerun,
    replayEvent: actions.replayEvent,
    listEvents: (filter) => store.listEvents(filter),
    async getEvent(eventId) {
      const event = await store.getEvent(eventId);
      return event ? publicEvent(event) : null;
    },
    async listRuns(filter) {
      // A plain id names the function of whichever app has it (an unknown one lists nothing).
      const functionId = filter.functionId === undefined ? undefined : (registry.resolve(filter.functionId) ?? filter.functionId);
      return (await store.listRuns({ ...filter, functionId })).map(toRunInfo);
    },
    on: (listener) => lifecycle.on(listener),
    reconcile,
    queueSize: () => queue.size(),
    workload: () => ({ running: dispatcher.activeCount, held: dispatcher.heldCount, maxHeld: dispatcher.maxHeld }),
    checkReady: (timeoutMs = 2000) => checkReady(store, queue, timeoutMs),

    async start() {
      await waiters.start();
      await actions.start();
      // Runs recorded before function ids carried their app: this engine's functions adopt them.
      const adopted = await store.qualifyFunctionIds(registry.qualifiedIds());
      if (adopted > 0) logger.info({ runs: adopted }, "recorded runs of this app's functions under their qualified ids (<app>/<function>)");
      const recovered = await store.recoverLeases({ now: clock.now(), all: options.recoverOnStart === "all" });
      if (recovered.length > 0) logger.info({ runs: recovered.length }, "recovered runs left running by a previous process");
      await reconcile();
      if (options.workers) dispatcher.start();
      if (options.scheduler) {
        stopCron = startCronScheduler({
          store,
          clock,
          lifecycle,
          functions: [...functions.values()],
          onRun: (run) => enqueue([{ runId: run.id, functionId: run.functionId, availableAt: clock.now(), fresh: true }]),
          runFields: (functionId, event) => router.runFields(functionId, event),
          announceSingletons: (cancelled) => actions.announceSingletons(cancelled),
          track,
        });
      }
      stopReconciler = reconciler.start();
      stopClockSync = options.clockSync?.();
    },

    async stop(stopOptions = {}) {
      stopCron?.();
      stopReconciler?.();
      timeouts.stop();
      stopClockSync?.();
      const { released } = await dispatcher.stop(stopOptions.graceMs ?? Number.POSITIVE_INFINITY);
      await Promise.all([waiters.stop(), actions.stop()]);
      return { released };
    },

    async idle() {
      // Queues that can tell when their next item is due (`InspectableQueue`); others count as empty.
      const inspectable = queue as Partial<InspectableQueue>;
      // Every kind of work in flight counts: passes, reserved slots, runs held for a slot, and
      // ingests, reconciler passes and cron ticks that may start runs.
      // The counters are read after the queue answers: work may have started while it did.
      const quiet = async () => {
        const next = (await inspectable.nextAvailableAt?.()) ?? null;
        return inFlight === 0 && dispatcher.pendingCount === 0 && (next === null || next > clock.now());
      };
      const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      for (;;) {
        if (await quiet()) {
          // Quiet twice in a row: a pass that just ended may enqueue follow-ups a tick later.
          await pause(5);
          if (await quiet()) return;
        }
        await pause(2);
      }
    },
  };
}
