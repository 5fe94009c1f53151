import { z } from "zod";
import { serializedErrorSchema } from "../errors/serialize-error.js";
import type { EventPayload, SendEventResult } from "../events/event.js";

/** Statuses of a run. Terminal: `completed`, `failed`, `cancelled`. */
export const runStatusSchema = z.enum(["queued", "running", "sleeping", "waiting", "completed", "failed", "cancelled", "skipped"]);
/** A run status; see {@link runStatusSchema}. */
export type RunStatus = z.infer<typeof runStatusSchema>;

/** A run as the API shows it. */
export const runInfoSchema = z.object({
  id: z.string(),
  /** The function's id, as given to `createFunction`. */
  functionId: z.string(),
  /** The id of the function's app (`new Stepwise({ id })`). Absent for runs recorded before app ids. */
  appId: z.string().optional(),
  /** The event that started the run; of a batch (`batchEvents`), its first. */
  eventId: z.string(),
  /** A batch's events, in arrival order (`eventId` the first). Absent for a run of one event. */
  eventIds: z.array(z.string()).optional(),
  status: runStatusSchema,
  attempt: z.number().int(),
  output: z.unknown().optional(),
  error: serializedErrorSchema.optional(),
  /** The run this one repeats: a rerun, or a replay of its event. */
  rerunOf: z.string().optional(),
  createdAt: z.number(),
  endedAt: z.number().optional(),
});
/** A run as the API shows it; see {@link runInfoSchema}. */
export type RunInfo = z.infer<typeof runInfoSchema>;

/** Whether a status is final. */
export function isTerminalStatus(status: RunStatus): boolean {
  return status === "completed" || status === "failed" || status === "cancelled" || status === "skipped";
}

/** Options of waiting for a run. */
export interface WaitOptions {
  /** Give up after this many milliseconds with WAIT_TIMEOUT; any length works. (Default: wait indefinitely) */
  timeoutMs?: number;
  /**
   * Stop waiting when it aborts, rejecting with WAIT_ABORTED (pass an HTTP request's signal, so
   * that a client that went away leaves nothing reading the store for it). (Default: none)
   */
  signal?: AbortSignal;
}

/**
 * How a `Stepwise` client reaches an engine: in-process (the engine attaches itself) or
 * over HTTP to `stepwise dev` / `stepwise start`.
 */
export interface StepwiseTransport {
  send(events: EventPayload[]): Promise<SendEventResult>;
  /** Starts a run of `functionId` and resolves with the run once it has ended. */
  invoke(functionId: string, data: Record<string, unknown>, options: WaitOptions): Promise<RunInfo>;
  /** The runs an event started. */
  runsForEvent(eventId: string): Promise<RunInfo[]>;
  /** Resolves with the run once it has ended. */
  waitForRun(runId: string, options: WaitOptions): Promise<RunInfo>;
}
