import { Cron } from "croner";
import { z } from "zod";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import { compileExpression } from "../helpers/expression.js";
import { flowConfigShape, type ResolvedFlowConfig, resolveFlowConfig } from "./flow-config.js";
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

const configSchema = z.strictObject({
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
  onFailure: z.function().optional(),
  ...flowConfigShape,
});

/** A function's configuration after validation, with defaults applied. */
export interface ResolvedFunctionConfig extends ResolvedFlowConfig {
  id: string;
  name: string;
  retries: number;
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
  const flow = resolveFlowConfig(parsed.data, (option, message) => {
    throw configError(label, `${option}: ${message}`, option);
  });
  return {
    id: parsed.data.id,
    name: parsed.data.name ?? parsed.data.id,
    retries: parsed.data.retries ?? DEFAULT_RETRIES,
    ...flow,
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
  // An unknown option first: its did-you-mean is the likelier fix than the missing field it causes.
  const first = error.issues.find((candidate) => candidate.code === "unrecognized_keys") ?? error.issues[0];
  const issue = first && meaningfulIssue(first);
  const option = formatPath(issue?.path ?? []);
  if (issue?.code === "unrecognized_keys") {
    const [unknown] = issue.keys;
    const valid = optionsAt(issue.path);
    const nearest = unknown === undefined ? undefined : closest(unknown, valid);
    const hint = nearest ? `; did you mean ${JSON.stringify(nearest)}?` : `; the options are ${valid.map((name) => JSON.stringify(name)).join(", ")}`;
    return configError(
      label,
      `${option ? `${option}: ` : ""}${JSON.stringify(unknown)} is not an option${hint}`,
      option ? `${option}.${unknown}` : String(unknown),
    );
  }
  return configError(label, `${option ? `${option}: ` : ""}${issue?.message ?? "invalid"}`, option);
}

/**
 * The issue worth reporting: inside a union (`concurrency` is a number, a rule or a list), the
 * branch whose type the value has, and there an unknown option first (its did-you-mean is the
 * likelier fix than the missing field it causes).
 */
function meaningfulIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== "invalid_union") return issue;
  const branch = issue.errors.find((issues) => !(issues.length === 1 && issues[0]?.code === "invalid_type" && issues[0].path.length === 0));
  const chosen = branch?.find((inner) => inner.code === "unrecognized_keys") ?? branch?.[0];
  return chosen ? meaningfulIssue({ ...chosen, path: [...issue.path, ...chosen.path] }) : issue;
}

/** `cancelOn[0].if` from `["cancelOn", 0, "if"]`. */
function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((text, part) => (typeof part === "number" ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part)), "");
}

/** The option names valid in the object at `path` of the config (its nested object schemas). */
function optionsAt(path: PropertyKey[]): string[] {
  let schema: z.ZodType = configSchema;
  for (const part of path) {
    if (typeof part === "number") continue;
    const shape = objectShape(schema);
    const next = shape?.[String(part)];
    if (!next) return [];
    schema = next;
  }
  return Object.keys(objectShape(schema) ?? {});
}

/** The shape of the object schema inside `schema` (through optional, array and union), if any. */
function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  if (schema instanceof z.ZodObject) return schema.shape as Record<string, z.ZodType>;
  if (schema instanceof z.ZodOptional) return objectShape(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodArray) return objectShape(schema.element as z.ZodType);
  if (schema instanceof z.ZodUnion) {
    for (const option of schema.options as z.ZodType[]) {
      const shape = objectShape(option);
      if (shape) return shape;
    }
  }
  return undefined;
}

/** The valid name nearest to `name` (case-insensitive edit distance, at most a third of its length), if any. */
function closest(name: string, valid: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.ceil(name.length / 3)) + 1;
  for (const candidate of valid) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] as number;
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
