import parse from "parse-duration";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";

/** A duration: milliseconds, or a string such as `"30s"`, `"15m"`, `"7d"`, `"1h30m"`. */
export type Duration = number | string;

/**
 * Milliseconds in a {@link Duration}. Throws a `StepwiseError` (INVALID_DURATION) naming
 * `what` when the value is negative, not finite, or not a duration.
 */
export function parseDuration(value: Duration, what: string): number {
  const ms = typeof value === "number" ? value : parse(value);
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new StepwiseError({
      code: ErrorCode.InvalidDuration,
      category: "user",
      message: `${what}: ${JSON.stringify(value)} is not a duration; use milliseconds or a string such as "30s", "15m", "7d"`,
      details: { option: what },
    });
  }
  return Math.round(ms);
}
