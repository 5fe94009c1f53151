import type { StepwiseEvent } from "@stepwise/core";
import { publicEvent } from "../ports/run-store.js";

/** Most fields of one event offered to the store's wait index (the rest match only through `if`). */
export const MAX_MATCH_VALUES = 256;
/** Deepest field path offered to the wait index. */
const MAX_MATCH_DEPTH = 8;

/**
 * The canonical JSON of a value a `match` can compare by index: a string, number, boolean or
 * null (`undefined` for objects and arrays, which only an expression compares).
 */
export function canonicalMatchValue(value: unknown): string | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") return Number.isFinite(value) ? JSON.stringify(value) : undefined;
  return undefined;
}

/** The value at a field path (`"data.userId"`) of an event as handlers see it (`{ id, name, data, ts }`). */
export function valueAtPath(event: StepwiseEvent, path: string): unknown {
  let value: unknown = publicEvent(event);
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * The fields of an event a keyed wait can match, as `[path, canonical JSON]`: every scalar under
 * `data` (not inside arrays), `id` and `name`, depth-first, at most {@link MAX_MATCH_VALUES}.
 */
export function eventMatchValues(event: StepwiseEvent): Array<[string, string]> {
  const values: Array<[string, string]> = [
    ["id", JSON.stringify(event.id)],
    ["name", JSON.stringify(event.name)],
  ];
  const walk = (value: unknown, path: string, depth: number) => {
    if (values.length >= MAX_MATCH_VALUES) return;
    const canonical = canonicalMatchValue(value);
    if (canonical !== undefined) {
      values.push([path, canonical]);
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value) || depth >= MAX_MATCH_DEPTH) return;
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      if (!/^[A-Za-z_]\w*$/.test(key)) continue;
      walk(inner, `${path}.${key}`, depth + 1);
    }
  };
  walk(event.data, "data", 0);
  return values;
}

/**
 * The stored form of a condition's `match` for a run with `trigger`: the path and the
 * trigger's value there, so that the store finds the wait by value. A value an index cannot
 * compare (an object, an array) becomes the expression `event.<path> == async.<path>` instead.
 */
export function storedMatch(
  trigger: StepwiseEvent,
  match: string | undefined,
  expression: string | undefined,
): { matchPath?: string; matchValue?: string; expression?: string } {
  if (match === undefined) return expression === undefined ? {} : { expression };
  const value = valueAtPath(trigger, match);
  const canonical = canonicalMatchValue(value);
  if (canonical === undefined && value !== undefined) {
    const compared = `event.${match} == async.${match}`;
    return { expression: expression === undefined ? compared : `(${compared}) && (${expression})` };
  }
  return { matchPath: match, ...(canonical !== undefined && { matchValue: canonical }), ...(expression !== undefined && { expression }) };
}
