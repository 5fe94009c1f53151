import { z } from "zod";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";

/** Largest accepted event, as its JSON encoding in bytes (512 KiB). */
export const MAX_EVENT_BYTES = 512 * 1024;
/** Most events accepted by one `send()` call. */
export const MAX_EVENTS_PER_SEND = 5000;
/** How long an event `id` deduplicates later events with the same `id` (24 h). */
export const EVENT_DEDUPE_WINDOW_MS = 24 * 60 * 60 * 1000;

/** An event as an application sends it. */
export const eventPayloadSchema = z.object({
  /** The event's name, e.g. `"billing/invoice.paid"`. Required. */
  name: z.string().min(1, "name must be a non-empty string").max(256),
  /** The event's payload: a JSON object. (Default: `{}`) */
  data: z.record(z.string(), z.unknown()).optional(),
  /** An id of the sender's choosing; a second event with the same id within 24 h is ignored. */
  id: z.string().min(1).max(256).optional(),
  /** When the event happened, in epoch milliseconds. (Default: the time it is received) */
  ts: z.number().int().nonnegative().optional(),
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
      const hint = issue?.path[0] === "name" && issue.code === "invalid_type" ? 'an event needs a name, e.g. { name: "user.created" }' : issue?.message;
      throw invalid(`${where}${path}: ${hint}`, { index });
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
