import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import { type EventPayload, parseEvents, type SendEventResult } from "../events/event.js";
import { type AnyStepwiseFunction, StepwiseFunction } from "../functions/stepwise-function.js";
import type { Trigger } from "../functions/triggers.js";
import type { EventOf, EventSchemas, FunctionConfig, Handler, OutputOf } from "../functions/types.js";
import { validateFunctionConfig } from "../functions/validate-config.js";
import { type Duration, parseDuration } from "../helpers/duration.js";
import { StepwiseWebhook, type WebhookOptions } from "../webhooks/webhook.js";
import { createHttpTransport, type HttpTransportOptions } from "./http-transport.js";
import type { RunInfo, StepwiseTransport } from "./transport.js";

const clientMarker = Symbol.for("stepwise.client");

/** Options of {@link Stepwise}. */
export interface StepwiseOptions<TSchemas extends EventSchemas> {
  /** Id of the app, e.g. `"my-app"`. */
  id: string;
  /** Event schemas by name (zod or any Standard Schema): type `event.data` and validate `send()`. (Default: none) */
  schemas?: TSchemas;
  /** Where `send()` goes when no engine runs in this process. (Default: the dev server, or `STEPWISE_BASE_URL`) */
  baseUrl?: string;
  /** Event key for the HTTP API. (Default: `STEPWISE_EVENT_KEY`, else `"dev"`) */
  eventKey?: string;
}

/** An event as sent; `data` is typed by the client's schema for `TName`, when there is one. */
export type SendPayload<TSchemas extends EventSchemas, TName extends string = string> = Omit<EventPayload, "name" | "data"> & {
  name: TName;
  data?: string extends keyof TSchemas
    ? Record<string, unknown>
    : TName extends keyof TSchemas
      ? StandardSchemaV1.InferInput<TSchemas[TName]>
      : Record<string, unknown>;
};

/** Options of {@link Stepwise.invoke}. */
export interface ClientInvokeOptions {
  /** Reject with INVOKE_TIMEOUT when no result arrives in time. (Default: wait indefinitely) */
  timeout?: Duration;
}

/**
 * The Stepwise client: defines functions and sends events.
 *
 * @example
 * export const stepwise = new Stepwise({ id: "my-app" });
 * export const hello = stepwise.createFunction({ id: "hello" }, { event: "demo/hello" }, async ({ event, step }) => {
 *   return step.run("greet", () => `hello ${event.data.name}`);
 * });
 * await stepwise.send({ name: "demo/hello", data: { name: "Ada" } });
 */
export class Stepwise<TSchemas extends EventSchemas = EventSchemas> {
  private readonly [clientMarker] = true;
  readonly id: string;
  readonly schemas: TSchemas | undefined;
  private readonly registry = new Map<string, AnyStepwiseFunction>();
  private readonly webhookRegistry = new Map<string, StepwiseWebhook>();
  private readonly httpOptions: HttpTransportOptions;
  private transport: StepwiseTransport | undefined;

  constructor(options: StepwiseOptions<TSchemas>) {
    if (typeof options?.id !== "string" || options.id.length === 0) {
      throw new StepwiseError({
        code: ErrorCode.InvalidFunctionConfig,
        category: "user",
        message: 'new Stepwise({ id }): id is required, e.g. new Stepwise({ id: "my-app" })',
      });
    }
    // The app id prefixes every function's recorded id (`my-app/send-email`): same alphabet as function ids.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(options.id) || options.id.length > 128) {
      throw new StepwiseError({
        code: ErrorCode.InvalidFunctionConfig,
        category: "user",
        message: `new Stepwise({ id }): ${JSON.stringify(options.id)} is not a valid app id; use letters, digits, '.', '_' or '-' (at most 128), e.g. "my-app"`,
      });
    }
    this.id = options.id;
    this.schemas = options.schemas;
    this.httpOptions = { baseUrl: options.baseUrl, eventKey: options.eventKey };
  }

  /**
   * Defines a durable function: `createFunction(config, trigger | triggers, handler)`, or
   * `createFunction({ ...config, triggers }, handler)`. Throws INVALID_FUNCTION_CONFIG naming
   * the option when the configuration is invalid.
   */
  createFunction<const TTriggers extends Trigger | readonly Trigger[], TOutput>(
    config: FunctionConfig,
    trigger: TTriggers,
    handler: Handler<EventOf<TSchemas, TTriggers>, TOutput>,
  ): StepwiseFunction<EventOf<TSchemas, TTriggers>, TOutput>;
  createFunction<const TTriggers extends Trigger | readonly Trigger[], TOutput>(
    config: FunctionConfig & { triggers: TTriggers },
    handler: Handler<EventOf<TSchemas, TTriggers>, TOutput>,
  ): StepwiseFunction<EventOf<TSchemas, TTriggers>, TOutput>;
  createFunction(config: FunctionConfig & { triggers?: unknown }, second: unknown, third?: unknown): AnyStepwiseFunction {
    const [triggers, handler] = third === undefined ? [config?.triggers, second] : [second, third];
    const { triggers: _omit, ...rest } = config ?? ({} as FunctionConfig);
    const resolved = validateFunctionConfig(rest, triggers);
    if (typeof handler !== "function") {
      throw new StepwiseError({
        code: ErrorCode.InvalidFunctionConfig,
        category: "user",
        message: `createFunction("${resolved.id}"): the handler must be a function`,
      });
    }
    if (this.registry.has(resolved.id)) {
      throw new StepwiseError({
        code: ErrorCode.InvalidFunctionConfig,
        category: "user",
        message: `createFunction("${resolved.id}"): a function with this id already exists in app "${this.id}"`,
      });
    }
    const fn = new StepwiseFunction({ appId: this.id, config: resolved, handler: handler as Handler<unknown, unknown>, onFailure: config.onFailure });
    this.registry.set(fn.id, fn);
    return fn;
  }

  /** Every function defined with this client, in definition order. */
  get functions(): AnyStepwiseFunction[] {
    return [...this.registry.values()];
  }

  /**
   * Defines a webhook endpoint, served at `POST /webhooks/<id>` by `stepwise dev` and `start`:
   * the request is verified on its raw body (`verify`, e.g. `stripeSignature`), then turned into
   * events (`transform`) that are sent like any other. Throws INVALID_FUNCTION_CONFIG naming the option.
   *
   * @example
   * stepwise.createWebhook({
   *   id: "github",
   *   verify: githubSignature({ secret: process.env.GITHUB_WEBHOOK_SECRET! }),
   *   transform: ({ body, headers }) => ({ name: `github/${headers.get("x-github-event")}`, data: body }),
   * });
   */
  createWebhook(options: WebhookOptions): StepwiseWebhook {
    const fail = (message: string): never => {
      throw new StepwiseError({ code: ErrorCode.InvalidFunctionConfig, category: "user", message: `createWebhook: ${message}` });
    };
    if (typeof options !== "object" || options === null) fail("pass { id, verify, transform }");
    const unknown = Object.keys(options).filter((key) => !["id", "verify", "transform"].includes(key));
    if (unknown.length > 0) fail(`${unknown.map((key) => JSON.stringify(key)).join(", ")} is not an option; a webhook has id, verify and transform`);
    if (typeof options.id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(options.id))
      fail(`id must be letters, digits, '.', '_' or '-', e.g. "stripe"`);
    if (typeof options.verify !== "function") fail(`${options.id}: verify must be a verifier, e.g. stripeSignature({ secret })`);
    if (typeof options.transform !== "function") fail(`${options.id}: transform must be a function from the request to events`);
    if (this.webhookRegistry.has(options.id)) fail(`a webhook with id "${options.id}" already exists in app "${this.id}"`);
    const webhook = new StepwiseWebhook(this.id, options);
    this.webhookRegistry.set(webhook.id, webhook);
    return webhook;
  }

  /** Every webhook defined with this client. */
  get webhooks(): StepwiseWebhook[] {
    return [...this.webhookRegistry.values()];
  }

  /**
   * Sends one event or many. Resolves, once they are stored, with one event id per event;
   * `runs(eventId)` finds the runs an event started. An event with an `id` already sent in
   * the last 24 h is not stored again (its first id is answered).
   */
  async send<TName extends string>(events: SendPayload<TSchemas, TName> | SendPayload<TSchemas, TName>[]): Promise<SendEventResult> {
    const parsed = parseEvents(events);
    await Promise.all(parsed.map((event) => this.validateData(event)));
    return this.getTransport().send(parsed);
  }

  /**
   * Starts a run of `fn` with `data` and resolves with its output. Rejects with a
   * `StepwiseError` (RUN_FAILED, INVOKE_TIMEOUT, FUNCTION_NOT_FOUND) otherwise.
   */
  async invoke<TFunction extends AnyStepwiseFunction | string>(
    fn: TFunction,
    data: TFunction extends StepwiseFunction<infer TEvent, unknown>
      ? TEvent extends { data: infer D }
        ? Partial<D>
        : Record<string, unknown>
      : Record<string, unknown> = {} as never,
    options: ClientInvokeOptions = {},
  ): Promise<OutputOf<TFunction>> {
    const functionId = typeof fn === "string" ? fn : fn.qualifiedId;
    const timeoutMs = options.timeout === undefined ? undefined : parseDuration(options.timeout, "invoke timeout");
    const run = await this.getTransport().invoke(functionId, data, { timeoutMs });
    return resultOf(run) as never;
  }

  /** The runs started by an event id that `send()` answered. */
  runs(eventId: string): Promise<RunInfo[]> {
    return this.getTransport().runsForEvent(eventId);
  }

  /** Resolves with a run once it has ended (completed, failed or cancelled). */
  waitForRun(runId: string, options: { timeout?: Duration } = {}): Promise<RunInfo> {
    const timeoutMs = options.timeout === undefined ? undefined : parseDuration(options.timeout, "waitForRun timeout");
    return this.getTransport().waitForRun(runId, { timeoutMs });
  }

  /** True for any {@link Stepwise} client, across duplicate installs. */
  static isInstance(value: unknown): value is Stepwise {
    return typeof value === "object" && value !== null && clientMarker in value;
  }

  /**
   * Routes this client's `send()`/`invoke()` through a transport; an engine in the same process
   * calls this on start. Not meant for application code.
   */
  setTransport(transport: StepwiseTransport | undefined): void {
    this.transport = transport;
  }

  private getTransport(): StepwiseTransport {
    this.transport ??= createHttpTransport(this.httpOptions);
    return this.transport;
  }

  private async validateData(event: EventPayload): Promise<void> {
    const schema = this.schemas?.[event.name];
    if (!schema) return;
    const result = await schema["~standard"].validate(event.data ?? {});
    if (result.issues) {
      const issue = result.issues[0];
      const path = issue?.path?.map((part) => (typeof part === "object" ? String(part.key) : String(part))).join(".");
      throw new StepwiseError({
        code: ErrorCode.InvalidEventPayload,
        category: "user",
        message: `event "${event.name}": data${path ? `.${path}` : ""}: ${issue?.message ?? "does not match its schema"}`,
      });
    }
    event.data = result.value as Record<string, unknown>;
  }
}

/** A client with any event schemas. */
// biome-ignore lint/suspicious/noExplicitAny: erased generic, as in AnyStepwiseFunction
export type AnyStepwise = Stepwise<any>;

/** The output of an ended run, or the error it ended with. */
export function resultOf(run: RunInfo): unknown {
  if (run.status === "completed") return run.output ?? null;
  if (run.status === "skipped") {
    throw new StepwiseError({
      code: ErrorCode.RunSkipped,
      message: `run ${run.id} of "${run.functionId}" was skipped: ${run.error?.message ?? "flow control"}`,
      details: { runId: run.id },
    });
  }
  if (run.status === "cancelled") {
    throw new StepwiseError({ code: ErrorCode.RunCancelled, message: `run ${run.id} of "${run.functionId}" was cancelled`, details: { runId: run.id } });
  }
  throw new StepwiseError({
    code: ErrorCode.RunFailed,
    message: `run ${run.id} of "${run.functionId}" failed: ${run.error?.message ?? "unknown error"}`,
    details: { runId: run.id, error: run.error ?? null },
  });
}
