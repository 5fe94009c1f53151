import { z } from "zod";
import { runInfoSchema } from "../client/transport.js";
import { serializedErrorSchema } from "../errors/serialize-error.js";

// The REST API's answers, as one set of zod schemas: the server documents them (OpenAPI at
// /v1/openapi.json), the client parses with them, and the dashboard and hooks type with them.

/** Every error answer: `{ error: { code, message } }`, with the request id on a 5xx. */
export const errorBodySchema = z.object({
  error: z.object({
    /** One of `ErrorCode`, e.g. `RUN_NOT_FOUND`. */
    code: z.string(),
    message: z.string(),
    /** On a 5xx: the id the server logged the failure under. */
    requestId: z.string().optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** A step of a run as recorded. Times are epoch milliseconds. */
export const stepInfoSchema = z.object({
  /** Unique within the run (the id, made unique when a step id repeats). */
  key: z.string(),
  /** The id given to the step tool, e.g. `step.run("charge", …)`. */
  id: z.string(),
  kind: z.enum(["run", "sleep", "wait", "invoke", "send"]),
  /** `completed`/`failed` are final; `waiting` is an open sleep, wait or invoke; `retrying` runs again. */
  status: z.enum(["completed", "failed", "waiting", "retrying"]),
  /** Zero-based attempt of the last execution. */
  attempt: z.number().int(),
  output: z.unknown().optional(),
  error: serializedErrorSchema.optional(),
  /** When the step began: its body's first attempt, or when its sleep, wait or invoke was recorded. */
  startedAt: z.number().optional(),
  /** When its result was recorded; absent while it is open. */
  endedAt: z.number().optional(),
});
export type StepInfo = z.infer<typeof stepInfoSchema>;

/** A stored event as the API shows it. */
export const eventInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  data: z.record(z.string(), z.unknown()),
  /** When it happened (the sender's `ts`, else when it was received), epoch ms. */
  ts: z.number(),
  /** When the server stored it, epoch ms (in listings). */
  receivedAt: z.number().optional(),
});
export type EventInfo = z.infer<typeof eventInfoSchema>;

/** A function as the API shows it: its triggers and configuration. */
export const functionInfoSchema = z.object({
  /** The id given to `createFunction`. */
  id: z.string(),
  appId: z.string(),
  /** `<app id>/<function id>`, unique across apps. */
  qualifiedId: z.string(),
  name: z.string(),
  /** `{ event, if? }` or `{ cron }` triggers. */
  triggers: z.array(z.record(z.string(), z.unknown())),
  retries: z.number().int(),
  /** The function's flow controls as resolved (`concurrency`, `idempotency`, ...; durations in ms); absent when it has none. */
  flow: z.record(z.string(), z.unknown()).optional(),
});
export type FunctionInfo = z.infer<typeof functionInfoSchema>;

/** `GET /v1/runs`: a page, newest first; `nextCursor` continues it, `null` at the end. */
export const runPageSchema = z.object({ runs: z.array(runInfoSchema), nextCursor: z.string().nullable() });
/** `GET /v1/events`: a page, newest received first; `nextCursor` continues it, `null` at the end. */
export const eventPageSchema = z.object({ events: z.array(eventInfoSchema), nextCursor: z.string().nullable() });
/** `GET /v1/runs/:id`. */
export const runDetailSchema = z.object({ run: runInfoSchema, steps: z.array(stepInfoSchema) });
/** `GET /v1/events/:id`. */
export const eventDetailSchema = z.object({ event: eventInfoSchema, runs: z.array(runInfoSchema) });
/** `POST /v1/runs/:id/cancel`. */
/** `POST /v1/runs/cancel`: how many runs were cancelled (with the runs they invoked). */
export const cancelManyResultSchema = z.object({ cancelled: z.number().int().min(0) });

export const cancelResultSchema = z.object({
  run: runInfoSchema,
  /** The runs cancelled now: the run and the runs it invoked that were still going; empty when it was cancelled already. */
  cancelled: z.array(z.string()),
});
/** `POST /e/:eventKey`: the ids of the events, once stored. */
export const sendResultSchema = z.object({ ids: z.array(z.string()) });
