import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The type a value has after a JSON round trip: what a memoized step returns on replay.
 * `Date` becomes `string`, `undefined` fields disappear, functions are dropped.
 */
export type Jsonify<T> = T extends { toJSON(): infer R }
  ? Jsonify<R>
  : T extends string | number | boolean | null
    ? T
    : T extends undefined | ((...args: never[]) => unknown) | symbol
      ? never
      : T extends readonly (infer U)[]
        ? Jsonify<U>[]
        : T extends object
          ? { [K in keyof T as T[K] extends ((...args: never[]) => unknown) | symbol ? never : K]: Jsonify<T[K]> }
          : never;

/** What a step returns for a body returning `T`: its JSON form, `null` for no value. */
// biome-ignore lint/suspicious/noConfusingVoidType: a body typed `() => void` gives `void`, which is not `undefined` to the type checker and must map to null too.
export type StepOutput<T> = [T] extends [undefined | void] ? null : Jsonify<T>;

/**
 * Checks that `value` survives a JSON round trip unchanged in meaning and returns its JSON
 * form (`undefined` → `null`). Throws OUTPUT_NOT_SERIALIZABLE naming the path of the first
 * offending value: a function, symbol, bigint, non-finite number, Map, Set or a cycle.
 */
export function toJsonValue(value: unknown, what: string): JsonValue {
  if (value === undefined || value === null) return null;
  // Scalars are their own JSON form: most step outputs, so no round trip for them.
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return Object.is(value, -0) ? 0 : value;
  check(value, "$", new Set(), what);
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

function check(value: unknown, path: string, seen: Set<object>, what: string): void {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return;
    case "number":
      if (!Number.isFinite(value)) fail(what, path, `the number ${value}`);
      return;
    case "bigint":
      fail(what, path, "a bigint");
      return;
    case "function":
      fail(what, path, "a function");
      return;
    case "symbol":
      fail(what, path, "a symbol");
      return;
  }
  if (value === null) return;
  const object = value as object;
  if (typeof (object as { toJSON?: unknown }).toJSON === "function") return;
  if (object instanceof Map || object instanceof Set) fail(what, path, `a ${object.constructor.name}`);
  if (seen.has(object)) fail(what, path, "a circular reference");
  seen.add(object);
  if (Array.isArray(object)) {
    for (const [index, item] of object.entries()) check(item, `${path}[${index}]`, seen, what);
  } else {
    for (const [key, item] of Object.entries(object)) check(item, `${path}.${key}`, seen, what);
  }
  seen.delete(object);
}

function fail(what: string, path: string, found: string): never {
  throw new StepwiseError({
    code: ErrorCode.OutputNotSerializable,
    category: "user",
    message: `${what} is not JSON-serializable: ${path} is ${found}; return plain objects, arrays, strings, finite numbers, booleans or null`,
    details: { path },
  });
}
