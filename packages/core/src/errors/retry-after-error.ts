import { parseDuration } from "../helpers/duration.js";

const marker = Symbol.for("stepwise.retry-after");

/**
 * Throw from a step or handler to retry no sooner than `after`: milliseconds, a duration
 * string such as `"30s"`, or a `Date`. The attempt still counts against `retries`.
 *
 * @example
 * throw new RetryAfterError("rate limited", response.headers.get("retry-after") + "s");
 */
export class RetryAfterError extends Error {
  private readonly [marker] = true;
  /** The delay, or the absolute time when it was given as a `Date`. */
  readonly retryAfter: number | Date;

  constructor(message: string, after: number | string | Date, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RetryAfterError";
    this.retryAfter = after instanceof Date ? after : parseDuration(after, "RetryAfterError.after");
  }

  /** Milliseconds from `now` until the retry may happen (never negative). */
  delayFrom(now: number): number {
    const ms = this.retryAfter instanceof Date ? this.retryAfter.getTime() - now : this.retryAfter;
    return Math.max(0, ms);
  }

  /** True for any {@link RetryAfterError}, across duplicate installs. */
  static isInstance(value: unknown): value is RetryAfterError {
    return typeof value === "object" && value !== null && marker in value;
  }
}
