import { ErrorCode } from "../errors/error-code.js";
import { NonRetriableError } from "../errors/non-retriable-error.js";
import { RetryAfterError } from "../errors/retry-after-error.js";
import { type SerializedError, serializeError } from "../errors/serialize-error.js";
import { StepError } from "../errors/step-error.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import type { StepwiseEvent } from "../events/event.js";
import type { HandlerContext, StepTools } from "../functions/types.js";
import { toJsonValue } from "../helpers/json.js";
import type { Logger } from "../helpers/logger.js";
import { createStepTools } from "./step-tools.js";
import type { ExecutionResult, ExecutorHooks, StepRecord, SuspendOp } from "./types.js";

/** Options of {@link executeFunction}. */
export interface ExecuteFunctionOptions {
  handler: (context: HandlerContext<never>) => unknown;
  /** Extra fields merged into the handler's context (e.g. `error` for `onFailure`). */
  extraContext?: Record<string, unknown>;
  runId: string;
  event: StepwiseEvent;
  events: StepwiseEvent[];
  /** Zero-based attempt of the handler. */
  attempt: number;
  /** Retries allowed after the first attempt, per step. */
  retries: number;
  /** Steps recorded so far, by key. */
  memo: ReadonlyMap<string, StepRecord>;
  hooks: ExecutorHooks;
  logger: Logger;
}

/**
 * Runs one pass of a handler: the checkpoint loop. Memoized steps return their stored
 * result; new steps run at once and are committed (through `hooks.commitStep`) before the
 * handler continues. The pass ends when the handler returns or throws, or when every
 * running step has settled and at least one step asked to suspend (sleep, wait, invoke,
 * retry): then the handler's promise is abandoned, holding no worker and no memory.
 */
export function executeFunction(options: ExecuteFunctionOptions): Promise<ExecutionResult> {
  return new Promise((resolve) => {
    const state = new PassState(resolve);
    const step: StepTools = createStepTools({ ...options, state });
    const context = {
      event: options.event,
      events: options.events,
      step,
      runId: options.runId,
      attempt: options.attempt,
      logger: options.logger,
      ...options.extraContext,
    };
    Promise.resolve()
      .then(() => options.handler(context as HandlerContext<never>))
      .then(
        (output) => state.handlerSettled(() => ({ type: "completed", output: toJsonValue(output, "the function's return value") })),
        (error: unknown) => state.handlerSettled(() => handlerFailure(error, options.hooks.now())),
      )
      .catch((error: unknown) => state.handlerSettled(() => handlerFailure(error, options.hooks.now())));
  });
}

/** Book-keeping of one pass: running steps, collected suspensions, the final result. */
export class PassState {
  private inFlight = 0;
  private readonly ops: SuspendOp[] = [];
  private abortReason: string | undefined;
  private handlerResult: (() => ExecutionResult) | undefined;
  private done = false;
  private checkScheduled = false;

  constructor(private readonly resolve: (result: ExecutionResult) => void) {}

  /** A step body starts running. */
  begin(): void {
    this.inFlight++;
  }

  /** A step body and its commit have settled. */
  end(): void {
    this.inFlight--;
    this.scheduleCheck();
  }

  /** A step asks the run to pause; its promise never resolves in this pass. */
  suspend(op: SuspendOp): Promise<never> {
    this.ops.push(op);
    this.scheduleCheck();
    return new Promise<never>(() => {});
  }

  /** This worker lost the run: stop once running steps settle. */
  abort(reason: string): void {
    this.abortReason ??= reason;
    this.scheduleCheck();
  }

  /** A promise that never settles: the step's caller stays parked until the pass is dropped. */
  park(): Promise<never> {
    return new Promise<never>(() => {});
  }

  /** Whether the pass is ending, so new steps should not start. */
  get stopping(): boolean {
    return this.abortReason !== undefined || this.done;
  }

  handlerSettled(result: () => ExecutionResult): void {
    this.handlerResult = result;
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.checkScheduled || this.done) return;
    this.checkScheduled = true;
    // Let promise chains run to their next await first: a step that just resolved may lead
    // the handler straight into another step, which must be seen before we decide.
    setImmediate(() => {
      this.checkScheduled = false;
      this.check();
    });
  }

  private check(): void {
    if (this.done || this.inFlight > 0) return;
    if (this.abortReason !== undefined) {
      this.finish({ type: "aborted", reason: this.abortReason });
      return;
    }
    if (this.handlerResult) {
      let result: ExecutionResult;
      try {
        result = this.handlerResult();
      } catch (error) {
        result = handlerFailure(error, Date.now());
      }
      this.finish(result);
      return;
    }
    if (this.ops.length > 0) this.finish({ type: "suspended", ops: this.ops });
  }

  private finish(result: ExecutionResult): void {
    this.done = true;
    this.resolve(result);
  }
}

/** Classifies an error that escaped the handler. */
export function handlerFailure(error: unknown, now: number): ExecutionResult {
  const serialized: SerializedError = serializeError(error);
  if (RetryAfterError.isInstance(error)) {
    return { type: "failed", error: serialized, retriable: true, retryAfterMs: error.delayFrom(now) };
  }
  return { type: "failed", error: serialized, retriable: isRetriable(error) };
}

/**
 * Whether another attempt may help: not for `NonRetriableError`, a `StepError` (its step
 * already used its retries) or a user-category `StepwiseError`.
 */
export function isRetriable(error: unknown): boolean {
  if (NonRetriableError.isInstance(error) || StepError.isInstance(error)) return false;
  if (StepwiseError.isInstance(error)) return error.category !== "user" || error.code === ErrorCode.Internal;
  return true;
}
