import type { SerializedError } from "./serialize-error.js";

const marker = Symbol.for("stepwise.step-error");

/**
 * Thrown into the handler by a step that failed after its last attempt. Catch it to
 * compensate; leave it uncaught to fail the run. `cause` is the step's last error as recorded.
 *
 * @example
 * try { await step.run("charge", charge); } catch (error) {
 *   if (error instanceof StepError) await step.run("refund", refund);
 * }
 */
export class StepError extends Error {
  private readonly [marker] = true;
  /** The user's id of the failed step. */
  readonly stepId: string;
  /** The last error of the step, as recorded in the database. */
  readonly error: SerializedError;

  constructor(stepId: string, error: SerializedError) {
    super(`step "${stepId}" failed: ${error.message}`, { cause: error });
    this.name = "StepError";
    this.stepId = stepId;
    this.error = error;
  }

  /** True for any {@link StepError}, across duplicate installs. */
  static isInstance(value: unknown): value is StepError {
    return typeof value === "object" && value !== null && marker in value;
  }
}
