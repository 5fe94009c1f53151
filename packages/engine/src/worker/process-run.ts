import { context as otelContext } from "@opentelemetry/api";
import {
  type AnyStepwiseFunction,
  deserializeError,
  FAILURE_EVENT_NAME,
  type JsonValue,
  type Logger,
  type RunInfo,
  type SerializedError,
} from "@stepwise/core";
import {
  backoffDelay,
  type DeferredStep,
  type ExecutionResult,
  executeFunction,
  LeaseLostError,
  type StepProgress,
  type StepRecord,
} from "@stepwise/core/internal";
import type { RunToQueue } from "../flow/flow-keys.js";
import type { Lifecycle } from "../lifecycle.js";
import type { ResolvedEngineOptions } from "../options.js";
import { type ClaimedRun, type IngestInput, type NewWait, publicEvent, type RunRecord, type StoredEvent } from "../ports/run-store.js";
import { newEventId, newRunId, type Router } from "../router.js";
import type { SingletonCancels } from "../run-actions.js";
import { toRunInfo } from "../run-waiters.js";
import { suspend } from "./suspend-pass.js";
import { type PassTrace, tracePass } from "./tracing.js";

/** Suffix of the synthetic function that runs a function's `onFailure` handler. */
export const FAILURE_FUNCTION_SUFFIX = "/on-failure";

/** What the run processor needs from the engine. */
export interface ProcessContext {
  options: ResolvedEngineOptions;
  lifecycle: Lifecycle;
  router: Router;
  /** Every runnable function by qualified id, including `<qualified id>/on-failure`. */
  resolveFunction(functionId: string): RunnableFunction | undefined;
  /** The qualified id of the function a `step.invoke` in app `appId` names (see `FunctionRegistry.resolve`). */
  resolveInvoked(functionId: string, appId: string): string | undefined;
  /** Stores events from `step.sendEvent` and routes them. */
  sendEvents(events: Array<{ name: string; data?: Record<string, unknown>; id?: string; ts?: number }>): Promise<{ ids: string[] }>;
  /** Enqueues runs made runnable now or later. */
  enqueue(items: RunToQueue[]): Promise<void>;
  /**
   * Announces runs the store cancelled for runs a pass created (an invoke, an `onFailure` run) of
   * a `singleton: cancel` function, so that their passes abort at once wherever they execute
   * (see `RunActions.announceSingletons`).
   */
  announceSingletons(cancelled: SingletonCancels): Promise<unknown>;
  /** Tells waiters a run has ended. */
  runEnded(run: RunInfo): void;
  /**
   * Matches the events received since `sinceMs` against waits the run just recorded (a
   * `lookback`): the first that matches resolves its wait, as if it had arrived after it.
   */
  matchRecentEvents(runId: string, trigger: StoredEvent, waits: NewWait[], sinceMs: number): Promise<void>;
  /** Watches a run's `timeouts` deadline (as a claim answered it). */
  watchDeadline(at: number | undefined): void;
  /** Called once a pass holds the run's lease, with the epoch its writes carry. */
  onClaimed?(runId: string, leaseEpoch: number): void;
}

/** A function as the worker runs it: its own, or the `onFailure` handler of another. */
export interface RunnableFunction {
  id: string;
  retries: number;
  handler: (context: never) => unknown;
  /** The user's function; for an `onFailure` run, the failing function. */
  fn: AnyStepwiseFunction;
  isFailureHandler: boolean;
}

/** What one pass is about. */
export interface PassInput {
  runId: string;
  /** The run as created already claimed (eager start); otherwise the pass claims it. */
  claimed?: ClaimedRun;
  /**
   * Aborts the pass (the dispatcher's, on stop past the grace period); the pass aborts it
   * itself when its lease is lost. Step bodies and the handler see it as their `signal`.
   */
  abort: AbortController;
}

/**
 * One worker pass over a run: claim it (unless it was created claimed: eager start), run the
 * handler through the checkpoint loop, and commit how the pass ended (completed, failed,
 * retrying or suspended).
 */
export async function processRun(context: ProcessContext, input: PassInput): Promise<void> {
  const { store, clock, workerId, leaseMs } = context.options;
  const { runId, abort } = input;
  const claimed = input.claimed ?? (await store.claimRun({ runId, workerId, now: clock.now(), leaseMs }));
  if (!claimed) return requeueIfLater(context, runId);
  const { run } = claimed;
  context.onClaimed?.(runId, run.leaseEpoch);
  context.watchDeadline(run.timeoutAt);
  if (abort.signal.aborted) {
    // The worker gave up on this pass while the claim was on its way: hand the run straight on, to another worker.
    const now = clock.now();
    if (await store.releaseRun({ runId, leaseEpoch: run.leaseEpoch, wakeAt: now }))
      await context.enqueue([{ runId, functionId: run.functionId, availableAt: now, flow: run.flow ?? null }]);
    return;
  }
  const target = context.resolveFunction(run.functionId);
  if (!target) {
    // Another deployment may know this function; keep the run and look again later.
    context.options.logger.warn({ runId, functionId: run.functionId }, "no function with this id is registered in this worker; run released");
    await store.releaseRun({ runId, leaseEpoch: run.leaseEpoch, wakeAt: clock.now() + 60_000 });
    return;
  }
  context.lifecycle.emit({ type: "run-started", runId, functionId: run.functionId, attempt: run.attempt, memoizedSteps: claimed.steps.length });

  const stopHeartbeat = startHeartbeat(context, run, abort);
  const span = tracePass(run);
  let result: ExecutionResult | undefined;
  try {
    result = await otelContext.with(span.context, () => execute(context, claimed, target, abort.signal, span));
    // Steps handed over to the run's end have ended as far as the trace goes.
    if (result.type === "completed") for (const step of result.steps ?? []) span.stepEnded(step.progress);
  } finally {
    stopHeartbeat();
    span.end(result?.type ?? "error", result?.type === "failed" ? result.error : undefined);
  }
  await settle(context, claimed, target, result);
}

/**
 * A claim that found the run not due: its start moved later after it was queued (a debounced
 * run another event took over). It goes back to the queue at its new time; a run that has
 * ended, or is running elsewhere, is left alone.
 */
async function requeueIfLater(context: ProcessContext, runId: string): Promise<void> {
  const { store, clock } = context.options;
  const run = await store.getRun(runId);
  if (!run || run.wakeAt === undefined || run.wakeAt <= clock.now() || !["queued", "sleeping", "waiting"].includes(run.status)) return;
  await context.enqueue([{ runId, functionId: run.functionId, availableAt: run.wakeAt, flow: run.flow ?? null, fresh: run.startedAt === undefined }]);
}

function execute(context: ProcessContext, claimed: ClaimedRun, target: RunnableFunction, signal: AbortSignal, span: PassTrace): Promise<ExecutionResult> {
  const { store, clock, logger } = context.options;
  const { run, event } = claimed;
  const memo = new Map<string, StepRecord>(claimed.steps.map((step) => [step.key, step]));
  const base = { runId: run.id, functionId: run.functionId };
  const extraContext = target.isFailureHandler ? { error: deserializeError((event.data as { error: SerializedError }).error) } : undefined;
  return executeFunction({
    handler: target.handler as never,
    extraContext,
    runId: run.id,
    event: publicEvent(event),
    events: claimed.events ? claimed.events.map(publicEvent) : [publicEvent(event)],
    attempt: run.attempt,
    retries: target.retries,
    memo,
    // The handler's lines carry the run's ids (with pino: as fields of each JSON line).
    logger: runLogger(logger, { runId: run.id, functionId: run.functionId }),
    signal,
    hooks: {
      // The last steps' results ride with the run's end (`finish`): one statement less per run.
      deferCommits: true,
      async commitStep(step) {
        const outcome = await store.commitStep({ runId: run.id, leaseEpoch: run.leaseEpoch, step, now: clock.now() });
        if (!outcome.ok) throw new LeaseLostError(run.id);
        return outcome.record;
      },
      sendEvents: (events) => context.sendEvents(events),
      resolveFunction: (functionId) => context.resolveInvoked(functionId, target.fn.appId),
      now: () => clock.now(),
      publish: async (message) => {
        await context.options.realtime.publish(message);
      },
      onStepStart: (step) => {
        span.stepStarted(step);
        context.lifecycle.emit({ type: "step-started", ...base, stepId: step.id, kind: step.kind, attempt: step.attempt });
      },
      onStepEnd: (step) => {
        span.stepEnded(step);
        emitStepEnded(context, run, step);
      },
    },
  });
}

/** The `step-ended` lifecycle event: the step's outcome is recorded (a retry: known). */
function emitStepEnded(context: ProcessContext, run: RunRecord, step: StepProgress): void {
  context.lifecycle.emit({
    type: "step-ended",
    runId: run.id,
    functionId: run.functionId,
    stepId: step.id,
    kind: step.kind,
    attempt: step.attempt,
    status: step.status ?? "completed",
    durationMs: step.durationMs ?? 0,
    error: step.error,
  });
}

async function settle(context: ProcessContext, claimed: ClaimedRun, target: RunnableFunction, result: ExecutionResult): Promise<void> {
  const { store, clock } = context.options;
  const { run } = claimed;
  const base = { runId: run.id, functionId: run.functionId };
  const now = clock.now();
  switch (result.type) {
    case "completed":
      return finish(context, claimed, { status: "completed", output: result.output }, undefined, result.steps);
    case "failed": {
      if (result.retriable && run.attempt < target.retries) {
        const wakeAt = now + (result.retryAfterMs ?? backoffDelay(run.attempt));
        if (await store.retryRun({ runId: run.id, leaseEpoch: run.leaseEpoch, error: result.error, wakeAt, now })) {
          context.lifecycle.emit({ type: "run-retrying", ...base, attempt: run.attempt + 1, error: result.error, wakeAt });
          await context.enqueue([{ runId: run.id, functionId: run.functionId, availableAt: wakeAt, flow: run.flow ?? null }]);
        }
        return;
      }
      return finish(context, claimed, { status: "failed", error: result.error }, target);
    }
    case "suspended":
      return suspend(context, claimed, result.ops);
    case "aborted":
      context.lifecycle.emit({ type: "run-aborted", ...base, reason: result.reason });
      return;
  }
}

async function finish(
  context: ProcessContext,
  claimed: ClaimedRun,
  outcome: { status: "completed"; output: JsonValue } | { status: "failed"; error: SerializedError },
  target?: RunnableFunction,
  deferred: DeferredStep[] = [],
): Promise<void> {
  const { store, clock } = context.options;
  const { run, event } = claimed;
  const now = clock.now();
  const followUp = outcome.status === "failed" && target && !target.isFailureHandler ? failureFollowUp(context, run, event, outcome.error, now) : undefined;
  const steps = deferred.length > 0 ? deferred.map((step) => step.commit) : undefined;
  const result = await store.finishRun({ runId: run.id, leaseEpoch: run.leaseEpoch, ...outcome, followUp, steps, now });
  if (!result.ok) {
    context.lifecycle.emit({ type: "run-aborted", runId: run.id, functionId: run.functionId, reason: "lease lost before the run's result was recorded" });
    return;
  }
  for (const step of deferred) emitStepEnded(context, run, step.progress);
  if (result.cancelled) await context.announceSingletons(result.cancelled);
  if (outcome.status === "completed") context.lifecycle.emit({ type: "run-completed", runId: run.id, functionId: run.functionId, output: outcome.output });
  else context.lifecycle.emit({ type: "run-failed", runId: run.id, functionId: run.functionId, error: outcome.error });
  const wake = result.followUpRuns.map((child) => ({ runId: child.id, functionId: child.functionId, availableAt: now }));
  if (result.parent) wake.push({ ...result.parent, availableAt: now });
  if (wake.length > 0) await context.enqueue(wake);
  context.runEnded(
    toRunInfo({
      ...run,
      status: outcome.status,
      output: outcome.status === "completed" ? outcome.output : undefined,
      error: outcome.status === "failed" ? outcome.error : undefined,
      endedAt: now,
    }),
  );
}

/** The `stepwise/function.failed` event and, when the function has `onFailure`, its run. */
function failureFollowUp(context: ProcessContext, run: RunRecord, event: StoredEvent, error: SerializedError, now: number): IngestInput {
  const failure: StoredEvent = {
    id: newEventId(),
    key: `failure-${run.id}`,
    name: FAILURE_EVENT_NAME,
    data: { function_id: run.functionId, run_id: run.id, error, event: publicEvent(event) },
    ts: now,
  };
  const runs = context.router.route(failure);
  if (context.resolveFunction(run.functionId + FAILURE_FUNCTION_SUFFIX)) {
    runs.push({ id: newRunId(), functionId: run.functionId + FAILURE_FUNCTION_SUFFIX, eventId: failure.id });
  }
  return { events: [failure], runs, now };
}

/**
 * Renews the lease every third of its length until stopped. When the lease is lost (another
 * worker claimed the run), or could not be renewed before it expired (the store unreachable:
 * another worker may claim it from then on), the pass is aborted: its step bodies' `signal`
 * fires, so a long call stops instead of running on as a zombie whose result is rejected.
 */
function startHeartbeat(context: ProcessContext, run: RunRecord, abort: AbortController): () => void {
  const { store, clock, leaseMs } = context.options;
  let cancel: (() => void) | undefined;
  let stopped = false;
  let expiresAt = run.leaseExpiresAt ?? clock.now() + leaseMs;
  const beat = () => {
    cancel = clock.setTimer(async () => {
      if (stopped) return;
      try {
        const until = clock.now() + leaseMs;
        const kept = await store.extendLease({ runId: run.id, leaseEpoch: run.leaseEpoch, until });
        if (stopped) return;
        if (!kept) {
          abort.abort(new LeaseLostError(run.id));
          return;
        }
        expiresAt = until;
        beat();
      } catch (error) {
        context.lifecycle.emit({ type: "engine-error", error, context: `extending the lease of ${run.id}` });
        if (stopped) return;
        if (clock.now() >= expiresAt) {
          abort.abort(new LeaseLostError(run.id, "its lease expired before it could be renewed"));
          return;
        }
        beat();
      }
    }, leaseMs / 3);
  };
  beat();
  return () => {
    stopped = true;
    cancel?.();
  };
}

/**
 * The handler's logger: `logger` with the run's ids on every line, made on the first line the
 * handler writes. A pino child per pass costs more than most passes (a 10,000-run burst grew a
 * worker by 40 MiB), and most handlers never log.
 */
function runLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  const { child } = logger;
  if (!child) return logger;
  let bound: Logger | undefined;
  const get = () => {
    bound ??= child.call(logger, bindings);
    return bound;
  };
  return {
    debug: (objectOrMessage, message) => get().debug(objectOrMessage, message),
    info: (objectOrMessage, message) => get().info(objectOrMessage, message),
    warn: (objectOrMessage, message) => get().warn(objectOrMessage, message),
    error: (objectOrMessage, message) => get().error(objectOrMessage, message),
    child: (more) => get().child?.(more) ?? get(),
  };
}
