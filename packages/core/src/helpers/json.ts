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
 * Deepest nesting of objects and arrays accepted in stored JSON (512 levels): deeper values
 * overflow the stack of `JSON.stringify` (at about 4,100 levels) long before they mean anything.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * Characters Postgres cannot store in `text` or `jsonb`: NUL, and a UTF-16 surrogate without its
 * pair (not Unicode at all; the driver would turn it into U+FFFD, so it would not survive).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the characters this finds
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What is wrong with a string for Postgres, or `undefined` when nothing is: NUL characters and
 * lone surrogates cannot be stored (see {@link toJsonValue}).
 */
export function unstorableText(text: string): string | undefined {
  const found = UNSTORABLE.exec(text);
  if (!found) return undefined;
  return found[0] === "\u0000" ? "a NUL character (\\u0000)" : "a lone UTF-16 surrogate (not valid Unicode)";
}

/**
 * Checks that `value` survives a JSON round trip unchanged in meaning and can be stored in
 * Postgres, and returns its JSON form (`undefined` → `null`). Throws OUTPUT_NOT_SERIALIZABLE
 * naming the path of the first offending value: a function, symbol, bigint, non-finite number,
 * Map, Set, a cycle, nesting deeper than {@link MAX_JSON_DEPTH}, or a string or key holding a
 * NUL character or a lone surrogate.
 */
export function toJsonValue(value: unknown, what: string): JsonValue {
  if (value === undefined || value === null) return null;
  // Scalars are their own JSON form: most step outputs, so no round trip for them.
  if (typeof value === "string") {
    const problem = unstorableText(value);
    if (problem) fail({ what, code: ErrorCode.OutputNotSerializable }, "$", problem);
    return value;
  }
  if (typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return Object.is(value, -0) ? 0 : value;
  checkJson(value, { what, code: ErrorCode.OutputNotSerializable, root: "$" });
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

/** How {@link checkJson} reports a problem. */
export interface JsonCheckOptions {
  /** What the value is, for the message, e.g. `the output of step "charge"`. */
  what: string;
  /** The error's code. */
  code: ErrorCode;
  /** The path of the value itself in messages, e.g. `$` or `events[0].data`. */
  root: string;
  /** Refuse `__proto__` keys (event data from untrusted senders). (Default: false) */
  refuseProtoKeys?: boolean;
}

/**
 * Walks `value` (iteratively: depth never costs stack) and throws a user-category
 * `StepwiseError` with `options.code` naming the path of the first value that cannot be stored
 * as JSON in Postgres; see {@link toJsonValue}. Objects with `toJSON` are taken as they are.
 */
export function checkJson(value: unknown, options: JsonCheckOptions): void {
  type Frame = { value: unknown; path: string; depth: number } | { leave: object };
  const stack: Frame[] = [{ value, path: options.root, depth: 0 }];
  const ancestors = new Set<object>();
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    if ("leave" in frame) {
      ancestors.delete(frame.leave);
      continue;
    }
    const { path, depth } = frame;
    const item = frame.value;
    switch (typeof item) {
      case "string": {
        const problem = unstorableText(item);
        if (problem) fail(options, path, problem);
        continue;
      }
      case "boolean":
      case "undefined":
        continue;
      case "number":
        if (!Number.isFinite(item)) fail(options, path, `the number ${item}`);
        continue;
      case "bigint":
        fail(options, path, "a bigint");
        break;
      case "function":
        fail(options, path, "a function");
        break;
      case "symbol":
        fail(options, path, "a symbol");
        break;
    }
    if (item === null) continue;
    const object = item as object;
    if (typeof (object as { toJSON?: unknown }).toJSON === "function") continue;
    if (object instanceof Map || object instanceof Set) fail(options, path, `a ${object.constructor.name}`);
    if (ancestors.has(object)) fail(options, path, "a circular reference");
    if (depth >= MAX_JSON_DEPTH) fail(options, path, `nested deeper than ${MAX_JSON_DEPTH} levels`);
    ancestors.add(object);
    stack.push({ leave: object });
    const children: Frame[] = [];
    if (Array.isArray(object)) {
      for (const [index, child] of object.entries()) children.push({ value: child, path: `${path}[${index}]`, depth: depth + 1 });
    } else {
      for (const [key, child] of Object.entries(object)) {
        const childPath = `${path}${/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`}`;
        const problem = unstorableText(key);
        if (problem) fail(options, childPath, `a key holding ${problem}`);
        if (options.refuseProtoKeys && key === "__proto__") fail(options, childPath, 'the key "__proto__", which is not accepted in data');
        children.push({ value: child, path: childPath, depth: depth + 1 });
      }
    }
    // Reversed onto the stack: the first child is looked at first, so the first problem is reported.
    for (let index = children.length - 1; index >= 0; index--) stack.push(children[index] as Frame);
  }
}

function fail(options: Pick<JsonCheckOptions, "what" | "code">, path: string, found: string): never {
  const hint = options.code === ErrorCode.OutputNotSerializable ? "; return plain objects, arrays, strings, finite numbers, booleans or null" : "";
  throw new StepwiseError({
    code: options.code,
    category: "user",
    message: `${options.what} cannot be stored as JSON: ${path} is ${found}${hint}`,
    details: { path },
  });
}
