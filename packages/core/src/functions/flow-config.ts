import { z } from "zod";
import { type Duration, parseDuration } from "../helpers/duration.js";
import { compileExpression, isFieldPath } from "../helpers/expression.js";

// The flow-control options of `createFunction`: their schemas (strict objects, so a misspelled
// option is an error, never silently dropped), their resolved forms, and their bounds. Every
// `key`, `if`, `match` and `run` is a CEL expression over `event`, compiled here so that one
// that does not parse fails at `createFunction`, naming the option.

/** Most concurrency rules a function may have. */
export const MAX_CONCURRENCY_RULES = 2;
/** Shortest period of `throttle`, `rateLimit` and `debounce` (1 s). */
export const MIN_FLOW_PERIOD_MS = 1000;
/** Longest period of `throttle` and `debounce` (7 days). */
export const MAX_FLOW_PERIOD_MS = 7 * 24 * 3600_000;
/** Longest period of `rateLimit` (24 h). */
export const MAX_RATE_LIMIT_PERIOD_MS = 24 * 3600_000;
/** Bound of `priority.run`, in seconds either way (600). */
export const MAX_PRIORITY_SECONDS = 600;
/** How long an idempotency key holds: one run per key per function within it (24 h). */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3600_000;
/** Largest `batchEvents.maxSize`. */
export const MAX_BATCH_SIZE = 1000;
/** Longest `batchEvents.timeout` (60 s). */
export const MAX_BATCH_TIMEOUT_MS = 60_000;

const cel = z.string().min(1, 'must be a CEL expression, e.g. "event.data.userId"');
const limit = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .min(1, `${what} must be at least 1`);
const duration = z.union([z.number(), z.string()], { error: 'must be a duration: milliseconds or a string such as "30s", "15m"' });

const concurrencyRule = z.strictObject({
  limit: limit("limit"),
  key: cel.optional(),
  scope: z.enum(["fn", "env"], { error: 'scope must be "fn" or "env"' }).optional(),
});

/** The schemas of the flow-control options, by option name (merged into the config schema). */
export const flowConfigShape = {
  concurrency: z
    .union([limit("concurrency"), concurrencyRule, z.array(concurrencyRule)], {
      error: "concurrency must be a number, { limit, key?, scope? }, or a list of up to 2 of them",
    })
    .optional(),
  throttle: z.strictObject({ limit: limit("limit"), period: duration, burst: z.number().int().min(0).optional(), key: cel.optional() }).optional(),
  rateLimit: z.strictObject({ limit: limit("limit"), period: duration, key: cel.optional() }).optional(),
  debounce: z.strictObject({ period: duration, key: cel.optional(), timeout: duration.optional() }).optional(),
  priority: z.strictObject({ run: cel }).optional(),
  batchEvents: z.strictObject({ maxSize: limit("maxSize"), timeout: duration, key: cel.optional(), if: cel.optional() }).optional(),
  idempotency: cel.optional(),
  singleton: z.strictObject({ key: cel.optional(), mode: z.enum(["skip", "cancel"], { error: 'mode must be "skip" or "cancel"' }) }).optional(),
  cancelOn: z
    .array(
      z.strictObject({
        event: z.string().min(1, "event name must not be empty"),
        match: z.string().min(1).optional(),
        if: cel.optional(),
        timeout: duration.optional(),
      }),
    )
    .optional(),
  timeouts: z.strictObject({ start: duration.optional(), finish: duration.optional() }).optional(),
};

/** The raw flow-control options, as the schema accepts them. */
export type FlowConfigInput = { [K in keyof typeof flowConfigShape]?: z.infer<(typeof flowConfigShape)[K]> };

/** One concurrency rule, resolved: at most `limit` runs hold a slot of the same key at once. */
export interface ResolvedConcurrency {
  limit: number;
  /** CEL over `event` giving the key; runs of different keys do not share slots. (Default: none: one key for the scope) */
  key?: string;
  /** `fn`: the function's runs share the slots; `env`: every function's runs with the same key value do. (Default: `fn`) */
  scope: "fn" | "env";
}

/** `throttle`, resolved (GCRA: one start every `periodMs / limit`, `burst` more at once). */
export interface ResolvedThrottle {
  limit: number;
  periodMs: number;
  burst: number;
  key?: string;
}

/** `rateLimit`, resolved. */
export interface ResolvedRateLimit {
  limit: number;
  periodMs: number;
  key?: string;
}

/** `debounce`, resolved. */
export interface ResolvedDebounce {
  periodMs: number;
  key?: string;
  timeoutMs?: number;
}

/** `batchEvents`, resolved. */
export interface ResolvedBatchEvents {
  maxSize: number;
  timeoutMs: number;
  key?: string;
  if?: string;
}

/** One `cancelOn` entry, resolved. */
export interface ResolvedCancelOn {
  event: string;
  /** CEL over `event` (the run's trigger) and `async` (the candidate). */
  if?: string;
  /** A field path equal in the trigger and the candidate (stores index the wait by its value). */
  match?: string;
  timeoutMs?: number;
}

/** The flow-control part of a resolved function configuration. Absent options are absent. */
export interface ResolvedFlowConfig {
  /** Up to {@link MAX_CONCURRENCY_RULES} rules; empty means no limit. */
  concurrency: ResolvedConcurrency[];
  throttle?: ResolvedThrottle;
  rateLimit?: ResolvedRateLimit;
  debounce?: ResolvedDebounce;
  priority?: { run: string };
  batchEvents?: ResolvedBatchEvents;
  idempotency?: string;
  singleton?: { key?: string; mode: "skip" | "cancel" };
  cancelOn: ResolvedCancelOn[];
  timeouts?: { startMs?: number; finishMs?: number };
}

/**
 * Options that decide per event, so mean nothing for a run of many: `batchEvents` refuses them
 * rather than applying them to the batch's first event only.
 */
const BATCH_CONFLICTS: ReadonlyArray<readonly [keyof FlowConfigInput, string]> = [
  ["debounce", "both decide which events start a run; use one"],
  ["idempotency", "a key is per event, and a batch holds many; dedupe events with their `id` instead"],
  ["rateLimit", "it skips single events, and a batch would lose them silently; use throttle or concurrency"],
  ["singleton", "use concurrency: { limit: 1, key } to run one batch per key at a time"],
  ["cancelOn", "a cancelling event would cancel the whole batch for one of its events"],
];

/**
 * Resolves the parsed flow-control options: durations to milliseconds within their bounds,
 * expressions compiled, defaults applied. `fail(option, message)` throws the caller's error.
 */
export function resolveFlowConfig(input: FlowConfigInput, fail: (option: string, message: string) => never): ResolvedFlowConfig {
  const expression = (source: string | undefined, option: string) => {
    if (source === undefined) return undefined;
    try {
      compileExpression(source, option);
    } catch (error) {
      fail(option, (error as Error).message.replace(`${option}: `, ""));
    }
    return source;
  };
  const period = (value: Duration | undefined, option: string, max: number, min = MIN_FLOW_PERIOD_MS): number | undefined => {
    if (value === undefined) return undefined;
    let ms: number;
    try {
      ms = parseDuration(value, option);
    } catch (error) {
      return fail(option, (error as Error).message.replace(`${option}: `, ""));
    }
    if (ms < min) fail(option, `${JSON.stringify(value)} is under ${min / 1000} s, the shortest allowed`);
    if (ms > max) fail(option, `${JSON.stringify(value)} is over ${formatMs(max)}, the longest allowed`);
    return ms;
  };

  const rules = input.concurrency === undefined ? [] : typeof input.concurrency === "number" ? [{ limit: input.concurrency }] : [input.concurrency].flat();
  if (rules.length > MAX_CONCURRENCY_RULES) fail("concurrency", `give at most ${MAX_CONCURRENCY_RULES} rules, got ${rules.length}`);
  const concurrency = rules.map((rule, index): ResolvedConcurrency => {
    const option = Array.isArray(input.concurrency) ? `concurrency[${index}]` : "concurrency";
    const scope = rule.scope ?? "fn";
    if (scope === "env" && rule.key === undefined)
      fail(`${option}.key`, 'scope "env" shares slots between functions by key, so give a key (a constant one is a string: "\'openai\'")');
    const key = expression(rule.key, `${option}.key`);
    return key === undefined ? { limit: rule.limit, scope } : { limit: rule.limit, key, scope };
  });

  const resolved: ResolvedFlowConfig = { concurrency, cancelOn: [] };
  if (input.throttle) {
    const { limit: max, burst = 0, key } = input.throttle;
    resolved.throttle = {
      limit: max,
      periodMs: period(input.throttle.period, "throttle.period", MAX_FLOW_PERIOD_MS) as number,
      burst,
      ...defined("key", expression(key, "throttle.key")),
    };
  }
  if (input.rateLimit) {
    const { limit: max, key } = input.rateLimit;
    resolved.rateLimit = {
      limit: max,
      periodMs: period(input.rateLimit.period, "rateLimit.period", MAX_RATE_LIMIT_PERIOD_MS) as number,
      ...defined("key", expression(key, "rateLimit.key")),
    };
  }
  if (input.debounce) {
    const periodMs = period(input.debounce.period, "debounce.period", MAX_FLOW_PERIOD_MS) as number;
    const timeoutMs = period(input.debounce.timeout, "debounce.timeout", MAX_FLOW_PERIOD_MS);
    if (timeoutMs !== undefined && timeoutMs < periodMs)
      fail("debounce.timeout", `must be at least debounce.period (${formatMs(periodMs)}): it caps how long events keep pushing the run back`);
    resolved.debounce = { periodMs, ...defined("key", expression(input.debounce.key, "debounce.key")), ...defined("timeoutMs", timeoutMs) };
  }
  if (input.priority) resolved.priority = { run: expression(input.priority.run, "priority.run") as string };
  if (input.batchEvents) {
    const { maxSize, key } = input.batchEvents;
    if (maxSize > MAX_BATCH_SIZE) fail("batchEvents.maxSize", `must be at most ${MAX_BATCH_SIZE}, got ${maxSize}`);
    for (const [option, why] of BATCH_CONFLICTS) {
      if (input[option] !== undefined) fail("batchEvents", `cannot be combined with ${option}: ${why}`);
    }
    resolved.batchEvents = {
      maxSize,
      timeoutMs: period(input.batchEvents.timeout, "batchEvents.timeout", MAX_BATCH_TIMEOUT_MS) as number,
      ...defined("key", expression(key, "batchEvents.key")),
      ...defined("if", expression(input.batchEvents.if, "batchEvents.if")),
    };
  }
  if (input.idempotency !== undefined) resolved.idempotency = expression(input.idempotency, "idempotency");
  if (input.singleton) resolved.singleton = { mode: input.singleton.mode, ...defined("key", expression(input.singleton.key, "singleton.key")) };
  resolved.cancelOn = (input.cancelOn ?? []).map((entry, index) => {
    const option = `cancelOn[${index}]`;
    if (entry.match !== undefined && !isFieldPath(entry.match))
      fail(`${option}.match`, `${JSON.stringify(entry.match)} is not a field path such as "data.userId"`);
    return {
      event: entry.event,
      ...defined("if", expression(entry.if, `${option}.if`)),
      ...defined("match", entry.match),
      ...defined("timeoutMs", period(entry.timeout, `${option}.timeout`, Number.MAX_SAFE_INTEGER)),
    };
  });
  if (input.timeouts) {
    const startMs = period(input.timeouts.start, "timeouts.start", Number.MAX_SAFE_INTEGER);
    const finishMs = period(input.timeouts.finish, "timeouts.finish", Number.MAX_SAFE_INTEGER);
    if (startMs === undefined && finishMs === undefined) fail("timeouts", "give start, finish or both");
    resolved.timeouts = { ...defined("startMs", startMs), ...defined("finishMs", finishMs) };
  }
  return resolved;
}

/** `{ [name]: value }` when `value` is defined, else `{}`: keeps absent options absent. */
function defined<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

function formatMs(ms: number): string {
  if (ms % (24 * 3600_000) === 0) return `${ms / (24 * 3600_000)} d`;
  if (ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  return `${ms / 1000} s`;
}
