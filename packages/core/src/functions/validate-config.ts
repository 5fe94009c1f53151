import { Cron } from "croner";
import { z } from "zod";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import { compileExpression } from "../helpers/expression.js";
import type { Trigger } from "./triggers.js";

/** Default number of retries after the first attempt of a step or handler. */
export const DEFAULT_RETRIES = 4;
/** Largest allowed `retries`. */
export const MAX_RETRIES = 20;
/** Most triggers a function may have. */
export const MAX_TRIGGERS = 10;

const celString = z.string().min(1);

const triggerSchema = z.union([
  z.strictObject({ event: z.string().min(1, "event name must not be empty"), if: celString.optional() }),
  z.strictObject({ cron: z.string().min(1), timezone: z.string().min(1).optional() }),
]);

const configSchema = z.object({
  id: z
    .string({ error: 'id is required, e.g. { id: "send-welcome-email" }' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "id must be letters, digits, '.', '_' or '-', e.g. \"send-welcome-email\"")
    .max(128),
  name: z.string().optional(),
  retries: z
    .number()
    .int("retries must be a whole number")
    .min(0, "retries must be 0 or more")
    .max(MAX_RETRIES, `retries must be at most ${MAX_RETRIES}`)
    .optional(),
  concurrency: z
    .union([
      z.number().int().min(1, "concurrency must be at least 1"),
      z.object({ limit: z.number().int().min(1, "concurrency.limit must be at least 1"), key: celString.optional() }),
    ])
    .optional(),
  onFailure: z.function().optional(),
});

/** Resolved concurrency: at most `limit` runs of the function execute steps at once. */
export interface ResolvedConcurrency {
  limit: number;
  key?: string;
}

/** A function's configuration after validation, with defaults applied. */
export interface ResolvedFunctionConfig {
  id: string;
  name: string;
  retries: number;
  concurrency?: ResolvedConcurrency;
  triggers: Trigger[];
}

/**
 * Validates a function's configuration and triggers, applying defaults. Throws a
 * `StepwiseError` (INVALID_FUNCTION_CONFIG) whose message names the function and option.
 */
export function validateFunctionConfig(config: unknown, triggers: unknown): ResolvedFunctionConfig {
  const label = typeof (config as { id?: unknown })?.id === "string" ? `createFunction("${(config as { id: string }).id}")` : "createFunction";
  const parsed = configSchema.safeParse(config);
  if (!parsed.success) throw invalid(label, parsed.error);
  const list = Array.isArray(triggers) ? triggers : [triggers];
  if (list.length === 0 || list.length > MAX_TRIGGERS) {
    throw configError(label, `triggers: give 1 to ${MAX_TRIGGERS} triggers, got ${list.length}`, "triggers");
  }
  const resolved: Trigger[] = list.map((trigger, index) => {
    const result = triggerSchema.safeParse(trigger);
    if (!result.success) {
      throw configError(label, `triggers[${index}]: use { event: "name", if?: "CEL" } or { cron: "0 9 * * *", timezone?: "UTC" }`, `triggers[${index}]`);
    }
    const value = result.data;
    if ("event" in value && value.if !== undefined) rethrowAs(label, () => compileExpression(value.if as string, `triggers[${index}].if`));
    if ("cron" in value) return cronTrigger(label, index, value);
    return value;
  });
  const { concurrency } = parsed.data;
  if (typeof concurrency === "object" && concurrency.key) rethrowAs(label, () => compileExpression(concurrency.key as string, "concurrency.key"));
  return {
    id: parsed.data.id,
    name: parsed.data.name ?? parsed.data.id,
    retries: parsed.data.retries ?? DEFAULT_RETRIES,
    concurrency: typeof concurrency === "number" ? { limit: concurrency } : concurrency,
    triggers: resolved,
  };
}

/** Inngest's way of giving a cron its time zone: `"TZ=Europe/Paris 0 9 * * *"` (also `CRON_TZ=`). */
const TZ_PREFIX = /^(?:CRON_)?TZ=(\S+)\s+(.+)$/;

/**
 * A cron trigger with its time zone resolved: from `timezone`, or from a `TZ=` prefix written
 * the Inngest way (both given and different is an error). The schedule and the zone are checked
 * by computing the next tick, which is where croner finds an unknown zone.
 */
function cronTrigger(label: string, index: number, trigger: { cron: string; timezone?: string }): { cron: string; timezone?: string } {
  const option = `triggers[${index}].cron`;
  let { cron, timezone } = trigger;
  const prefixed = TZ_PREFIX.exec(cron.trim());
  if (prefixed) {
    const [, zone, schedule] = prefixed as unknown as [string, string, string];
    if (timezone !== undefined && timezone !== zone) {
      throw configError(
        label,
        `${option}: ${JSON.stringify(cron)} names time zone ${zone}, but timezone is ${JSON.stringify(timezone)}; give one of them`,
        option,
      );
    }
    cron = schedule.trim();
    timezone = zone;
  }
  try {
    new Cron(cron, { timezone: timezone ?? "UTC", paused: true }).nextRun();
  } catch (error) {
    throw configError(label, `${option}: ${JSON.stringify(trigger.cron)} (timezone ${timezone ?? "UTC"}) is not valid: ${(error as Error).message}`, option);
  }
  return timezone === undefined ? { cron } : { cron, timezone };
}

function invalid(label: string, error: z.ZodError): StepwiseError {
  const issue = error.issues[0];
  const option = issue?.path.join(".") ?? "";
  return configError(label, `${option ? `${option}: ` : ""}${issue?.message ?? "invalid"}`, option);
}

function rethrowAs(label: string, check: () => unknown): void {
  try {
    check();
  } catch (error) {
    if (StepwiseError.isInstance(error)) throw configError(label, error.message, String(error.details["option"] ?? ""));
    throw error;
  }
}

function configError(label: string, message: string, option: string): StepwiseError {
  return new StepwiseError({
    code: ErrorCode.InvalidFunctionConfig,
    category: "user",
    message: `${label}: ${message}`,
    details: { option },
  });
}
