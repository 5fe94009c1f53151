import { parse } from "@marcbachmann/cel-js";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";

/** A compiled CEL expression: evaluate it against named variables. */
export type CompiledExpression = (variables: Record<string, unknown>) => unknown;

/**
 * Most compiled expressions kept (1,000). Sources come from function configs (a few per
 * function) but also from `step.waitForEvent` options, which user code may build per run:
 * unbounded, such a cache would grow with every run.
 */
export const EXPRESSION_CACHE_SIZE = 1000;

// Least recently used first: a Map iterates in insertion order, and a hit is re-inserted.
const cache = new Map<string, CompiledExpression>();

/**
 * Compiles a CEL expression once (an LRU cache by source, {@link EXPRESSION_CACHE_SIZE}
 * entries). Throws a `StepwiseError` (INVALID_EXPRESSION) naming `what` when it does not parse.
 *
 * @example
 * compileExpression("event.data.amount > 100", "trigger.if")({ event })
 */
export function compileExpression(source: string, what: string): CompiledExpression {
  const hit = cache.get(source);
  if (hit) {
    cache.delete(source);
    cache.set(source, hit);
    return hit;
  }
  let evaluator: (variables: Record<string, unknown>) => unknown;
  try {
    evaluator = parse(source) as unknown as (variables: Record<string, unknown>) => unknown;
  } catch (error) {
    throw new StepwiseError({
      code: ErrorCode.InvalidExpression,
      category: "user",
      message: `${what}: ${JSON.stringify(source)} is not a valid CEL expression: ${firstLine(error)}`,
      details: { option: what, expression: source },
    });
  }
  const compiled: CompiledExpression = (variables) => evaluator(variables);
  cache.set(source, compiled);
  if (cache.size > EXPRESSION_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return compiled;
}

/** Entries in the compiled-expression cache (for tests of its bound). @internal */
export function expressionCacheSize(): number {
  return cache.size;
}

/**
 * Evaluates a boolean CEL expression; a missing field or a type error counts as `false`
 * rather than an exception, since events are untrusted input.
 */
export function matchesExpression(source: string, variables: Record<string, unknown>): boolean {
  try {
    return compileExpression(source, "expression")(variables) === true;
  } catch {
    return false;
  }
}

/**
 * Whether `text` is a field path a `match` compares, e.g. `"data.userId"`: dot-separated
 * identifiers (letters, digits, `_`, not starting with a digit).
 */
export function isFieldPath(text: unknown): text is string {
  return typeof text === "string" && /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(text);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}
