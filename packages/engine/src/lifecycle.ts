import type { RunLifecycleEvent, StepwiseEvent } from "@stepwise/core";

/**
 * What happens in the engine, as it happens: the CLI prints these, tests and the dashboard watch
 * them. A run's own events have the wire schema `lifecycleEventSchema` of `@stepwise/core`, and
 * the engine publishes them on realtime channels; the rest stay in this process.
 */
export type LifecycleEvent =
  | RunLifecycleEvent
  | { type: "event-received"; event: StepwiseEvent; duplicate: boolean }
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
