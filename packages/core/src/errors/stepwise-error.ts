import type { ErrorCode } from "./error-code.js";

const marker = Symbol.for("stepwise.error");

/**
 * Who is at fault, which decides retries and HTTP status: `user` never retries (4xx),
 * `system` retries (5xx), `third-party` retries with backoff (502).
 */
export type ErrorCategory = "user" | "system" | "third-party";

/** A JSON object, as stored in `details`. */
export type JsonObject = { [key: string]: unknown };

/** Options of {@link StepwiseError}. */
export interface StepwiseErrorOptions {
  code: ErrorCode;
  message: string;
  /** (Default: `"system"`) */
  category?: ErrorCategory;
  /** Extra JSON facts, e.g. the option or path at fault. (Default: `{}`) */
  details?: JsonObject;
  cause?: unknown;
}

/**
 * The one error type Stepwise throws. Recognise it with {@link StepwiseError.isInstance},
 * which works across duplicate installs of the package.
 */
export class StepwiseError extends Error {
  private readonly [marker] = true;
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly details: JsonObject;

  constructor(options: StepwiseErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = "StepwiseError";
    this.code = options.code;
    this.category = options.category ?? "system";
    this.details = options.details ?? {};
  }

  /** True for any {@link StepwiseError}, also one made by another copy of this package. */
  static isInstance(value: unknown): value is StepwiseError {
    return typeof value === "object" && value !== null && marker in value;
  }
}
