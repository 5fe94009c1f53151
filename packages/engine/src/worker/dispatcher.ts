import type { AnyStepwiseFunction } from "@stepwise/core";
import type { QueueItem } from "../ports/queue.js";
import type { ClaimedRun } from "../ports/run-store.js";
import { FunctionSlots } from "./function-slots.js";
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
   * Stops taking work, gives the runs it held without running them back to the queue, and waits
   * up to `graceMs` for running passes; passes still running then are aborted (their step
   * bodies' `signal` fires) and their runs released (runnable again at once, for another worker).
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
  /**
   * Aborts this process's pass over a run, if one executes (the run was cancelled): its step
   * bodies' `signal` fires with `reason` and nothing more of the pass is recorded. Answers
   * whether a pass was aborted.
   */
  abortRun(runId: string, reason: Error): boolean;
  /** Passes executing now. */
  readonly activeCount: number;
  /**
   * Work this process holds: passes, reserved slots, and runs taken from the queue that wait
   * here for a slot. Zero means nothing here will start or end a run without new input.
   */
  readonly pendingCount: number;
  /** Runs taken from the queue that wait here for a slot (at most {@link Dispatcher.maxHeld}). */
  readonly heldCount: number;
  /** Most runs held here that cannot run yet: the worker's `concurrency`. */
  readonly maxHeld: number;
}

/** A pass in progress, with what stopping or losing the run needs. */
interface ActivePass {
  pass: Promise<void>;
  /** Set once the pass holds the lease (at once for a run created claimed). */
  leaseEpoch?: number;
  /** Aborts the pass: its handler's and step bodies' `signal`. */
  abort: AbortController;
}

/**
 * Creates the dispatcher. `concurrency` bounds passes in this process; a function's
 * `concurrency.limit` bounds its passes (a run holds a slot only while a pass executes, never
 * while it sleeps or waits).
 */
export function createDispatcher(context: ProcessContext, functions: ReadonlyMap<string, AnyStepwiseFunction>): Dispatcher {
  const { options, lifecycle } = context;
  const { queue, store, clock, logger } = options;
  const passes = new Map<string, ActivePass>();
  // Runs being created already claimed by this worker (eager start), by id: they hold a slot.
  const reserved = new Map<string, string>();
  // A worker holds at most as many runs it cannot run yet as it can run at once.
  const slots = new FunctionSlots((functionId) => functions.get(functionId)?.config.concurrency?.limit, options.concurrency);
  // Items taken from the queue while eager starts filled the slots meanwhile: first in line.
  // Never more than one burst, itself at most `concurrency` items.
  const overflow: QueueItem[] = [];
  let abort = new AbortController();
  let loop: Promise<void> | undefined;
  let freeSlot: (() => void) | undefined;
  // Between start() and stop(): only then are runs started here.
  let running = false;

  const passContext: ProcessContext = {
    ...context,
    onClaimed(runId, leaseEpoch) {
      const entry = passes.get(runId);
      if (entry) entry.leaseEpoch = leaseEpoch;
    },
  };

  /** Slots in use: passes and reservations. */
  const busy = () => passes.size + reserved.size;

  /**
   * Whether a run can start here now without waiting (eager start): a free slot, no pass or
   * reservation of it yet, its function known here and below its concurrency limit.
   */
  function startsHere(runId: string, functionId: string): boolean {
    return (
      busy() < options.concurrency &&
      !passes.has(runId) &&
      !reserved.has(runId) &&
      context.resolveFunction(functionId) !== undefined &&
      slots.hasRoom(functionId)
    );
  }

  /** Starts a pass in a slot already taken for it. */
  function launch(item: QueueItem, claimed?: ClaimedRun): void {
    // Two items for one run (a re-enqueue while its pass runs) need one pass: the claim of the
    // second would fail anyway.
    if (passes.has(item.runId)) {
      passEnded(item.functionId);
      return;
    }
    // In the map before the pass starts: a run created claimed reports its epoch at once.
    const entry: ActivePass = { pass: Promise.resolve(), leaseEpoch: claimed?.run.leaseEpoch, abort: new AbortController() };
    passes.set(item.runId, entry);
    const started = performance.now();
    entry.pass = processRun(passContext, { runId: item.runId, claimed, abort: entry.abort })
      .catch((error: unknown) => {
        lifecycle.emit({ type: "engine-error", error, context: `processing run ${item.runId}` });
        logger.error({ runId: item.runId, error }, "run pass failed; the reconciler will retry it");
      })
      .finally(() => {
        passes.delete(item.runId);
        slots.recordPass(item.functionId, performance.now() - started);
        passEnded(item.functionId);
      });
  }

  /**
   * A slot of the function freed: the next run parked for it starts (not once stopping: held
   * runs go back to the queue), and the loop may dequeue.
   */
  function passEnded(functionId: string): void {
    const next = slots.release(functionId, running);
    if (next) launch(next);
    freeSlot?.();
  }

  /** Starts `item` if its function has room, else holds it here or defers it; false when deferred. */
  function startOrHold(item: QueueItem): boolean {
    if (slots.take(item.functionId)) {
      launch(item);
      return true;
    }
    return slots.park(item);
  }

  async function dispatch(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const deferred: QueueItem[] = [];
      while (overflow.length > 0 && busy() < options.concurrency) {
        const item = overflow.shift() as QueueItem;
        if (!startOrHold(item)) deferred.push(item);
      }
      if (deferred.length > 0) await giveBack(deferred);
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
        // A wake-up queued by an older version, which left the function id out: the run is due
        // in the store, where the reconciler finds it and queues it with its function id.
        if (item.functionId === "") continue;
        if (!context.resolveFunction(item.functionId)) foreign.push(item);
        else if (busy() >= options.concurrency) overflow.push(item);
        else if (!startOrHold(item)) deferred.push(item);
      }
      // Runs of functions this process does not have (another app shares the queue): leave
      // them, briefly out of this worker's way, for a worker that has them.
      const now = clock.now();
      const back = [...foreign.map((item) => ({ ...item, availableAt: now + FOREIGN_RUN_DELAY_MS })), ...deferred];
      if (back.length > 0) await giveBack(back, deferred.length > 0);
    }
  }

  /**
   * Back to the queue: foreign runs as they are, and runs beyond the parking bound at a time
   * their function can plausibly take them (`spaced`). A failure is reported; the reconciler
   * re-enqueues the runs from the store.
   */
  async function giveBack(items: QueueItem[], spaced = true): Promise<void> {
    const now = clock.now();
    const timed = items.map((item) => (spaced && item.availableAt <= now ? { ...item, availableAt: slots.deferUntil(item.functionId, now) } : item));
    await context.enqueue(timed).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "giving runs back to the queue" }));
  }

  return {
    get activeCount() {
      return passes.size;
    },

    get pendingCount() {
      return passes.size + reserved.size + slots.parkedCount + overflow.length;
    },

    get heldCount() {
      return slots.parkedCount + overflow.length;
    },

    maxHeld: options.concurrency,

    abortRun(runId, reason) {
      const entry = passes.get(runId);
      if (!entry || entry.abort.signal.aborted) return false;
      entry.abort.abort(reason);
      return true;
    },

    reserve(runs) {
      const taken = new Set<string>();
      if (!running) return taken;
      for (const run of runs) {
        if (!startsHere(run.runId, run.functionId) || !slots.take(run.functionId)) continue;
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
      passEnded(functionId);
      void store
        .releaseRun({ runId, leaseEpoch, wakeAt: clock.now() })
        .then((released) => (released ? context.enqueue([{ runId, functionId, availableAt: clock.now() }]) : undefined))
        .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `releasing run ${runId} created during shutdown` }));
    },

    unreserve(runId) {
      const functionId = reserved.get(runId);
      if (functionId === undefined) return;
      reserved.delete(runId);
      passEnded(functionId);
    },

    offer(items) {
      if (!running) return items;
      const left: QueueItem[] = [];
      for (const item of items) {
        if (startsHere(item.runId, item.functionId) && slots.take(item.functionId)) launch(item);
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
      // Taken from the queue but never started: back to the queue, for the other workers.
      const held = [...slots.drain(), ...overflow.splice(0)];
      if (held.length > 0) {
        await context.enqueue(held).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "giving held runs back to the queue" }));
      }
      const inFlight = [...passes.values()].map((entry) => entry.pass);
      let timer: NodeJS.Timeout | undefined;
      // setTimeout treats delays past 2^31-1 ms (and Infinity) as 1 ms: no limit means no timer.
      const grace = Number.isFinite(graceMs) && graceMs < 2 ** 31 ? new Promise((resolve) => (timer = setTimeout(resolve, graceMs))) : new Promise(() => {});
      await Promise.race([Promise.allSettled(inFlight), grace]);
      clearTimeout(timer);
      let released = 0;
      for (const [runId, entry] of passes) {
        // Their step bodies stop (if they heed their signal) and nothing of them is committed.
        entry.abort.abort(new Error(`the worker is stopping: passes still running after the ${graceMs} ms grace period are released`));
        if (entry.leaseEpoch === undefined) continue;
        if (await store.releaseRun({ runId, leaseEpoch: entry.leaseEpoch, wakeAt: clock.now() }).catch(() => false)) released++;
      }
      if (released > 0) logger.warn({ released, graceMs }, "released runs still executing after the grace period");
      return { released };
    },
  };
}
