import { z } from "zod";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import { checkJson, unstorableText } from "../helpers/json.js";

/** Largest accepted event, as its JSON encoding in bytes (512 KiB). */
export const MAX_EVENT_BYTES = 512 * 1024;
/** Most events accepted by one `send()` call. */
export const MAX_EVENTS_PER_SEND = 5000;
/** How long an event `id` deduplicates later events with the same `id` (24 h). */
export const EVENT_DEDUPE_WINDOW_MS = 24 * 60 * 60 * 1000;

/** Latest accepted event time, `ts`: the last millisecond of the year 9999 (Postgres and `Date` hold it). */
export const MAX_EVENT_TS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Text Postgres can store: no NUL, no lone surrogate (see `unstorableText`). Every text that is stored goes through it. */
export const storableText = z.string().refine((text) => unstorableText(text) === undefined, {
  error: (issue) => `must not contain ${unstorableText(issue.input as string)}`,
});

/**
 * An event as an application sends it. Strict: an unknown field is an error that names it
 * (Inngest's `user` and `v` are not fields here; put them in `data`).
 */
export const eventPayloadSchema = z.strictObject({
  /** The event's name, e.g. `"billing/invoice.paid"`. Required. */
  name: storableText.min(1, "name must be a non-empty string").max(256, "name must be at most 256 characters"),
  /** The event's payload: a JSON object. (Default: `{}`) */
  data: z.record(z.string(), z.unknown()).optional(),
  /** An id of the sender's choosing; a second event with the same id within 24 h is ignored. */
  id: storableText.min(1, "id must be a non-empty string").max(256, "id must be at most 256 characters").optional(),
  /** When the event happened, in epoch milliseconds, 0 to {@link MAX_EVENT_TS}. (Default: the time it is received) */
  ts: z
    .number()
    .int("ts must be whole epoch milliseconds")
    .nonnegative("ts must be epoch milliseconds, 0 or more")
    .max(MAX_EVENT_TS, `ts must be epoch milliseconds up to ${MAX_EVENT_TS} (the end of the year 9999)`)
    .optional(),
});
/** An event as an application sends it. */
export type EventPayload = z.infer<typeof eventPayloadSchema>;

/**
 * An event as a function receives it: stored, with its id and time.
 * `id` is the Stepwise event id (`send()` answers it).
 */
export interface StepwiseEvent<TName extends string = string, TData = Record<string, unknown>> {
  id: string;
  name: TName;
  data: TData;
  /** Epoch milliseconds. */
  ts: number;
}

/** What `send()` answers: one Stepwise event id per event sent, in order. */
export interface SendEventResult {
  ids: string[];
}

/**
 * Validates one event or a list of events, as accepted from an application or over HTTP.
 * Throws a `StepwiseError` whose message names the event index and field to fix
 * (INVALID_EVENT_PAYLOAD, EVENT_TOO_LARGE).
 */
export function parseEvents(input: unknown): EventPayload[] {
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) {
    throw invalid("no events given; send one event object or a non-empty array of them");
  }
  if (list.length > MAX_EVENTS_PER_SEND) {
    throw invalid(`${list.length} events in one send; at most ${MAX_EVENTS_PER_SEND} are accepted`);
  }
  return list.map((item, index) => {
    const where = Array.isArray(input) ? `events[${index}]` : "event";
    const parsed = eventPayloadSchema.safeParse(item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.length ? `.${issue.path.join(".")}` : "";
      const hint =
        issue?.path[0] === "name" && issue.code === "invalid_type"
          ? 'an event needs a name, e.g. { name: "user.created" }'
          : issue?.code === "unrecognized_keys"
            ? `${issue.keys.map((key) => JSON.stringify(key)).join(", ")} ${issue.keys.length === 1 ? "is not an event field" : "are not event fields"}; an event has name, data, id and ts (put anything else in data)`
            : issue?.message;
      throw invalid(`${where}${path}: ${hint}`, { index });
    }
    // The data as sent, not zod's copy: a copy made by assignment would drop a `__proto__` key
    // silently, where it must be refused. Checked without recursion, so depth cannot overflow.
    const data = (item as { data?: Record<string, unknown> }).data;
    if (data !== undefined) {
      checkJson(data, { what: `${where} ("${parsed.data.name}")`, code: ErrorCode.InvalidEventPayload, root: `${where}.data`, refuseProtoKeys: true });
    }
    const bytes = Buffer.byteLength(JSON.stringify(parsed.data));
    if (bytes > MAX_EVENT_BYTES) {
      throw new StepwiseError({
        code: ErrorCode.EventTooLarge,
        category: "user",
        message: `${where} ("${parsed.data.name}") is ${bytes} bytes; the limit is ${MAX_EVENT_BYTES} bytes (512 KiB). Store large payloads elsewhere and send a reference`,
        details: { index, bytes, limit: MAX_EVENT_BYTES },
      });
    }
    return parsed.data;
  });
}

function invalid(message: string, details: Record<string, unknown> = {}): StepwiseError {
  return new StepwiseError({ code: ErrorCode.InvalidEventPayload, category: "user", message, details });
}
