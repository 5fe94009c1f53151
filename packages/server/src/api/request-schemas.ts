import { channelNameSchema, eventPayloadSchema, MAX_EVENTS_PER_SEND, runStatusSchema, storableText } from "@stepwise/core";
import { z } from "zod";
import { idParam, MAX_PAGE, timeQuery } from "../http/params.js";

// What the routes take, as zod schemas: the routes validate with them and the OpenAPI document
// (api/openapi.ts) is generated from them, so the two cannot drift apart. Queries and bodies
// are strict: a misspelled filter or option is an error that names it, not silently ignored.

/** A path's `:id`. */
export const idPathSchema = z.object({ id: idParam });

/** `POST /e/:eventKey`: one event, or a batch of up to 5,000. */
export const sendBodySchema = z.union([eventPayloadSchema, z.array(eventPayloadSchema).min(1).max(MAX_EVENTS_PER_SEND)]);

/** `GET /v1/runs` query: strict, so a misspelled filter is an error, not an unfiltered list. */
export const listRunsQuery = z.strictObject({
  function: idParam.optional().describe("a function's id, or its qualified id <app>/<function>"),
  status: runStatusSchema.optional(),
  event: idParam.optional().describe("only runs this event started"),
  since: timeQuery,
  until: timeQuery,
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
  cursor: z.string().max(600).optional(),
});

/** `POST /v1/functions/:id/invoke`: the run's data, and how long to wait for its result (capped by `maxWaitMs`). */
export const invokeBodySchema = z.strictObject({
  data: z.record(z.string(), z.unknown()).optional(),
  timeoutMs: z.number().int().positive().optional(),
});

/** `GET /v1/events` query: strict, so a misspelled filter is an error, not an unfiltered list. */
export const listEventsQuery = z.strictObject({
  name: idParam.optional(),
  since: timeQuery,
  until: timeQuery,
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
  cursor: z.string().max(600).optional(),
});

/** `GET /v1/runs/:id/wait` query. */
export const waitQuery = z.strictObject({
  timeout: z.coerce.number().int().positive().optional().describe("milliseconds; at most the server's maxWaitMs, which is also the default"),
});

/** Body of `POST /v1/runs/:id/cancel` (optional). */
export const cancelBodySchema = z.strictObject({
  /** Why, recorded as the run's error message. (Default: "cancelled by an operator") */
  reason: storableText.min(1).max(1000).optional(),
});

/** A time in a JSON body: epoch milliseconds, or an ISO 8601 date as in the queries. */
const bodyTime = z.union([z.number().int().min(0), timeQuery]);

/** Body of `POST /v1/runs/cancel`: which runs of a function to cancel. */
export const cancelManyBodySchema = z.strictObject({
  function: idParam.describe("a function's id, or its qualified id <app>/<function>"),
  since: bodyTime.optional().describe("only runs created at or after this time"),
  until: bodyTime.optional().describe("only runs created before this time"),
  if: z.string().min(1).max(4096).optional().describe("CEL over `event` (the run's trigger): only runs whose event it holds for"),
  reason: storableText.min(1).max(1000).optional(),
});

/** Body of `POST /v1/runs/:id/rerun` (optional). */
export const rerunBodySchema = z.strictObject({
  /** A step key or id of the original run: reuse the results recorded before it, execute from it on. */
  fromStep: idParam.optional(),
});

/** `GET /v1/realtime` query. */
export const realtimeQuery = z.strictObject({
  channel: channelNameSchema.describe("e.g. run:<run id>, function:<app>/<function>, or a channel your handlers publish on"),
  topics: z
    .string()
    .max(4096)
    .transform((text) => text.split(",").filter((topic) => topic !== ""))
    .pipe(z.array(channelNameSchema).min(1).max(20))
    .optional()
    .describe("comma-separated topics to follow (default: all), e.g. lifecycle,progress"),
  token: z.string().max(8192).optional().describe("a token from POST /v1/realtime/token (browsers); else send a read key"),
  lastEventId: z
    .string()
    .max(64)
    .optional()
    .describe("resume after this message id (EventSource sends it as the Last-Event-ID header); 0-0 replays what the channel holds"),
});

/** `POST /v1/realtime/token` body. */
export const realtimeTokenBodySchema = z.strictObject({
  channels: z.array(channelNameSchema).min(1).max(20).describe("the channels the token may follow"),
  topics: z.array(channelNameSchema).min(1).max(20).optional().describe("the topics it may follow (default: all)"),
  ttlSeconds: z.number().int().min(1).max(86_400).optional().describe("how long it is valid (default: 900)"),
});
