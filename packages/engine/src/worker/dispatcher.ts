import type { AnyStepwiseFunction } from "@stepwise/core";
import type { QueueItem } from "../ports/queue.js";
import type { ClaimedRun } from "../ports/run-store.js";
import type { ProcessContext } from "./process-run.js";
import { processRun } from "./process-run.js";

/** Pause before the worker loop tries the queue again after an error (ms). */
const DISPATCH_RETRY_MS = 1000;

/** How long a run of a function this process does not know goes back to the queue for (ms). */
const FOREIGN_RUN_DELAY_MS = 1000;

/** The worker loop of one process: takes items from the queue and runs passes, within limits. */
export interface Dispatcher {
  start(): void;
  /**
   * Stops taking work and waits up to `graceMs` for running passes; runs still executing then
   * are released (runnable again at once, for another worker) and left behind.
   */
  stop(graceMs: number): Promise<{ released: number }>;
  /**
   * Launches passes for due `items` at once while slots are free (eager start), and answers
   * the items it did not take, for the queue: no free slot, a function at its concurrency
   * limit or unknown here, a run whose pass is still running, or the dispatcher not running.
   */
  offer(items: QueueItem[]): QueueItem[];
  /**
   * Eager start at creation: reserves a slot for each run it can take now (same rules as
   * {@link Dispatcher.offer}) and answers their ids. The caller creates those runs already
   * claimed by this worker, then hands each to {@link Dispatcher.startClaimed}, or gives the
   * slot back with {@link Dispatcher.unreserve} when the run was not created.
   */
  reserve(runs: Array<{ runId: string; functionId: string }>): Set<string>;
  /** Starts a pass over a run created already claimed, in the slot reserved for it. */
  startClaimed(claimed: ClaimedRun): void;
  /** Gives back the slot of a reserved run that was not created (a duplicate event, a failure). */
  unreserve(runId: string): void;
  /** Passes executing now. */
  readonly activeCount: number;
}

/**
 * Creates the dispatcher. `concurrency` bounds passes in this process; a function's
 * `concurrency.limit` bounds its passes (a run holds a slot only while a pass executes, never
 * while it sleeps or waits).
 */
export function createDispatcher(context: ProcessContext, functions: ReadonlyMap<string, AnyStepwiseFunction>): Dispatcher {
  const { options, lifecycle } = context;
  const { queue, store, clock, logger } = options;
  const active = new Map<string, { pass: Promise<void>; leaseEpoch?: number }>();
  const slots = new Map<string, number>();
  const parked = new Map<string, QueueItem[]>();
  let abort = new AbortController();
  let loop: Promise<void> | undefined;
  let freeSlot: (() => void) | undefined;
  // Items taken from the queue whose function is being read from the store: they hold a slot.
  let learning = 0;
  // Between start() and stop(): only then are runs started here.
  let running = false;
  // Runs being created already claimed by this worker (eager start), by id: they hold a slot.
  const reserved = new Map<string, string>();
  // Items taken from the queue while eager starts filled the slots meanwhile: first in line.
  const overflow: QueueItem[] = [];

  const passContext: ProcessContext = {
    ...context,
    onClaimed(runId, leaseEpoch) {
      const entry = active.get(runId);
      if (entry) entry.leaseEpoch = leaseEpoch;
    },
  };

  function tryTakeSlot(item: QueueItem): boolean {
    const limit = functions.get(item.functionId)?.config.concurrency?.limit;
    if (limit === undefined) return true;
    const used = slots.get(item.functionId) ?? 0;
    if (used >= limit) {
      const list = parked.get(item.functionId) ?? [];
      if (!list.some((parkedItem) => parkedItem.runId === item.runId)) list.push(item);
      parked.set(item.functionId, list);
      return false;
    }
    slots.set(item.functionId, used + 1);
    return true;
  }

  function releaseSlot(functionId: string): void {
    const limit = functions.get(functionId)?.config.concurrency?.limit;
    if (limit === undefined) return;
    slots.set(functionId, (slots.get(functionId) ?? 1) - 1);
    const next = parked.get(functionId)?.shift();
    if (next && !abort.signal.aborted && tryTakeSlot(next)) launch(next);
  }

  /**
   * Whether a run can start here now without waiting (eager start): a free slot, no pass or
   * reservation of it yet, its function known here and below its concurrency limit.
   */
  function startsHere(runId: string, functionId: string): boolean {
    const limit = functions.get(functionId)?.config.concurrency?.limit;
    return (
      busy() < options.concurrency &&
      !active.has(runId) &&
      !reserved.has(runId) &&
      context.resolveFunction(functionId) !== undefined &&
      (limit === undefined || (slots.get(functionId) ?? 0) < limit)
    );
  }

  /** Slots in use: passes, items whose function is being looked up, and reservations. */
  function busy(): number {
    return active.size + learning + reserved.size;
  }

  function launch(item: QueueItem, claimed?: ClaimedRun): void {
    // Two items for one run (a re-enqueue while its pass runs) need one pass: the claim of the
    // second would fail anyway.
    if (active.has(item.runId)) {
      releaseSlot(item.functionId);
      return;
    }
    // In the map before the pass starts: a run created claimed reports its epoch at once.
    const entry: { pass: Promise<void>; leaseEpoch?: number } = { pass: Promise.resolve(), leaseEpoch: claimed?.run.leaseEpoch };
    active.set(item.runId, entry);
    entry.pass = processRun(passContext, item.runId, claimed)
      .catch((error: unknown) => {
        lifecycle.emit({ type: "engine-error", error, context: `processing run ${item.runId}` });
        logger.error({ runId: item.runId, error }, "run pass failed; the reconciler will retry it");
      })
      .finally(() => {
        active.delete(item.runId);
        releaseSlot(item.functionId);
        freeSlot?.();
      });
  }

  async function dispatch(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      while (overflow.length > 0 && busy() < options.concurrency) {
        const item = overflow.shift() as QueueItem;
        if (tryTakeSlot(item)) launch(item);
      }
      if (busy() >= options.concurrency) {
        await new Promise<void>((resolve) => {
          freeSlot = resolve;
        });
        freeSlot = undefined;
        // Passes whose ends were committed together free their slots in the same turn: let them
        // all go before asking the queue, so that the next burst (and its claims) is one batch.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      let items: QueueItem[];
      try {
        // As many as there are free slots, in one round trip: their claims reach the store together.
        items = await queue.dequeueMany(signal, options.concurrency - busy());
        if (items.length === 0) return;
      } catch (error) {
        // The queue is unreachable for now: keep the loop alive and try again; what was lost
        // meanwhile comes back through the reconciler.
        lifecycle.emit({ type: "engine-error", error, context: "taking the next runs from the queue" });
        await new Promise((resolve) => setTimeout(resolve, DISPATCH_RETRY_MS));
        continue;
      }
      const foreign: QueueItem[] = [];
      for (const item of items) {
        if (item.functionId === "") {
          // Wake-ups of parents and waiters carry no function id: learn it from the store, and
          // launch them after the rest, so that one slow read does not hold the burst back.
          void learnFunction(item).catch((error: unknown) => {
            lifecycle.emit({ type: "engine-error", error, context: `reading run ${item.runId} to wake it` });
            return context.enqueue([{ ...item, availableAt: clock.now() + DISPATCH_RETRY_MS }]);
          });
        } else if (!context.resolveFunction(item.functionId)) {
          foreign.push(item);
        } else if (busy() >= options.concurrency) {
          overflow.push(item);
        } else if (tryTakeSlot(item)) {
          launch(item);
        }
      }
      if (foreign.length > 0) {
        // Runs of functions this process does not have (another app shares the queue): leave
        // them, briefly out of this worker's way, for a worker that has them.
        await context.enqueue(foreign.map((item) => ({ ...item, availableAt: clock.now() + FOREIGN_RUN_DELAY_MS })));
      }
    }
  }

  async function learnFunction(item: QueueItem): Promise<void> {
    learning++;
    let run: Awaited<ReturnType<typeof store.getRun>>;
    try {
      run = await store.getRun(item.runId);
    } finally {
      learning--;
      freeSlot?.();
    }
    if (!run || abort.signal.aborted) return;
    const known = { ...item, functionId: run.functionId };
    if (!context.resolveFunction(known.functionId)) {
      await context.enqueue([{ ...known, availableAt: clock.now() + FOREIGN_RUN_DELAY_MS }]);
    } else if (tryTakeSlot(known)) {
      launch(known);
    }
  }

  return {
    get activeCount() {
      return active.size;
    },

    reserve(runs) {
      const taken = new Set<string>();
      if (!running) return taken;
      for (const run of runs) {
        if (!startsHere(run.runId, run.functionId) || !tryTakeSlot({ ...run, availableAt: 0 })) continue;
        reserved.set(run.runId, run.functionId);
        taken.add(run.runId);
      }
      return taken;
    },

    startClaimed(claimed) {
      const { id: runId, leaseEpoch } = claimed.run;
      const functionId = reserved.get(runId);
      if (functionId === undefined) return;
      reserved.delete(runId);
      if (running) {
        launch({ runId, functionId, availableAt: 0 }, claimed);
        return;
      }
      // Stopped while the run was being created: hand it on to the other workers.
      releaseSlot(functionId);
      void store
        .releaseRun({ runId, leaseEpoch, wakeAt: clock.now() })
        .then((released) => (released ? context.enqueue([{ runId, functionId, availableAt: clock.now() }]) : undefined))
        .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `releasing run ${runId} created during shutdown` }));
    },

    unreserve(runId) {
      const functionId = reserved.get(runId);
      if (functionId === undefined) return;
      reserved.delete(runId);
      releaseSlot(functionId);
      freeSlot?.();
    },

    offer(items) {
      if (!running) return items;
      const left: QueueItem[] = [];
      for (const item of items) {
        if (startsHere(item.runId, item.functionId) && tryTakeSlot(item)) launch(item);
        else left.push(item);
      }
      return left;
    },

    start() {
      running = true;
      abort = new AbortController();
      loop = dispatch(abort.signal).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "dispatching runs" }));
    },

    async stop(graceMs) {
      running = false;
      abort.abort();
      freeSlot?.();
      await loop;
      parked.clear();
      // Taken from the queue but never started: back to the queue, for the other workers.
      if (overflow.length > 0) await context.enqueue(overflow.splice(0)).catch(() => undefined);
      const passes = [...active.values()].map((entry) => entry.pass);
      let timer: NodeJS.Timeout | undefined;
      // setTimeout treats delays past 2^31-1 ms (and Infinity) as 1 ms: no limit means no timer.
      const grace = Number.isFinite(graceMs) && graceMs < 2 ** 31 ? new Promise((resolve) => (timer = setTimeout(resolve, graceMs))) : new Promise(() => {});
      await Promise.race([Promise.allSettled(passes), grace]);
      clearTimeout(timer);
      let released = 0;
      for (const [runId, entry] of active) {
        if (entry.leaseEpoch === undefined) continue;
        if (await store.releaseRun({ runId, leaseEpoch: entry.leaseEpoch, wakeAt: clock.now() }).catch(() => false)) released++;
      }
      if (released > 0) logger.warn({ released, graceMs }, "released runs still executing after the grace period");
      return { released };
    },
  };
}
