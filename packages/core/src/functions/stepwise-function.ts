import type { FailureHandler, Handler } from "./types.js";
import type { ResolvedFunctionConfig } from "./validate-config.js";

const marker = Symbol.for("stepwise.function");

/**
 * A durable function, as returned by `createFunction`. Pass it to `step.invoke`,
 * `stepwise.invoke`, or an engine. `TEvent` and `TOutput` type its event and result.
 */
export class StepwiseFunction<TEvent = unknown, TOutput = unknown> {
  private readonly [marker] = true;
  /** Carries the output type for inference; never set at run time. */
  declare readonly __output?: TOutput;
  /** Carries the event type for inference; never set at run time. */
  declare readonly __event?: TEvent;
  readonly id: string;
  readonly config: ResolvedFunctionConfig;
  readonly handler: Handler<TEvent, TOutput>;
  readonly onFailure: FailureHandler | undefined;
  /** Id of the app (`new Stepwise({ id })`) that defined the function. */
  readonly appId: string;

  constructor(options: { appId: string; config: ResolvedFunctionConfig; handler: Handler<TEvent, TOutput>; onFailure?: FailureHandler }) {
    this.appId = options.appId;
    this.id = options.config.id;
    this.config = options.config;
    this.handler = options.handler;
    this.onFailure = options.onFailure;
  }

  /** True for any {@link StepwiseFunction}, across duplicate installs. */
  static isInstance(value: unknown): value is AnyStepwiseFunction {
    return typeof value === "object" && value !== null && marker in value;
  }
}

/** A function of any event and output type. */
// biome-ignore lint/suspicious/noExplicitAny: erased generics
export type AnyStepwiseFunction = StepwiseFunction<any, any>;
