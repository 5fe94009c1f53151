import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { RecordedError, SerializedError } from "../errors/serialize-error.js";
import type { EventPayload, SendEventResult, StepwiseEvent } from "../events/event.js";
import type { Duration } from "../helpers/duration.js";
import type { Jsonify, StepOutput } from "../helpers/json.js";
import type { Logger } from "../helpers/logger.js";
import type { PublishInput } from "../realtime/realtime-schemas.js";
import type { CRON_EVENT_NAME, CronTrigger, EventTrigger, FAILURE_EVENT_NAME, INVOKE_EVENT_NAME, Trigger } from "./triggers.js";

/** Event schemas by event name: any Standard Schema (zod, valibot, arktype...). */
export type EventSchemas = Record<string, StandardSchemaV1>;

/** The `data` type of event `TName`: from its schema when one is given, else a loose record. */
export type EventDataOf<TSchemas extends EventSchemas, TName extends string> = string extends keyof TSchemas
  ? // biome-ignore lint/suspicious/noExplicitAny: no schemas declared: events carry arbitrary JSON
    Record<string, any>
  : TName extends keyof TSchemas
    ? StandardSchemaV1.InferOutput<TSchemas[TName]>
    : // biome-ignore lint/suspicious/noExplicitAny: untyped events carry arbitrary JSON
      Record<string, any>;

/** The event a handler receives for one trigger. */
export type TriggerEvent<TSchemas extends EventSchemas, TTrigger> =
  TTrigger extends EventTrigger<infer TName>
    ? StepwiseEvent<TName, EventDataOf<TSchemas, TName>>
    : TTrigger extends CronTrigger
      ? StepwiseEvent<typeof CRON_EVENT_NAME, { cron: string }>
      : never;

/** The event a handler receives for one trigger or any of a list of triggers. */
export type EventOf<TSchemas extends EventSchemas, TTriggers> = TTriggers extends readonly (infer T)[]
  ? TriggerEvent<TSchemas, T>
  : TriggerEvent<TSchemas, TTriggers>;

/** Options of `step.waitForEvent`. */
export interface WaitForEventOptions<TName extends string = string> {
  /** Name of the event to wait for. */
  event: TName;
  /** How long to wait before giving up and returning `null`, e.g. `"3d"`. */
  timeout: Duration;
  /**
   * A field that must be equal in the triggering event and the awaited one, e.g.
   * `"data.userId"`. Shorthand for `if: "event.data.userId == async.data.userId"`.
   */
  match?: string;
  /** A CEL expression over `event` (the run's trigger) and `async` (the candidate event). */
  if?: string;
  /**
   * Also accept a matching event received up to this long **before** the wait began, e.g.
   * `"5m"`: a reply sent right after the trigger, while the run was still starting, resolves
   * the wait instead of being missed. (Default: none: only events after the wait began)
   */
  lookback?: Duration;
}

/** One event `step.waitForAny` accepts. */
export interface WaitCondition<TName extends string = string> {
  /** Name of the event. */
  event: TName;
  /** A field equal in the triggering event and this one, e.g. `"data.userId"`. */
  match?: string;
  /** A CEL expression over `event` (the run's trigger) and `async` (the candidate event). */
  if?: string;
}

/** Options of `step.waitForAny`. */
export interface WaitForAnyOptions {
  /** How long to wait before giving up and returning `null`, e.g. `"3d"`. */
  timeout: Duration;
  /** As {@link WaitForEventOptions.lookback}, for every condition. (Default: none) */
  lookback?: Duration;
}

/** Options of `step.invoke`. */
export interface InvokeOptions<TFunction> {
  /** The function to start, as returned by `createFunction`, or its id. */
  function: TFunction | string;
  /** Data of the `stepwise/function.invoked` event the child run receives. (Default: `{}`) */
  data?: Record<string, unknown>;
  /** Fail the step with INVOKE_TIMEOUT when the child has no result by then. (Default: no timeout) */
  timeout?: Duration;
}

/** The output type of a function, as stored (JSON). */
export type OutputOf<TFunction> = TFunction extends { readonly __output?: infer O } ? Jsonify<Awaited<O>> : unknown;

/**
 * What a `step.run` body receives. The zero-argument form `step.run(id, () => ...)` works as well.
 *
 * @example
 * await step.run("fetch-user", ({ signal }) => fetch(`https://api.example.com/users/${id}`, { signal }).then((r) => r.json()));
 */
export interface StepRunContext {
  /**
   * Aborts when this execution's result can no longer be recorded: the worker lost the run's
   * lease (another worker owns the run now), the worker is stopping past its grace period, or
   * the run was cancelled. Pass it on to side effects (`fetch(url, { signal })`, database and
   * model clients) so that they stop instead of running on as a zombie whose result is dropped.
   * `signal.reason` says why.
   */
  signal: AbortSignal;
  /** Zero-based attempt of this step: 0 on the first execution, 1 on the first retry. */
  attempt: number;
}

/**
 * The step tools. Each step has an id unique within the run (repeats get `:n`); its result is
 * checkpointed, so on replay a completed step returns its stored result without running again.
 */
export interface StepTools {
  /**
   * Runs `fn` as a retried, checkpointed step and returns its result (as JSON). A completed
   * step never runs again. `fn` receives a {@link StepRunContext} (`{ signal, attempt }`).
   */
  run<T>(id: string, fn: (context: StepRunContext) => T | Promise<T>): Promise<StepOutput<Awaited<T>>>;
  /** Suspends the run for `duration` (`"7d"`, `"15m"`, or milliseconds), holding no worker. */
  sleep(id: string, duration: Duration): Promise<void>;
  /** Suspends the run until `until` (a `Date`, ISO string or epoch milliseconds). */
  sleepUntil(id: string, until: Date | string | number): Promise<void>;
  /** Waits for a matching event; returns it, or `null` when `timeout` passes first. */
  waitForEvent<TName extends string>(id: string, options: WaitForEventOptions<TName>): Promise<StepwiseEvent<TName> | null>;
  /**
   * Waits for the first of several events (1 to 10 conditions); returns it (its `name` says
   * which), or `null` when `timeout` passes first. Once one resolves the step, no other
   * condition stays open.
   *
   * @example
   * const answer = await step.waitForAny("approval", [
   *   { event: "invoice.approved", match: "data.invoiceId" },
   *   { event: "invoice.rejected", match: "data.invoiceId" },
   * ], { timeout: "7d" });
   */
  waitForAny<TName extends string>(
    id: string,
    conditions: ReadonlyArray<WaitCondition<TName>>,
    options: WaitForAnyOptions,
  ): Promise<StepwiseEvent<TName> | null>;
  /** Starts another function as a child run and returns its output. */
  invoke<TFunction>(id: string, options: InvokeOptions<TFunction>): Promise<OutputOf<TFunction>>;
  /** Sends events from within the run, exactly once; returns their ids. */
  sendEvent(id: string, events: EventPayload | EventPayload[]): Promise<SendEventResult>;
}

/** What a handler receives. */
export interface HandlerContext<TEvent> {
  /** The event that started this run. */
  event: TEvent;
  /** All events of this run (one, unless batching). */
  events: TEvent[];
  step: StepTools;
  runId: string;
  /** Zero-based attempt of this run's handler (counts handler-level retries). */
  attempt: number;
  logger: Logger;
  /**
   * Aborts when this pass can no longer record anything (lease lost, worker stopping past its
   * grace period, run cancelled); the same signal step bodies receive. See {@link StepRunContext.signal}.
   */
  signal: AbortSignal;
  /**
   * Publishes a realtime message on a channel (`GET /v1/realtime` streams it, and a client that
   * reconnects resumes with no gap). Not a step: called in the handler's body it publishes
   * again on every replay; call it inside `step.run` to publish once per execution of that step.
   * Resolves once the message is stored in the channel's log; rejects on a malformed input.
   *
   * @example
   * await step.run("resize", async () => {
   *   await publish({ channel: `run:${runId}`, topic: "progress", data: { percent: 50 } });
   * });
   */
  publish(input: PublishInput): Promise<void>;
}

/** A function's handler. */
export type Handler<TEvent, TOutput> = (context: HandlerContext<TEvent>) => TOutput | Promise<TOutput>;

/** The event an `onFailure` handler receives. */
export type FailureEvent = StepwiseEvent<typeof FAILURE_EVENT_NAME, { function_id: string; run_id: string; error: SerializedError; event: StepwiseEvent }>;

/** An `onFailure` handler: runs, durably, after the function's run has failed for good. `error` is the run's last error, with its `code`. */
export type FailureHandler = (context: HandlerContext<FailureEvent> & { error: RecordedError }) => unknown;

/** Options of a function, as passed to `createFunction`. */
export interface FunctionConfig {
  /** Stable id, unique in the app: letters, digits, `.`, `_`, `-`. Runs are recorded under it. */
  id: string;
  /** Display name. (Default: the id) */
  name?: string;
  /** Retries after the first attempt, for each step and for the handler (0–20). (Default: 4) */
  retries?: number;
  /**
   * At most this many runs execute steps at once: a number, a rule, or up to 2 rules (a run
   * needs a slot of each). Sleeping and waiting runs hold no slot; a run that finds none waits
   * in the queue and starts as soon as one frees, on whichever worker. (Default: no limit)
   *
   * @example
   * concurrency: { limit: 1, key: "event.data.userId" } // one run at a time per user
   */
  concurrency?: number | ConcurrencyRule | ConcurrencyRule[];
  /** Called once, as a durable run of its own, when a run of this function fails for good. */
  onFailure?: FailureHandler;
  /**
   * Delays starts beyond `limit` per `period` (GCRA: one start every `period / limit`, with
   * `burst` more at once after a quiet spell). Never drops a run. (Default: none)
   */
  throttle?: { limit: number; period: Duration; burst?: number; key?: string };
  /** Skips events beyond `limit` per `period` (1 s to 24 h); each skip is recorded. (Default: none) */
  rateLimit?: { limit: number; period: Duration; key?: string };
  /** Starts one run with the last event of a quiet `period`; `timeout` caps how long events push it back. (Default: none) */
  debounce?: { period: Duration; key?: string; timeout?: Duration };
  /** `run`: CEL giving seconds (−600 to 600) by which a run moves ahead (or, negative, behind) in the queue. (Default: 0) */
  priority?: { run: string };
  /** Starts one run per batch of up to `maxSize` events, or after `timeout`; the handler gets `events`. (Default: none) */
  batchEvents?: { maxSize: number; timeout: Duration; key?: string; if?: string };
  /** CEL over `event` giving a key: one run per key per function for 24 h. (Default: none; event `id`s still dedupe) */
  idempotency?: string;
  /** At most one run per key: `skip` drops a new event while one runs, `cancel` cancels the running one for it. (Default: none) */
  singleton?: { key?: string; mode: "skip" | "cancel" };
  /** Cancels a run when a matching event arrives (`match`: a field equal in both, or `if`: CEL), within `timeout`. (Default: none) */
  cancelOn?: Array<{ event: string; match?: string; if?: string; timeout?: Duration }>;
  /** Cancels a run not started within `start` of its event, or not finished within `finish` of its start. (Default: none) */
  timeouts?: { start?: Duration; finish?: Duration };
}

/** One concurrency rule (see {@link FunctionConfig.concurrency}). */
export interface ConcurrencyRule {
  /** Most runs holding a slot of one key at once (at least 1). */
  limit: number;
  /** CEL over `event` giving the key, e.g. `"event.data.userId"`. (Default: one key for the scope) */
  key?: string;
  /** `"fn"`: this function's runs share the slots; `"env"`: runs of every function with the same key value do. (Default: `"fn"`) */
  scope?: "fn" | "env";
}

/** Any trigger or list of triggers. */
export type TriggerInput = Trigger | readonly Trigger[];

/** Events of the `invoke` entry point. */
export type InvokedEvent = StepwiseEvent<typeof INVOKE_EVENT_NAME>;
