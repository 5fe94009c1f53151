import { z } from "zod";
import { serializedErrorSchema } from "../errors/serialize-error.js";

// The realtime wire format, shared by the engine (which publishes), the server (which streams
// it as SSE), the dashboard and the React hooks (which read it).

/** The topic on which the engine publishes a run's lifecycle; reserved: `publish()` may not use it. */
export const LIFECYCLE_TOPIC = "lifecycle";

/** The channel of one run's messages: its lifecycle, and what its handler publishes there. */
export function runChannel(runId: string): string {
  return `run:${runId}`;
}

/** The channel of every run of one function (by its qualified id `<app>/<function>`): their lifecycle but for step events. */
export function functionChannel(qualifiedFunctionId: string): string {
  return `function:${qualifiedFunctionId}`;
}

/** A channel or topic name: 1–256 characters, no control characters. */
const nameSchema = z
  .string()
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters");
export const channelNameSchema = nameSchema;

/** What `publish()` takes. Strict: an unknown field is an error that names it. */
export const publishInputSchema = z.strictObject({
  /** e.g. `run:${runId}` (see `runChannel`), `chat:${threadId}`. */
  channel: nameSchema,
  /** What kind of message, e.g. `"progress"` or `"token"`; `lifecycle` is the engine's. */
  topic: nameSchema.refine((topic) => topic !== LIFECYCLE_TOPIC, `"${LIFECYCLE_TOPIC}" is the engine's topic; pick another`),
  /** Any JSON value. */
  data: z.unknown(),
});
export type PublishInput = z.input<typeof publishInputSchema>;

const runRef = { runId: z.string(), functionId: z.string() };
const stepKind = z.enum(["run", "sleep", "wait", "invoke", "send"]);

/**
 * A run's lifecycle as the engine publishes it (topic `lifecycle`, on the run's channel, and
 * but for `step-started` and `step-ended` on its function's). `functionId` is the qualified id. Times are epoch milliseconds.
 * `run-created` is the engine's in-process event only: on channels, a run's own channel begins
 * at `run-started`, and its function's channel carries new runs as {@link runsCreatedSchema}.
 */
export const lifecycleEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("run-created"), ...runRef, eventId: z.string() }),
  z.object({ type: z.literal("run-started"), ...runRef, attempt: z.number().int(), memoizedSteps: z.number().int() }),
  z.object({ type: z.literal("step-started"), ...runRef, stepId: z.string(), kind: stepKind, attempt: z.number().int() }),
  z.object({
    type: z.literal("step-ended"),
    ...runRef,
    stepId: z.string(),
    kind: stepKind,
    attempt: z.number().int(),
    status: z.enum(["completed", "failed", "retrying", "waiting"]),
    durationMs: z.number(),
    error: serializedErrorSchema.optional(),
  }),
  z.object({ type: z.literal("run-suspended"), ...runRef, reasons: z.array(z.string()), wakeAt: z.number().optional() }),
  z.object({ type: z.literal("run-retrying"), ...runRef, attempt: z.number().int(), error: serializedErrorSchema, wakeAt: z.number() }),
  z.object({ type: z.literal("run-completed"), ...runRef, output: z.unknown() }),
  z.object({ type: z.literal("run-failed"), ...runRef, error: serializedErrorSchema }),
  z.object({ type: z.literal("run-cancelled"), ...runRef, reason: z.string() }),
  z.object({ type: z.literal("run-skipped"), ...runRef, eventId: z.string(), reason: z.string() }),
  z.object({ type: z.literal("run-aborted"), ...runRef, reason: z.string() }),
]);
/** A run's lifecycle event; see {@link lifecycleEventSchema}. */
export type RunLifecycleEvent = z.infer<typeof lifecycleEventSchema>;

/**
 * The runs of one function that one turn of the engine created (an Event API request's, or the
 * requests one commit stored together), as one message on the function's channel: a message per
 * run would cost the Event API a third of its throughput. At most 500 runs a message.
 */
export const runsCreatedSchema = z.object({
  type: z.literal("runs-created"),
  functionId: z.string(),
  runs: z.array(z.object({ runId: z.string(), eventId: z.string() })),
});
/** See {@link runsCreatedSchema}. */
export type RunsCreatedEvent = z.infer<typeof runsCreatedSchema>;

/**
 * What a function's channel carries on topic `lifecycle`: its runs' lifecycle events but for
 * step events (those are on each run's channel), and {@link runsCreatedSchema}.
 */
export const functionLifecycleEventSchema = z.discriminatedUnion("type", [...lifecycleEventSchema.options, runsCreatedSchema]);
/** See {@link functionLifecycleEventSchema}. */
export type FunctionLifecycleEvent = z.infer<typeof functionLifecycleEventSchema>;

/** A realtime message as the SSE stream carries it (the `data:` of each `message` event). */
export const realtimeMessageSchema = z.object({
  /** `<ms>-<n>`, increasing per channel; also the SSE `id`, so a reconnect resumes after it. */
  id: z.string(),
  channel: z.string(),
  topic: z.string(),
  data: z.unknown(),
  ts: z.number(),
});
export type RealtimeMessageInfo = z.infer<typeof realtimeMessageSchema>;
