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
  /**
   * The id runs are recorded under: `<app id>/<function id>`, so that two apps sharing one
   * Postgres never take each other's runs, even with functions of the same id.
   */
  readonly qualifiedId: string;

  constructor(options: { appId: string; config: ResolvedFunctionConfig; handler: Handler<TEvent, TOutput>; onFailure?: FailureHandler }) {
    this.appId = options.appId;
    this.id = options.config.id;
    this.qualifiedId = qualifyFunctionId(options.appId, options.config.id);
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

/** Separates the app id from the function id in a qualified id (neither may contain it). */
const SEPARATOR = "/";

/** The qualified id of function `functionId` of app `appId`: `<app id>/<function id>`. */
export function qualifyFunctionId(appId: string, functionId: string): string {
  return `${appId}${SEPARATOR}${functionId}`;
}

/**
 * Splits a qualified function id into its app id and function id (an engine's synthetic
 * suffix, such as `/on-failure`, stays with the function id). A legacy id without an app
 * answers `appId: undefined`.
 */
export function splitFunctionId(qualifiedId: string): { appId?: string; functionId: string } {
  const at = qualifiedId.indexOf(SEPARATOR);
  return at < 0 ? { functionId: qualifiedId } : { appId: qualifiedId.slice(0, at), functionId: qualifiedId.slice(at + 1) };
}
