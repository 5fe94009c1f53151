import type { SerializedError } from "../errors/serialize-error.js";
import type { EventPayload, SendEventResult } from "../events/event.js";
import type { JsonValue } from "../helpers/json.js";

/** What kind of step tool recorded a step. */
export type StepKind = "run" | "sleep" | "wait" | "invoke" | "send";

/**
 * A step as recorded: `completed`/`failed` are final; `waiting` is an open sleep, wait or
 * invoke; `retrying` is a step whose last attempt failed and that will run again.
 */
export interface StepRecord {
  key: string;
  id: string;
  kind: StepKind;
  status: "completed" | "failed" | "waiting" | "retrying";
  output?: JsonValue;
  error?: SerializedError;
  /** Zero-based attempt of the last execution (for `retrying`: of the failed one). */
  attempt: number;
  /**
   * When the step began (epoch ms): its body's first attempt, or when its sleep, wait or invoke
   * was recorded. Read by `RunStore.listSteps`; a claim leaves it out (replay has no use for it).
   */
  startedAt?: number;
  /** When the step's result was recorded (epoch ms); absent while it is open. See `startedAt`. */
  endedAt?: number;
}

/** A final step result to commit. */
export interface StepCommit {
  key: string;
  id: string;
  kind: StepKind;
  status: "completed" | "failed";
  output?: JsonValue;
  error?: SerializedError;
  attempt: number;
  /** When the body's attempt began (epoch ms, engine clock). (Default: the commit's `now`) */
  startedAt?: number;
  /**
   * True when the step had no recorded row as the pass began: the store may then use a plain
   * insert, where a conflict can only mean another worker recorded the step meanwhile.
   */
  fresh?: boolean;
}

/** The record a commit of `step` leaves when it lands: what the store answers for it. */
export function recordOf(step: StepCommit): StepRecord {
  const record: StepRecord = { key: step.key, id: step.id, kind: step.kind, status: step.status, attempt: step.attempt };
  if (step.output !== undefined) record.output = step.output;
  if (step.error !== undefined) record.error = step.error;
  return record;
}

/**
 * One event a wait accepts: its name, the field equal in the trigger and the event (`match`,
 * which stores index by its value), and a CEL `expression` over `event` and `async`.
 */
export interface WaitCondition {
  event: string;
  match?: string;
  expression?: string;
}

/** A reason the run must pause, collected by the executor and committed by the engine. */
export type SuspendOp =
  | { kind: "sleep"; key: string; id: string; wakeAt: number }
  | { kind: "wait"; key: string; id: string; conditions: WaitCondition[]; timeoutAt: number; lookbackMs?: number }
  | { kind: "invoke"; key: string; id: string; functionId: string; data: Record<string, unknown>; timeoutAt?: number }
  | { kind: "retry"; key: string; id: string; attempt: number; error: SerializedError; retryAt: number }
  | { kind: "pending"; key: string; id: string };

/**
 * A step whose outcome is known but not yet committed (see {@link ExecutorHooks.deferCommits}):
 * what to commit, and the progress to report once it is recorded.
 */
export interface DeferredStep {
  commit: StepCommit;
  progress: StepProgress;
}

/** How one pass of a handler ended. */
export type ExecutionResult =
  | {
      type: "completed";
      output: JsonValue;
      /**
       * Steps that ended after the last commit (only with {@link ExecutorHooks.deferCommits}):
       * the caller records them together with the run's end, then reports their progress.
       */
      steps?: DeferredStep[];
    }
  | { type: "failed"; error: SerializedError; retriable: boolean; retryAfterMs?: number }
  | { type: "suspended"; ops: SuspendOp[] }
  | { type: "aborted"; reason: string };

/** Information about a step as it starts or ends, for progress output. */
export interface StepProgress {
  key: string;
  id: string;
  kind: StepKind;
  attempt: number;
  status?: StepRecord["status"];
  error?: SerializedError;
  durationMs?: number;
}

/** What the executor needs from whoever runs it (the engine, or `serve()`). */
export interface ExecutorHooks {
  /**
   * Durably records a final step result. Resolves with the record that stands, which is
   * another worker's when it won the race. Rejects with a `LeaseLostError` when this worker no
   * longer owns the run.
   */
  commitStep(commit: StepCommit): Promise<StepRecord>;
  /**
   * Whether a step's result may wait for the pass's next effect before it is committed: it is
   * committed before another step body starts, before `publish()`, and before a failure or a
   * suspension is reported; a handler that returns after its last step hands the steps still
   * waiting to the caller (`completed.steps`), which records them with the run's end, in one
   * statement with it. What the handler runs between steps is deterministic code, so a crash
   * before the commit only repeats the step, as a crash inside its body would. (Default: false:
   * each result is committed before the handler continues)
   */
  deferCommits?: boolean;
  /** Sends events on behalf of `step.sendEvent` (ids are already deterministic). */
  sendEvents(events: EventPayload[]): Promise<SendEventResult>;
  /**
   * The qualified id (`<app>/<function>`) of the function `step.invoke` names, given as a
   * function's qualified id or a plain function id (this run's app first); `undefined` when no
   * such function is registered.
   */
  resolveFunction(functionId: string): string | undefined;
  /** Current time in epoch milliseconds (the engine's clock). */
  now(): number;
  /** Publishes a realtime message for the handler's `publish()` (checked already). (Default: `publish()` throws) */
  publish?(message: { channel: string; topic: string; data: JsonValue }): Promise<void>;
  /** Called as a step body starts. */
  onStepStart?(progress: StepProgress): void;
  /**
   * Called once a step's outcome is recorded (a retry: once it is known). With
   * {@link ExecutorHooks.deferCommits}, not called for the steps a completed result hands over.
   */
  onStepEnd?(progress: StepProgress): void;
}

const leaseMarker = Symbol.for("stepwise.lease-lost");

/** Rejected commit: the run's lease moved to another worker, so this pass must stop. */
export class LeaseLostError extends Error {
  private readonly [leaseMarker] = true;
  /** @param why What happened to the lease. (Default: another worker owns the run now) */
  constructor(runId: string, why = "another worker owns it now") {
    super(`lease on run ${runId} was lost; ${why}`);
    this.name = "LeaseLostError";
  }

  /** True for any {@link LeaseLostError}, across duplicate installs. */
  static isInstance(value: unknown): value is LeaseLostError {
    return typeof value === "object" && value !== null && leaseMarker in value;
  }
}
