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
import { type PublishInput, publishInputSchema } from "../realtime/realtime-schemas.js";
import { createStepTools } from "./step-tools.js";
import { type DeferredStep, type ExecutionResult, type ExecutorHooks, LeaseLostError, type StepRecord, type SuspendOp } from "./types.js";

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
  /**
   * Aborts the pass: the handler and every step body see it through their `signal`, no new step
   * starts, and the pass ends at once as `aborted` (a body that ignores its signal runs on, but
   * its result is dropped, never committed). The engine aborts when the lease is lost, when the
   * worker stops past its grace period, and when the run is cancelled. (Default: never aborts)
   */
  signal?: AbortSignal;
}

/** The handler's `publish()`: checks the input, commits the steps it may tell of, then hands it to the engine. */
async function publish(hooks: ExecutorHooks, state: PassState, input: PublishInput): Promise<void> {
  const parsed = publishInputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StepwiseError({
      code: ErrorCode.InvalidRequest,
      category: "user",
      message: `publish(): ${issue?.path.join(".") || "input"} ${issue?.message ?? "is invalid"}`,
    });
  }
  if (!hooks.publish) throw new StepwiseError({ code: ErrorCode.Internal, message: "publish(): this engine has no realtime channels" });
  // A message must not tell of a step result that a crash could still take back.
  if (!(await state.flush())) return;
  await hooks.publish({
    channel: parsed.data.channel,
    topic: parsed.data.topic,
    data: toJsonValue(input.data, `the data published on ${parsed.data.channel}`),
  });
}

/**
 * Runs one pass of a handler: the checkpoint loop. Memoized steps return their stored
 * result; new steps run at once and are committed (through `hooks.commitStep`) before the
 * handler continues, or with `hooks.deferCommits` before its next effect. The pass ends when the handler returns or throws, or when every
 * running step has settled and at least one step asked to suspend (sleep, wait, invoke,
 * retry): then the handler's promise is abandoned, holding no worker and no memory.
 */
export function executeFunction(options: ExecuteFunctionOptions): Promise<ExecutionResult> {
  return new Promise((resolve) => {
    const state: PassState = new PassState(
      resolve,
      () => options.hooks.now(),
      options.signal,
      (steps) => commitDeferred(options.hooks, state, steps),
    );
    const step: StepTools = createStepTools({ ...options, state });
    const context = {
      event: options.event,
      events: options.events,
      step,
      runId: options.runId,
      attempt: options.attempt,
      logger: options.logger,
      signal: state.signal,
      publish: (input: PublishInput) => publish(options.hooks, state, input),
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

/**
 * Commits deferred steps (all at once: the store batches them), then reports their progress.
 * False when the pass can record nothing more, which aborts it: the lease is lost, a commit
 * failed (the store unreachable: the handler was given a result that may not be recorded, and
 * must not carry on from it, say in a `catch` around the next step), or a step stands with
 * another outcome than the one the handler was given. Only a new pass, replaying what is
 * stored, is consistent then. Never rejects.
 */
async function commitDeferred(hooks: ExecutorHooks, state: PassState, steps: DeferredStep[]): Promise<boolean> {
  let records: StepRecord[];
  try {
    records =
      steps.length === 1 ? [await hooks.commitStep((steps[0] as DeferredStep).commit)] : await Promise.all(steps.map((step) => hooks.commitStep(step.commit)));
  } catch (error) {
    state.abort(LeaseLostError.isInstance(error) ? error : new Error(`a step's result could not be recorded: ${abortMessage(error)}`, { cause: error }));
    return false;
  }
  for (const [index, record] of records.entries()) {
    const { commit, progress } = steps[index] as DeferredStep;
    // Within one lease epoch a stored result is this pass's own (a commit answered by reading
    // it back), so only the status is compared: jsonb gives objects back with their keys reordered.
    if (record.status !== commit.status) {
      state.abort(new Error(`step "${commit.id}" was recorded with another outcome by another pass`));
      return false;
    }
    hooks.onStepEnd?.(progress);
  }
  return true;
}

/**
 * Book-keeping of one pass: running steps, collected suspensions, steps whose commit is
 * deferred, the final result, and the pass's abort signal (the caller's, and this pass's own
 * when a commit finds the lease lost).
 */
export class PassState {
  private inFlight = 0;
  private readonly ops: SuspendOp[] = [];
  private handlerResult: (() => ExecutionResult) | undefined;
  private done = false;
  // The result is decided and waits for the deferred steps' commit.
  private settling = false;
  private checkScheduled = false;
  private readonly controller = new AbortController();
  private deferred: DeferredStep[] = [];
  // The chain of deferred commits in flight, in order; resolves false once one could not record.
  private flushing: Promise<boolean> | undefined;

  constructor(
    private readonly resolve: (result: ExecutionResult) => void,
    private readonly now: () => number,
    external?: AbortSignal,
    private readonly commitDeferred?: (steps: DeferredStep[]) => Promise<boolean>,
  ) {
    // Aborted already (a stop past its grace period overtook the claim): the pass must still end.
    if (external?.aborted) this.abort(external.reason);
    else external?.addEventListener("abort", () => this.abort(external.reason), { once: true });
  }

  /** Aborts when the pass can no longer record anything; what handlers and step bodies receive. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

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

  /**
   * This pass can no longer record anything (lost lease, stopping worker, cancelled run):
   * signal every running body and end the pass at once. Bodies still running are not awaited:
   * one that ignores its signal must not hold the worker's slot; its result is dropped.
   */
  abort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
    this.scheduleCheck();
  }

  /** A promise that never settles: the step's caller stays parked until the pass is dropped. */
  park(): Promise<never> {
    return new Promise<never>(() => {});
  }

  /** Whether the pass is ending, so new steps should not start and results are not committed. */
  get stopping(): boolean {
    return this.controller.signal.aborted || this.done || this.settling;
  }

  /** Keeps a step's outcome to commit before the pass's next effect (see `ExecutorHooks.deferCommits`). */
  defer(step: DeferredStep): void {
    this.deferred.push(step);
  }

  /**
   * Commits the deferred steps, after any commit already under way. Resolves false when the
   * pass can record nothing more (it is aborted, see `commitDeferred`).
   */
  flush(): Promise<boolean> {
    if (this.deferred.length > 0 && this.commitDeferred) {
      const steps = this.deferred.splice(0);
      const commit = this.commitDeferred;
      const chain = this.flushing ? this.flushing.then((ok) => ok && commit(steps)) : commit(steps);
      this.flushing = chain;
      const done = () => {
        if (this.flushing === chain) this.flushing = undefined;
      };
      chain.then(done, done);
    }
    if (!this.flushing) return Promise.resolve(!this.controller.signal.aborted);
    return this.flushing.then((ok) => ok && !this.controller.signal.aborted);
  }

  /** Whether step results wait for their commit, or one is under way (see {@link PassState.flush}). */
  get unflushed(): boolean {
    return this.deferred.length > 0 || this.flushing !== undefined;
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
    if (this.done || this.settling) return;
    if (this.controller.signal.aborted) {
      this.finish(this.aborted());
      return;
    }
    if (this.inFlight > 0) return;
    if (this.handlerResult) {
      let result: ExecutionResult;
      try {
        result = this.handlerResult();
      } catch (error) {
        result = handlerFailure(error, this.now());
      }
      // Steps ended since the last commit ride with the run's end: the caller records them.
      if (result.type === "completed" && this.deferred.length > 0) result = { ...result, steps: this.deferred.splice(0) };
      this.settle(result);
      return;
    }
    if (this.ops.length > 0) this.settle({ type: "suspended", ops: this.ops });
  }

  /** Ends the pass with `result` once no step commit is outstanding. */
  private settle(result: ExecutionResult): void {
    if (this.deferred.length === 0 && !this.flushing) {
      this.finish(result);
      return;
    }
    this.settling = true;
    // `flush` never rejects: a commit that fails aborts the pass (see `commitDeferred`).
    void this.flush().then((ok) => this.finish(ok ? result : this.aborted()));
  }

  private aborted(): ExecutionResult {
    return { type: "aborted", reason: abortMessage(this.controller.signal.reason) };
  }

  private finish(result: ExecutionResult): void {
    if (this.done) return;
    this.done = true;
    this.resolve(result);
  }
}

function abortMessage(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason ?? "aborted");
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
