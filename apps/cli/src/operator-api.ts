import { createApiClient, DEFAULT_BASE_URL, ErrorCode, runStatusSchema, type StepwiseApi, StepwiseError } from "@stepwise/core";
import { type Command, InvalidArgumentError } from "commander";
import { z } from "zod";
import { escapeControl } from "./printer.js";

// What the operators' commands (`stepwise runs …`, `stepwise events …`) share: the options that
// say which server and key, checking option values before a request is sent, and turning the
// client's errors into one line that says what to do.

/** The scope a command's key needs: `read` for listing and showing, `control` for cancel and rerun. */
export type OperatorScope = "read" | "control";

/** The options every command over the API takes. */
export interface ApiFlags {
  /** The server. (Default: `STEPWISE_BASE_URL`, else `http://127.0.0.1:8288`) */
  url?: string;
  /** The API key. (Default: `STEPWISE_API_KEY`; none, which `stepwise dev` accepts) */
  key?: string;
  /** Print the server's answer as JSON instead of text. */
  json?: boolean;
}

/** Adds `--url`, `--key` and `--json` (the {@link ApiFlags}) to `command`. */
export function addApiOptions(command: Command): Command {
  return command
    .option("--url <url>", `server URL (default: STEPWISE_BASE_URL or ${DEFAULT_BASE_URL})`, parseWith(urlSchema))
    .option("--key <key>", "API key for `stepwise start` (default: STEPWISE_API_KEY, which keeps it out of `ps`; `stepwise dev` needs none)")
    .option("--json", "print the server's answer as JSON");
}

/**
 * Calls the API with the client `flags` describe. A `StepwiseError` from the client becomes an
 * error of one line, with no cause (so `formatCliError` prints no stack): its code, the HTTP
 * status, the server's message and what to do about it.
 */
export async function callApi<T>(flags: ApiFlags, scope: OperatorScope, work: (api: StepwiseApi) => Promise<T>): Promise<T> {
  // An empty variable counts as unset (`STEPWISE_BASE_URL= stepwise runs list` means the default).
  const baseUrl = flags.url ?? (process.env["STEPWISE_BASE_URL"] || DEFAULT_BASE_URL);
  const apiKey = flags.key ?? (process.env["STEPWISE_API_KEY"] || undefined);
  try {
    return await work(createApiClient({ baseUrl, apiKey }));
  } catch (error) {
    if (!StepwiseError.isInstance(error)) throw error;
    throw new Error(describeApiError(error, { scope, keySent: Boolean(apiKey) }));
  }
}

/** The line {@link callApi} prints for a failed request, e.g. `UNAUTHORIZED (HTTP 401): the key is not valid; set STEPWISE_API_KEY …`. */
export function describeApiError(error: StepwiseError, context: { scope: OperatorScope; keySent: boolean }): string {
  const status = error.details["status"];
  const hint = hintFor(error, status, context);
  // A hint after a message that ends a sentence ("…is STEPWISE_BASE_URL set?") starts one.
  const joined = hint === undefined ? error.message : /[.?!]$/.test(error.message) ? `${error.message} ${capitalize(hint)}` : `${error.message}; ${hint}`;
  const text = `${error.code}${typeof status === "number" ? ` (HTTP ${status})` : ""}: ${joined}`;
  // Messages carry ids and names that came from users: one line, no terminal control.
  return escapeControl(text);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function hintFor(error: StepwiseError, status: unknown, context: { scope: OperatorScope; keySent: boolean }): string | undefined {
  const create = `\`stepwise keys create --scope ${context.scope}\``;
  if (status === 401) return `set STEPWISE_API_KEY to a key from ${create}`;
  // Without a key, a 403 is `stepwise dev` refusing a request not addressed to localhost, which no scope fixes.
  if (status === 403 && context.keySent) return `this command needs a key with scope ${context.scope} (or a stronger one): ${create}`;
  switch (error.code) {
    case ErrorCode.TransportError:
      return status === undefined ? "pass --url to name the server" : undefined;
    case ErrorCode.RunNotFound:
      return "see `stepwise runs list` for the runs there are";
    case ErrorCode.StepNotFound:
      return "see `stepwise runs show <run id>` for the run's steps";
    default:
      return undefined;
  }
}

/**
 * A commander option parser from a zod schema: the parsed value, or an `InvalidArgumentError`
 * with the schema's first message, which commander prints as
 * `error: option '--limit <n>' argument '0' is invalid. must be …`.
 */
export function parseWith<T>(schema: z.ZodType<T>): (value: string) => T {
  return (value) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? "is not valid");
    return parsed.data;
  };
}

/** `--url`: an http(s) URL. */
const urlSchema = z.string().refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), "must be an http:// or https:// URL");

/** `--status`: a run status. */
export const statusOption = z.enum(runStatusSchema.options, { error: `must be one of ${runStatusSchema.options.join(", ")}` });

/** `--limit`: items per page, as the server allows them (1–500). */
export const limitOption = z
  .string()
  .regex(/^\d+$/, "must be a whole number from 1 to 500")
  .transform(Number)
  .pipe(z.number().int().min(1, "must be a whole number from 1 to 500").max(500, "must be a whole number from 1 to 500"));

/** `--since`/`--until`: epoch milliseconds or an ISO 8601 date, as epoch milliseconds. */
export const timeOption = z.string().transform((text, context) => {
  const value = /^\d+$/.test(text) ? Number(text) : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    context.addIssue({ code: "custom", message: "must be epoch milliseconds or an ISO 8601 date, e.g. 2030-01-01T00:00:00Z" });
    return z.NEVER;
  }
  return value;
});

/** Refuses a time range that ends before it starts (the server would answer an empty page, which reads like "nothing happened"). */
export function assertTimeRange(flags: { since?: number; until?: number }): void {
  if (flags.since !== undefined && flags.until !== undefined && flags.since > flags.until) {
    throw new InvalidArgumentError(`--since (${new Date(flags.since).toISOString()}) is after --until (${new Date(flags.until).toISOString()})`);
  }
}
