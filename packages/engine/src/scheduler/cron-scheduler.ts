import { type AnyStepwiseFunction, CRON_EVENT_NAME, isCronTrigger, type StepwiseEvent } from "@stepwise/core";
import { Cron } from "croner";
import type { Lifecycle } from "../lifecycle.js";
import type { Clock } from "../ports/clock.js";
import type { NewRun, RunStore } from "../ports/run-store.js";
import { newEventId, newRunId } from "../router.js";
import type { SingletonCancels } from "../run-actions.js";

/** Options of {@link startCronScheduler}. */
export interface CronSchedulerOptions {
  store: RunStore;
  clock: Clock;
  lifecycle: Lifecycle;
  functions: AnyStepwiseFunction[];
  /** Called with each run a tick created (not one its `singleton` skipped). */
  onRun(run: { id: string; functionId: string }): Promise<void>;
  /** The flow-control fields of a new run of the function for `event` (see `Router.runFields`). */
  runFields(functionId: string, event: StepwiseEvent): Omit<NewRun, "id" | "functionId" | "eventId">;
  /** Announces runs the store cancelled for a tick's `singleton: cancel` run (see `RunActions.announceSingletons`). */
  announceSingletons(cancelled: SingletonCancels): Promise<unknown>;
  /** Counts each tick's work as in flight (see `engine.idle()`). (Default: not counted) */
  track?<T>(work: Promise<T>): Promise<T>;
}

/**
 * Arms one timer per cron trigger on the engine's clock. Each tick is recorded with
 * `recordCronTick`, whose unique `(function_id, scheduled_for)` makes any number of
 * schedulers start exactly one run per tick. Ticks missed while no scheduler ran are
 * not replayed. Returns a function that stops every timer.
 */
export function startCronScheduler(options: CronSchedulerOptions): () => void {
  const { store, clock, lifecycle } = options;
  const cancels = new Set<() => void>();
  let stopped = false;

  for (const fn of options.functions) {
    for (const trigger of fn.config.triggers) {
      if (!isCronTrigger(trigger)) continue;
      const cron = new Cron(trigger.cron, { timezone: trigger.timezone ?? "UTC", paused: true });
      const arm = (after: number) => {
        const next = cron.nextRun(new Date(after));
        if (!next || stopped) return;
        const scheduledFor = next.getTime();
        const tick = async () => {
          try {
            const event = { id: newEventId(), name: CRON_EVENT_NAME, data: { cron: trigger.cron }, ts: scheduledFor };
            const run = await store.recordCronTick({
              functionId: fn.qualifiedId,
              scheduledFor,
              ingest: {
                events: [{ ...event, key: `cron-${fn.qualifiedId}-${scheduledFor}` }],
                // With its flow control, as the ingest of an event gives it: a singleton applies to ticks too.
                runs: [{ id: newRunId(), functionId: fn.qualifiedId, eventId: event.id, ...options.runFields(fn.qualifiedId, event) }],
                now: clock.now(),
              },
            });
            lifecycle.emit({ type: "cron-tick", functionId: fn.qualifiedId, scheduledFor, runId: run?.id ?? null });
            if (!run) return;
            if (run.cancelled) await options.announceSingletons(run.cancelled);
            if (run.skipped) lifecycle.emit({ type: "run-skipped", runId: run.id, functionId: run.functionId, eventId: event.id, reason: run.skipped.message });
            else await options.onRun(run);
          } catch (error) {
            lifecycle.emit({ type: "engine-error", error, context: `cron tick of ${fn.qualifiedId} at ${new Date(scheduledFor).toISOString()}` });
          }
        };
        const cancel = clock.setTimer(() => {
          cancels.delete(cancel);
          if (stopped) return;
          // Arm the next tick first, so a slow store never delays the schedule.
          arm(scheduledFor);
          void (options.track ? options.track(tick()) : tick());
        }, scheduledFor - clock.now());
        cancels.add(cancel);
      };
      arm(clock.now());
    }
  }

  return () => {
    stopped = true;
    for (const cancel of cancels) cancel();
    cancels.clear();
  };
}
