import { ErrorCode } from "../errors/error-code.js";
import { RetryAfterError } from "../errors/retry-after-error.js";
import { serializeError } from "../errors/serialize-error.js";
import { StepError } from "../errors/step-error.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import type { EventPayload, SendEventResult, StepwiseEvent } from "../events/event.js";
import type { InvokeOptions, StepRunContext, StepTools, WaitCondition, WaitForAnyOptions, WaitForEventOptions } from "../functions/types.js";
import { parseDuration } from "../helpers/duration.js";
import { compileExpression, isFieldPath } from "../helpers/expression.js";
import { type JsonValue, toJsonValue } from "../helpers/json.js";
import { stepKey } from "../helpers/step-key.js";
import { backoffDelay } from "./backoff.js";
import type { ExecuteFunctionOptions, PassState } from "./execute-function.js";
import { isRetriable } from "./execute-function.js";
import {
  type WaitCondition as ExecutorWaitCondition,
  LeaseLostError,
  recordOf,
  type StepCommit,
  type StepKind,
  type StepProgress,
  type StepRecord,
} from "./types.js";

interface StepToolsOptions extends ExecuteFunctionOptions {
  state: PassState;
}

/** Builds the `step` object for one pass of the checkpoint loop. */
export function createStepTools(options: StepToolsOptions): StepTools {
  const { memo, hooks, state } = options;
  const repeats = new Map<string, number>();

  /** Resolves the step's key from its id, counting repeats of the same id in this pass. */
  function identify(id: unknown, tool: string): { id: string; key: string } {
    if (typeof id !== "string" || id.length === 0) {
      throw new StepwiseError({
        code: ErrorCode.InvalidStepOptions,
        category: "user",
        message: `step.${tool}: the first argument must be a non-empty step id, e.g. step.${tool}("send-email", ...)`,
      });
    }
    const repeat = repeats.get(id) ?? 0;
    repeats.set(id, repeat + 1);
    return { id, key: stepKey(id, repeat) };
  }

  /**
   * What a recorded step gives back on replay: its output, its `StepError`, or (still waiting) a
   * suspension. `undefined` when the step must execute now: new, or retrying.
   */
  function replay(target: { key: string }): Promise<unknown> | undefined {
    const recorded = memo.get(target.key);
    if (!recorded || recorded.status === "retrying") return undefined;
    if (recorded.status === "waiting") return state.suspend({ kind: "pending", key: recorded.key, id: recorded.id });
    return new Promise((resolve) => resolve(settle(recorded)));
  }

  /**
   * Records a step's outcome and reports it; answers the record that stands, or `undefined` when
   * nothing may be recorded any more: the pass was aborted while the body ran (its result is
   * dropped), or the commit found the lease lost (which aborts the pass). With
   * `hooks.deferCommits`, the outcome is kept for the pass's next effect instead, and stands.
   */
  async function record(commitValue: StepCommit, progress: StepProgress): Promise<StepRecord | undefined> {
    if (state.stopping) return undefined;
    if (hooks.deferCommits) {
      state.defer({ commit: commitValue, progress });
      return recordOf(commitValue);
    }
    let recorded: StepRecord;
    try {
      recorded = await hooks.commitStep(commitValue);
    } catch (error) {
      if (!LeaseLostError.isInstance(error)) throw error;
      state.abort(error);
      return undefined;
    }
    hooks.onStepEnd?.({ ...progress, status: recorded.status });
    return recorded;
  }

  /** Executes a step body with retries, commits its outcome, and returns what the handler gets. */
  async function execute(target: { id: string; key: string }, kind: StepKind, body: (context: StepRunContext) => unknown): Promise<unknown> {
    if (state.stopping) return state.park();
    const previous = memo.get(target.key);
    const attempt = previous?.status === "retrying" ? previous.attempt + 1 : 0;
    const fresh = previous === undefined;
    // A duration, not a decision about time: measured on the monotonic clock.
    const started = performance.now();
    const startedAt = hooks.now();
    const elapsed = () => Math.round(performance.now() - started);
    state.begin();
    try {
      // The steps before this one are recorded before its body runs: its effects may rest on them.
      if (state.unflushed && !(await state.flush())) return state.park();
      hooks.onStepStart?.({ ...target, kind, attempt });
      let output: JsonValue;
      try {
        output = toJsonValue(await body({ signal: state.signal, attempt }), `the output of step "${target.id}"`);
      } catch (error) {
        // Aborted while it ran: whatever the body threw (often the signal's AbortError) is not
        // a result of the step, so it is neither retried nor recorded.
        if (state.stopping) return state.park();
        const serialized = serializeError(error);
        if (isRetriable(error) && attempt < options.retries) {
          const delay = RetryAfterError.isInstance(error) ? error.delayFrom(hooks.now()) : backoffDelay(attempt);
          hooks.onStepEnd?.({ ...target, kind, attempt, status: "retrying", error: serialized, durationMs: elapsed() });
          return state.suspend({ kind: "retry", ...target, attempt, error: serialized, retryAt: hooks.now() + delay });
        }
        const recorded = await record(
          { ...target, kind, status: "failed", error: serialized, attempt, startedAt, fresh },
          { ...target, kind, attempt, status: "failed", error: serialized, durationMs: elapsed() },
        );
        if (!recorded) return state.park();
        return settle(recorded);
      }
      const recorded = await record(
        { ...target, kind, status: "completed", output, attempt, startedAt, fresh },
        { ...target, kind, attempt, status: "completed", durationMs: elapsed() },
      );
      if (!recorded) return state.park();
      return settle(recorded);
    } finally {
      state.end();
    }
  }

  function settle(record: StepRecord): unknown {
    if (record.status === "failed") throw new StepError(record.id, record.error ?? { name: "Error", message: "step failed" });
    return record.output ?? null;
  }

  return {
    run(id, fn) {
      return guard(() => {
        const target = identify(id, "run");
        if (typeof fn !== "function") throw stepOptionError("run", "the second argument must be a function");
        const replayed = replay(target);
        if (replayed) return replayed;
        return execute(target, "run", fn);
      }) as never;
    },

    sleep(id, duration) {
      return guard(() => {
        const target = identify(id, "sleep");
        const ms = parseDuration(duration, `step.sleep("${target.id}")`);
        return sleepStep(target, hooks.now() + ms);
      }) as Promise<void>;
    },

    sleepUntil(id, until) {
      return guard(() => {
        const target = identify(id, "sleepUntil");
        const wakeAt = until instanceof Date ? until.getTime() : typeof until === "string" ? Date.parse(until) : until;
        if (!Number.isFinite(wakeAt)) throw stepOptionError("sleepUntil", `${JSON.stringify(until)} is not a date`);
        return sleepStep(target, wakeAt);
      }) as Promise<void>;
    },

    waitForEvent<TName extends string>(id: string, waitOptions: WaitForEventOptions<TName>) {
      return guard(() => {
        const target = identify(id, "waitForEvent");
        const replayed = replay(target);
        if (replayed) return replayed;
        if (!waitOptions || typeof waitOptions.event !== "string" || waitOptions.event.length === 0) {
          throw stepOptionError("waitForEvent", "options.event must name the event to wait for");
        }
        const what = `step.waitForEvent("${target.id}")`;
        const timeoutMs = parseDuration(waitOptions.timeout, `${what}.timeout`);
        const lookbackMs = waitOptions.lookback === undefined ? undefined : parseDuration(waitOptions.lookback, `${what}.lookback`);
        const conditions = [waitCondition(waitOptions, "waitForEvent", what)];
        return state.suspend({ kind: "wait", ...target, conditions, timeoutAt: hooks.now() + timeoutMs, ...(lookbackMs !== undefined && { lookbackMs }) });
      }) as Promise<StepwiseEvent<TName> | null>;
    },

    waitForAny<TName extends string>(id: string, conditions: ReadonlyArray<WaitCondition<TName>>, anyOptions: WaitForAnyOptions) {
      return guard(() => {
        const target = identify(id, "waitForAny");
        const replayed = replay(target);
        if (replayed) return replayed;
        if (!Array.isArray(conditions) || conditions.length === 0 || conditions.length > MAX_WAIT_CONDITIONS) {
          throw stepOptionError("waitForAny", `give 1 to ${MAX_WAIT_CONDITIONS} conditions, each { event, match? | if? }`);
        }
        const what = `step.waitForAny("${target.id}")`;
        const timeoutMs = parseDuration(anyOptions?.timeout, `${what}.timeout`);
        const lookbackMs = anyOptions.lookback === undefined ? undefined : parseDuration(anyOptions.lookback, `${what}.lookback`);
        const resolved = conditions.map((condition, index) => {
          if (!condition || typeof condition.event !== "string" || condition.event.length === 0) {
            throw stepOptionError("waitForAny", `conditions[${index}].event must name the event to wait for`);
          }
          return waitCondition(condition, "waitForAny", `${what}.conditions[${index}]`);
        });
        return state.suspend({
          kind: "wait",
          ...target,
          conditions: resolved,
          timeoutAt: hooks.now() + timeoutMs,
          ...(lookbackMs !== undefined && { lookbackMs }),
        });
      }) as Promise<StepwiseEvent<TName> | null>;
    },

    invoke<TFunction>(id: string, invokeOptions: InvokeOptions<TFunction>) {
      return guard(() => {
        const target = identify(id, "invoke");
        const replayed = replay(target);
        if (replayed) return replayed;
        const fn = invokeOptions?.function as unknown;
        const named = typeof fn === "string" ? fn : (fn as { qualifiedId?: unknown } | undefined)?.qualifiedId;
        if (typeof named !== "string") throw stepOptionError("invoke", "options.function must be a function returned by createFunction, or its id");
        const functionId = hooks.resolveFunction(named);
        if (functionId === undefined) {
          return execute(target, "invoke", () => {
            throw new StepwiseError({
              code: ErrorCode.FunctionNotFound,
              category: "user",
              message: `step.invoke("${target.id}"): no function with id "${named}" is registered`,
              details: { functionId: named },
            });
          });
        }
        const data = toJsonValue(invokeOptions.data ?? {}, `step.invoke("${target.id}").data`) as Record<string, unknown>;
        const timeoutAt =
          invokeOptions.timeout === undefined ? undefined : hooks.now() + parseDuration(invokeOptions.timeout, `step.invoke("${target.id}").timeout`);
        return state.suspend({ kind: "invoke", ...target, functionId, data, timeoutAt });
      }) as never;
    },

    sendEvent(id: string, events: EventPayload | EventPayload[]) {
      return guard(() => {
        const target = identify(id, "sendEvent");
        const replayed = replay(target);
        if (replayed) return replayed;
        const list = (Array.isArray(events) ? events : [events]).map((event, index) => ({
          ...event,
          // A deterministic id makes a resend after a crash a duplicate, deduplicated by the engine.
          id: event?.id ?? `${options.runId}-${target.key.slice(0, 16)}-${index}`,
        }));
        return execute(target, "send", () => hooks.sendEvents(list));
      }) as Promise<SendEventResult>;
    },
  };

  function sleepStep(target: { id: string; key: string }, wakeAt: number): Promise<unknown> {
    // A sleep's recorded output is null; the tool resolves with nothing.
    const replayed = replay(target) ?? (wakeAt <= hooks.now() ? execute(target, "sleep", () => null) : undefined);
    if (replayed) return replayed.then(() => undefined);
    return state.suspend({ kind: "sleep", ...target, wakeAt });
  }
}

/** Most conditions of one `step.waitForAny`. */
const MAX_WAIT_CONDITIONS = 10;

/**
 * One condition of a wait, checked: `match` a field path (kept apart, so that the store can
 * find the wait by its value), `if` a CEL expression that parses.
 */
function waitCondition(options: { event: string; match?: string; if?: string }, tool: string, what: string): ExecutorWaitCondition {
  const condition: ExecutorWaitCondition = { event: options.event };
  if (options.match !== undefined) {
    if (!isFieldPath(options.match)) {
      throw stepOptionError(tool, `match must be a field path such as "data.userId", got ${JSON.stringify(options.match)}`);
    }
    condition.match = options.match;
  }
  if (options.if !== undefined) {
    compileExpression(options.if, `${what}.if`);
    condition.expression = options.if;
  }
  return condition;
}

function stepOptionError(tool: string, message: string): StepwiseError {
  return new StepwiseError({ code: ErrorCode.InvalidStepOptions, category: "user", message: `step.${tool}: ${message}` });
}

/** Turns a synchronous throw of a step tool into a rejected promise, as callers expect. */
function guard(fn: () => unknown): Promise<unknown> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}
