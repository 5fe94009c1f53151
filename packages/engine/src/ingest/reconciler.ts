import type { RunToQueue } from "../flow/flow-keys.js";
import type { Lifecycle } from "../lifecycle.js";
import type { ResolvedEngineOptions } from "../options.js";
import type { StoredEvent } from "../ports/run-store.js";

/** Age after which an event not yet matched against open waits is matched by the reconciler (5 s). */
export const UNMATCHED_EVENT_GRACE_MS = 5000;

/**
 * How long a run may have been due before the reconciler queues it again (5 s): a run due
 * for less is on its way through the queue, or was just taken from it and is being claimed.
 * Queueing those again handed out runs that had just ended (4% of the claims of a 10,000-run
 * drain by two workers, each a wasted claim and read) and read the whole backlog every second.
 */
export const DUE_RUN_GRACE_MS = 5000;

/** Options of {@link createReconciler}. */
export interface ReconcilerOptions {
  options: ResolvedEngineOptions;
  lifecycle: Lifecycle;
  /** Whether this process can execute runs of the function. */
  runs(functionId: string): boolean;
  matchWaits(events: StoredEvent[]): Promise<void>;
  /** Cancels runs past their `timeouts` deadline. */
  sweepTimeouts(): Promise<void>;
  enqueue(items: RunToQueue[]): Promise<void>;
  /** Counts the pass as work in flight (see `engine.idle()`). */
  track<T>(work: Promise<T>): Promise<T>;
}

/** The reconciler: the queue and the wait matching are derived state, repaired from the store. */
export interface Reconciler {
  /**
   * One pass now: match events left unmatched, and with workers on, recover expired leases and
   * re-enqueue every run due, or due before the next pass (at start, and when asked: whatever
   * is due may have lost its queue item, with the process that held an in-memory queue say).
   */
  reconcile(): Promise<void>;
  /**
   * Runs a pass every `reconcileIntervalMs` on the engine's clock, re-enqueueing only runs due
   * for more than {@link DUE_RUN_GRACE_MS} (or due before the next pass); answers the stop function.
   */
  start(): () => void;
}

/**
 * Creates the reconciler. Whatever a crash or an outage left between the store and the queue
 * (runs stored but never queued, leases of dead workers, events never matched against waits)
 * is found here from the store, so that nothing accepted is lost while Redis is derived.
 */
export function createReconciler(dependencies: ReconcilerOptions): Reconciler {
  const { options, lifecycle } = dependencies;
  const { store, clock } = options;

  async function reconcile(graceMs: number): Promise<void> {
    const now = clock.now();
    // Events a crash left between ingest and wait matching: match them now. The grace keeps us
    // off events whose ingest is still matching them in this or another process.
    await dependencies.matchWaits(await store.listUnmatchedEvents({ before: now - UNMATCHED_EVENT_GRACE_MS, limit: 1000 }));
    await dependencies.sweepTimeouts();
    // A process without workers (a server taking events) leaves the queue to the processes that
    // run them: re-enqueueing a backlog it cannot drain, every pass, cost its Event API a tenth
    // of its throughput and repaired nothing their reconcilers do not.
    if (!options.workers) return;
    // Only runs of functions this process can execute: another deployment's workers pick up the rest.
    const known = (run: { functionId: string }) => dependencies.runs(run.functionId);
    const recovered = (await store.recoverLeases({ now })).filter(known);
    // Due a while (their queue item was lost), or due before the next pass (on time if it was).
    const due = (await store.listDueRuns({ until: now + options.reconcileIntervalMs, limit: 1000 })).filter(
      (run) => known(run) && (run.wakeAt <= now - graceMs || run.wakeAt > now),
    );
    const items: RunToQueue[] = [
      ...recovered.map((run) => ({ runId: run.id, functionId: run.functionId, availableAt: now, flow: run.flow ?? null })),
      ...due.map((run) => ({ runId: run.id, functionId: run.functionId, availableAt: run.wakeAt, flow: run.flow ?? null, fresh: run.fresh === true })),
    ];
    if (items.length > 0) await dependencies.enqueue(items);
  }

  return {
    reconcile: () => dependencies.track(reconcile(0)),
    start() {
      let cancel: (() => void) | undefined;
      let stopped = false;
      const loop = () => {
        cancel = clock.setTimer(async () => {
          try {
            await dependencies.track(reconcile(DUE_RUN_GRACE_MS));
          } catch (error) {
            lifecycle.emit({ type: "engine-error", error, context: "reconciling the queue with the store" });
          }
          if (!stopped) loop();
        }, options.reconcileIntervalMs);
      };
      loop();
      return () => {
        stopped = true;
        cancel?.();
      };
    },
  };
}
