import { ErrorCode, isTerminalStatus, type RunInfo, StepwiseError, storableText } from "@stepwise/core";
import type { RunToQueue } from "./flow/flow-keys.js";
import type { FunctionRegistry } from "./function-registry.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ResolvedEngineOptions } from "./options.js";
import type { Unsubscribe } from "./ports/bus.js";
import { type IngestResult, type RunRecord, SINGLETON_CANCELLED } from "./ports/run-store.js";
import { newRunId, type Router } from "./router.js";
import { type RunWaiters, toRunInfo } from "./run-waiters.js";
import type { Dispatcher } from "./worker/dispatcher.js";

/** A cancel reason is recorded as the run's error message: 1–1000 characters Postgres can store. */
const cancelReason = storableText.min(1, "must not be empty").max(1000, "must be at most 1000 characters");

/**
 * Bus channel on which an engine names the runs it cancelled (an array of run ids), so that
 * the process executing one aborts its pass at once instead of at its next commit or heartbeat.
 */
export const RUN_CANCELLED_CHANNEL = "run-cancelled";

/** What {@link RunActions.cancel} did. */
export interface CancelResult {
  /** The run as it stands now: `cancelled`, or as it had ended before. */
  run: RunInfo;
  /** Ids of the runs cancelled now: the run and the runs it invoked that were still going. Empty when it had ended. */
  cancelled: string[];
}

/** The runs a store write cancelled for new runs of a `singleton: cancel` function, with the parents to wake. */
export type SingletonCancels = NonNullable<IngestResult["cancelled"]>;

/** Operators' actions on runs: cancel, rerun (from a step), replay an event. */
export interface RunActions {
  cancel(runId: string, options?: { reason?: string }): Promise<CancelResult>;
  /** Announces runs the store cancelled as part of another write (a singleton's new run): see {@link RunActions.cancel}. */
  announceCancelled(cancelled: RunRecord[], parents: Array<{ runId: string; functionId: string }>, reason: string): Promise<string[]>;
  /**
   * {@link RunActions.announceCancelled} for the runs a write cancelled for new runs of a
   * `singleton: cancel` function (an ingest, an invoke, a follow-up, a cron tick), with their reason.
   */
  announceSingletons(cancelled: SingletonCancels): Promise<string[]>;
  rerun(runId: string, options?: { fromStep?: string }): Promise<RunInfo>;
  replayEvent(eventId: string): Promise<RunInfo[]>;
  /** Listens for cancellations made by other processes (a worker aborts their passes). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Creates the run actions of one engine. */
export function createRunActions(deps: {
  options: ResolvedEngineOptions;
  lifecycle: Lifecycle;
  registry: FunctionRegistry;
  router: Router;
  waiters: RunWaiters;
  dispatcher: Dispatcher;
  enqueue(items: RunToQueue[]): Promise<void>;
}): RunActions {
  const { options, lifecycle, registry, router, waiters, dispatcher, enqueue } = deps;
  const { store, clock, bus } = options;
  let subscription: Unsubscribe | undefined;

  const cancelledError = (runId: string, reason: string) =>
    new StepwiseError({ code: ErrorCode.RunCancelled, message: `run ${runId} was cancelled: ${reason}` });

  async function requireRun(runId: string) {
    const run = await store.getRun(runId);
    if (!run) throw new StepwiseError({ code: ErrorCode.RunNotFound, category: "user", message: `no run with id ${runId}` });
    return run;
  }

  /** Fails early for a run that no worker could execute: its function is gone from the code. */
  function requireFunction(functionId: string): void {
    if (registry.runnableFunction(functionId)) return;
    throw new StepwiseError({
      code: ErrorCode.FunctionNotFound,
      category: "user",
      message: `no function "${functionId}" is registered in this deployment: a new run of it could never start`,
    });
  }

  async function created(runs: Array<{ id: string; functionId: string; eventId: string }>): Promise<RunInfo[]> {
    const now = clock.now();
    for (const run of runs) lifecycle.emit({ type: "run-created", runId: run.id, functionId: run.functionId, eventId: run.eventId });
    await enqueue(runs.map((run) => ({ runId: run.id, functionId: run.functionId, availableAt: now, fresh: true })));
    const infos: RunInfo[] = [];
    for (const run of runs) {
      const record = await store.getRun(run.id);
      if (record) infos.push(toRunInfo(record));
    }
    return infos;
  }

  /**
   * What follows a cancellation the store recorded: lifecycle events, the passes executing the
   * runs aborted (here, or through the bus in another process), waiters told, the parents whose
   * invoke step failed woken. Answers the runs' ids.
   */
  async function announceCancelled(cancelled: RunRecord[], parents: Array<{ runId: string; functionId: string }>, reason: string): Promise<string[]> {
    for (const run of cancelled) {
      lifecycle.emit({ type: "run-cancelled", runId: run.id, functionId: run.functionId, reason });
      dispatcher.abortRun(run.id, cancelledError(run.id, reason));
      waiters.runEnded(toRunInfo(run));
    }
    const ids = cancelled.map((run) => run.id);
    if (ids.length > 0 && bus) {
      await bus
        .publish(RUN_CANCELLED_CHANNEL, ids)
        .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `announcing the cancellation of ${ids.join(", ")}` }));
    }
    if (parents.length > 0) await enqueue(parents.map((parent) => ({ ...parent, availableAt: clock.now() })));
    return ids;
  }

  return {
    announceCancelled,
    announceSingletons: (cancelled) => announceCancelled(cancelled.runs, cancelled.parents, SINGLETON_CANCELLED),

    async cancel(runId, cancelOptions = {}) {
      const reason = cancelOptions.reason ?? "cancelled by an operator";
      const checked = cancelReason.safeParse(reason);
      if (!checked.success) {
        throw new StepwiseError({
          code: ErrorCode.InvalidRequest,
          category: "user",
          message: `cancel reason: ${checked.error.issues[0]?.message ?? "invalid"}`,
        });
      }
      const before = await requireRun(runId);
      if (isTerminalStatus(before.status)) return { run: toRunInfo(before), cancelled: [] };
      const now = clock.now();
      const { cancelled, parent } = await store.cancelRun({
        runId,
        error: { name: "StepwiseError", code: ErrorCode.RunCancelled, message: reason },
        now,
      });
      const ids = await announceCancelled(cancelled, parent ? [parent] : [], reason);
      // Ended meanwhile (a worker finished it first): the run as it ended.
      const run = cancelled.find((entry) => entry.id === runId) ?? (await requireRun(runId));
      return { run: toRunInfo(run), cancelled: ids };
    },

    async rerun(runId, rerunOptions = {}) {
      const original = await requireRun(runId);
      requireFunction(original.functionId);
      let reuseStepsBefore: string | undefined;
      if (rerunOptions.fromStep !== undefined) {
        const wanted = rerunOptions.fromStep;
        const steps = await store.listSteps(runId);
        // A key names one step; an id may repeat (a loop), and then names its first execution.
        const step = steps.find((entry) => entry.key === wanted) ?? steps.find((entry) => entry.id === wanted);
        if (!step) {
          const known = [...new Set(steps.map((entry) => entry.id))].join(", ") || "none";
          throw new StepwiseError({ code: ErrorCode.StepNotFound, category: "user", message: `run ${runId} has no step "${wanted}" (its steps: ${known})` });
        }
        reuseStepsBefore = step.key;
      }
      const runs = await store.createRuns({
        runs: [{ id: newRunId(), functionId: original.functionId, eventId: original.eventId, rerunOf: original.id, reuseStepsBefore, flow: original.flow }],
        now: clock.now(),
      });
      const [info] = await created(runs);
      if (!info) throw new StepwiseError({ code: ErrorCode.Internal, message: `the rerun of ${runId} was not recorded` });
      return info;
    },

    async replayEvent(eventId) {
      const event = await store.getEvent(eventId);
      if (!event) throw new StepwiseError({ code: ErrorCode.EventNotFound, category: "user", message: `no event with id ${eventId}` });
      const existing = await store.listRunsForEvent(eventId);
      // The functions the event starts today; each repeats its newest run of it, or runs it first.
      const runs = router.route(event).map((run) => ({
        ...run,
        rerunOf: existing.filter((entry) => entry.functionId === run.functionId && entry.parentRunId === undefined).at(-1)?.id,
      }));
      return created(await store.createRuns({ runs, now: clock.now() }));
    },

    async start() {
      if (!bus || !options.workers) return;
      subscription = await bus.subscribe(RUN_CANCELLED_CHANNEL, (message) => {
        if (!Array.isArray(message)) return;
        for (const id of message) {
          if (typeof id === "string") dispatcher.abortRun(id, cancelledError(id, "cancelled by another process"));
        }
      });
    },

    async stop() {
      await subscription?.();
      subscription = undefined;
    },
  };
}
