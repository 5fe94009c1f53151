import {
  type AnyStepwise,
  type AnyStepwiseFunction,
  CRON_EVENT_NAME,
  ErrorCode,
  FAILURE_EVENT_NAME,
  INVOKE_EVENT_NAME,
  isEventTrigger,
  StepwiseError,
  splitFunctionId,
} from "@stepwise/core";
import { FAILURE_FUNCTION_SUFFIX, type RunnableFunction } from "./worker/process-run.js";

/**
 * The functions one engine runs, by qualified id (`<app id>/<function id>`: what runs are
 * recorded under), with the synthetic `<qualified id>/on-failure` functions of their
 * `onFailure` handlers, and the lookup of a function by the id a caller gives.
 */
export class FunctionRegistry {
  /** The user's functions, by qualified id. */
  readonly functions = new Map<string, AnyStepwiseFunction>();
  private readonly runnable = new Map<string, RunnableFunction>();
  // Plain function id → qualified ids with that id (one per app that has it).
  private readonly byPlainId = new Map<string, string[]>();

  constructor(clients: AnyStepwise[], functions: AnyStepwiseFunction[]) {
    for (const fn of [...clients.flatMap((client) => client.functions), ...functions]) {
      const existing = this.functions.get(fn.qualifiedId);
      if (existing === fn) continue;
      if (existing) {
        throw new StepwiseError({
          code: ErrorCode.InvalidFunctionConfig,
          category: "user",
          message: `two functions of app "${fn.appId}" share the id "${fn.id}"; function ids must be unique within an app`,
        });
      }
      this.functions.set(fn.qualifiedId, fn);
      this.byPlainId.set(fn.id, [...(this.byPlainId.get(fn.id) ?? []), fn.qualifiedId]);
      this.runnable.set(fn.qualifiedId, { id: fn.qualifiedId, retries: fn.config.retries, handler: fn.handler as never, fn, isFailureHandler: false });
      if (fn.onFailure) {
        const id = fn.qualifiedId + FAILURE_FUNCTION_SUFFIX;
        this.runnable.set(id, { id, retries: fn.config.retries, handler: fn.onFailure as never, fn, isFailureHandler: true });
      }
    }
  }

  /** A function (or `onFailure` handler) this engine can run, by qualified id. */
  runnableFunction(qualifiedId: string): RunnableFunction | undefined {
    return this.runnable.get(qualifiedId);
  }

  /**
   * The qualified id of the function a caller names: a qualified id, or a plain function id,
   * looked up in `preferApp` first (a `step.invoke` from that app), then in every app, where it
   * must be unique. `undefined` when nothing matches; throws FUNCTION_NOT_FOUND naming the
   * candidates when a plain id is ambiguous.
   */
  resolve(id: string, preferApp?: string): string | undefined {
    if (this.functions.has(id)) return id;
    const candidates = this.byPlainId.get(id) ?? [];
    if (preferApp !== undefined && candidates.includes(`${preferApp}/${id}`)) return `${preferApp}/${id}`;
    if (candidates.length > 1) {
      throw new StepwiseError({
        code: ErrorCode.FunctionNotFound,
        category: "user",
        message: `"${id}" names a function in several apps (${candidates.join(", ")}); give its qualified id`,
        details: { functionId: id, candidates },
      });
    }
    return candidates[0];
  }

  /** Like {@link FunctionRegistry.resolve}, throwing FUNCTION_NOT_FOUND (listing what is registered) when nothing matches. */
  require(id: string): string {
    const found = this.resolve(id);
    if (found !== undefined) return found;
    throw new StepwiseError({
      code: ErrorCode.FunctionNotFound,
      category: "user",
      message: `no function with id "${id}" is registered; known: ${[...this.functions.keys()].join(", ") || "none"}`,
      details: { functionId: id },
    });
  }

  /**
   * For adopting runs recorded before app ids (see `RunStore.qualifyFunctionIds`): each
   * runnable function's plain and qualified id, and the names of the events that start it.
   */
  qualifiedIds(): Array<{ plain: string; qualified: string; events: string[] }> {
    return [...this.runnable.values()].map((target) => {
      const { functionId } = splitFunctionId(target.id);
      const events = target.isFailureHandler
        ? [FAILURE_EVENT_NAME]
        : [...target.fn.config.triggers.map((trigger) => (isEventTrigger(trigger) ? trigger.event : CRON_EVENT_NAME)), INVOKE_EVENT_NAME];
      return { plain: functionId, qualified: target.id, events: [...new Set(events)] };
    });
  }
}
