import type { AnyStepwiseFunction } from "@stepwise/core";
import type { Lifecycle } from "../lifecycle.js";
import type { Clock } from "../ports/clock.js";
import type { RunStore } from "../ports/run-store.js";

/** Most timed-out runs one sweep cancels (the next sweep takes the rest). */
const SWEEP_LIMIT = 500;

/** What {@link createTimeoutWatch} needs. */
export interface TimeoutWatchOptions {
  store: RunStore;
  clock: Clock;
  lifecycle: Lifecycle;
  functionOf(functionId: string): AnyStepwiseFunction | undefined;
  /** Cancels a run with a reason (the engine's cancel: aborts its pass, closes its waits). */
  cancel(runId: string, reason: string): Promise<unknown>;
  /** Counts work as in flight (see `engine.idle()`). */
  track<T>(work: Promise<T>): Promise<T>;
}

/** Cancels runs past their `timeouts` deadline. */
export interface TimeoutWatch {
  /** Watches a deadline this process learned (a run it created or claimed): a timer fires the sweep then. */
  watch(at: number | undefined): void;
  /** Cancels every run whose deadline has passed (the reconciler calls it each pass, for deadlines other processes set). */
  sweep(): Promise<void>;
  stop(): void;
}

/**
 * Creates the watch over `timeouts` deadlines. The deadline lives on the run (set when it is
 * created, and again at its first claim), and a claim never takes a run past it; this cancels
 * such runs: at the time itself for deadlines this process set (one clock timer, for the
 * earliest), and within a reconciler pass for the rest.
 */
export function createTimeoutWatch(options: TimeoutWatchOptions): TimeoutWatch {
  const { store, clock } = options;
  const deadlines: number[] = [];
  let armedAt = Number.POSITIVE_INFINITY;
  let cancelTimer: (() => void) | undefined;
  let stopped = false;

  const reason = (functionId: string, started: boolean) => {
    const timeouts = options.functionOf(functionId)?.config.timeouts;
    if (started) return `timeouts.finish: not finished within ${timeouts?.finishMs ?? "?"} ms of its start`;
    return `timeouts.start: not started within ${timeouts?.startMs ?? "?"} ms of its event`;
  };

  async function sweep(): Promise<void> {
    const due = await store.listTimedOut({ now: clock.now(), limit: SWEEP_LIMIT });
    for (const run of due) {
      await options
        .cancel(run.id, reason(run.functionId, run.started))
        .catch((error: unknown) => options.lifecycle.emit({ type: "engine-error", error, context: `cancelling run ${run.id} past its timeout` }));
    }
  }

  function arm(): void {
    const next = deadlines[0];
    if (stopped || next === undefined || next >= armedAt) return;
    cancelTimer?.();
    armedAt = next;
    cancelTimer = clock.setTimer(
      () => {
        armedAt = Number.POSITIVE_INFINITY;
        cancelTimer = undefined;
        const now = clock.now();
        while (deadlines.length > 0 && (deadlines[0] as number) <= now) deadlines.shift();
        void options.track(
          sweep().catch((error: unknown) => options.lifecycle.emit({ type: "engine-error", error, context: "cancelling runs past their timeouts" })),
        );
        arm();
      },
      Math.max(0, next - clock.now()),
    );
  }

  return {
    watch(at) {
      if (at === undefined || stopped) return;
      // Sorted insert: deadlines are few (runs of functions with timeouts this process handled).
      let index = deadlines.length;
      while (index > 0 && (deadlines[index - 1] as number) > at) index--;
      if (deadlines[index - 1] === at) return;
      deadlines.splice(index, 0, at);
      arm();
    },
    sweep,
    stop() {
      stopped = true;
      cancelTimer?.();
      cancelTimer = undefined;
    },
  };
}
