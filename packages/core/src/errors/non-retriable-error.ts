const marker = Symbol.for("stepwise.non-retriable");

/**
 * Throw from a step or handler to fail at once, without further attempts.
 *
 * @example
 * if (!user) throw new NonRetriableError("user not found");
 */
export class NonRetriableError extends Error {
  private readonly [marker] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetriableError";
  }

  /** True for any {@link NonRetriableError}, across duplicate installs. */
  static isInstance(value: unknown): value is NonRetriableError {
    return typeof value === "object" && value !== null && marker in value;
  }
}
