import type { JsonValue, SerializedError, StepwiseEvent } from "@stepwise/core";
import type { StepKind } from "@stepwise/core/internal";

/** What happens in the engine, as it happens: the CLI prints these, tests and the dashboard watch them. */
export type LifecycleEvent =
  | { type: "event-received"; event: StepwiseEvent; duplicate: boolean }
  | { type: "run-created"; runId: string; functionId: string; eventId: string }
  | { type: "run-started"; runId: string; functionId: string; attempt: number; memoizedSteps: number }
  | { type: "step-started"; runId: string; functionId: string; stepId: string; kind: StepKind; attempt: number }
  | {
      type: "step-ended";
      runId: string;
      functionId: string;
      stepId: string;
      kind: StepKind;
      attempt: number;
      status: "completed" | "failed" | "retrying" | "waiting";
      durationMs: number;
      error?: SerializedError;
    }
  | { type: "run-suspended"; runId: string; functionId: string; reasons: string[]; wakeAt?: number }
  | { type: "run-retrying"; runId: string; functionId: string; attempt: number; error: SerializedError; wakeAt: number }
  | { type: "run-completed"; runId: string; functionId: string; output: JsonValue }
  | { type: "run-failed"; runId: string; functionId: string; error: SerializedError }
  | { type: "run-aborted"; runId: string; functionId: string; reason: string }
  | { type: "run-cancelled"; runId: string; functionId: string; reason: string }
  | { type: "cron-tick"; functionId: string; scheduledFor: number; runId: string | null }
  | { type: "engine-error"; error: unknown; context: string };

/** Receives {@link LifecycleEvent}s. Listeners must not throw; errors are swallowed. */
export type LifecycleListener = (event: LifecycleEvent) => void;

/** A tiny synchronous fan-out of lifecycle events. */
export class Lifecycle {
  private readonly listeners = new Set<LifecycleListener>();

  on(listener: LifecycleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: LifecycleEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A broken listener (e.g. a log printer) must never break a run.
      }
    }
  }
}
