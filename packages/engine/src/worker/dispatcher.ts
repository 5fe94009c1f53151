import type { AnyStepwiseFunction } from "@stepwise/core";
import type { QueueItem } from "../ports/queue.js";
import type { ClaimedRun } from "../ports/run-store.js";
import type { ProcessContext } from "./process-run.js";
import { processRun } from "./process-run.js";

/** Pause before the worker loop tries the queue again after an error (ms). */
const DISPATCH_RETRY_MS = 1000;

/** How long a run of a function this process does not know goes back to the queue for (ms; 0.5 to 1.5 times this, jittered). */
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
   * the items it did not take, for the queue: no free slot, a function with flow control the
   * queue applies (concurrency, throttle, priority) or unknown here, a run whose pass is still
   * running, or the dispatcher not running.
   */
  offer(items: QueueItem[]): QueueItem[];
  /**
   * Eager start at creation: reserves a slot for each run it can take now (same rules as
   * {@link Dispatcher.offer}) and answers their ids. The caller creates those runs already
   * claimed by this worker, then hands each to {@link Dispatcher.startClaimed}, or gives the
   * slot back with {@link Dispatcher.unreserve} when the run was not created.
   */
  reserve(runs: Array<{ runId: string; functionId: string }>): Set<string>;
  /**
   * {@link Dispatcher.reserve} for runs whose only flow control is `concurrency`: with a free
   * worker slot here, their concurrency slots are taken from the queue at once (one round trip
   * for all), so that the run is created claimed instead of going through the queue. Answers the
   * ids reserved; the others go to the queue as usual.
   */
  reserveWithSlots(items: QueueItem[]): Promise<Set<string>>;
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
   * here for a worker slot. Zero means nothing here will start or end a run without new input.
   */
  readonly pendingCount: number;
  /** Runs taken from the queue that wait here for a worker slot (at most {@link Dispatcher.maxHeld}). */
  readonly heldCount: number;
  /** Most runs held here that cannot run yet: the worker's `concurrency`. */
  readonly maxHeld: number;
}

/** A pass in progress, with what stopping or losing the run needs. */
interface ActivePass {
  pass: Promise<void>;
  functionId: string;
  /** Set once the pass holds the lease (at once for a run created claimed). */
  leaseEpoch?: number;
  /** Aborts the pass: its handler's and step bodies' `signal`. */
  abort: AbortController;
}

/**
 * Creates the dispatcher. `concurrency` bounds passes in this process. A function's own
 * concurrency rules are enforced by the queue across every worker: it hands a run out only
 * with its slots taken (a run holds them only while a pass executes, never while it sleeps
 * or waits); the dispatcher renews them with the pass and gives them back when it ends.
 */
export function createDispatcher(context: ProcessContext, functions: ReadonlyMap<string, AnyStepwiseFunction>): Dispatcher {
  const { options, lifecycle } = context;
  const { queue, store, clock, logger } = options;
  const passes = new Map<string, ActivePass>();
  // Runs being created already claimed by this worker (eager start), by id: they hold a slot.
  const reserved = new Map<string, string>();
  // Of those, the ones holding concurrency slots taken for them (`reserveWithSlots`).
  const reservedSlots = new Map<string, QueueItem>();
  // Items holding concurrency slots taken by the queue, by run id: renewed until their pass ends.
  const holding = new Map<string, QueueItem>();
  let cancelRenewal: (() => void) | undefined;
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

  /** Whether runs of the function need concurrency slots, which only the queue hands out. */
  const limited = (functionId: string) => (functions.get(functionId)?.config.concurrency.length ?? 0) > 0;
  /**
   * Whether flow control other than slots decides when runs of the function start, which only
   * the queue applies (a throttle's pace, a priority's place, a batch's timeout). A singleton's
   * run may be created skipped: its slot is not reserved ahead of the store's answer.
   */
  const startDecidedByQueue = (config: AnyStepwiseFunction["config"]) =>
    config.throttle !== undefined ||
    config.priority !== undefined ||
    config.singleton !== undefined ||
    config.debounce !== undefined ||
    config.batchEvents !== undefined;
  /** Whether runs of the function never start eagerly: they need slots, or the queue decides their start. */
  const queuedOnly = (functionId: string) => {
    const config = functions.get(functionId)?.config;
    return config !== undefined && (config.concurrency.length > 0 || startDecidedByQueue(config));
  };
  /** Whether a run's only flow control is concurrency slots, which it may take at creation. */
  const slotsOnly = (functionId: string) => {
    const config = functions.get(functionId)?.config;
    return config !== undefined && config.concurrency.length > 0 && !startDecidedByQueue(config);
  };

  /** Whether this process has room for a run now: a free worker slot, no pass or reservation of it yet, its function known here. */
  const hasRoomFor = (runId: string, functionId: string) =>
    busy() < options.concurrency && !passes.has(runId) && !reserved.has(runId) && context.resolveFunction(functionId) !== undefined;

  /** Whether a run can start here now without waiting (eager start): room, and no flow control the queue applies. */
  const startsHere = (runId: string, functionId: string) => hasRoomFor(runId, functionId) && !queuedOnly(functionId);

  /** Takes `runId`'s reservation back, with the concurrency slots taken for it. */
  function dropReservation(runId: string): void {
    reserved.delete(runId);
    const item = reservedSlots.get(runId);
    if (item) {
      reservedSlots.delete(runId);
      releaseSlots([item]);
    }
    passEnded();
  }

  /** Gives back the concurrency slots an item holds (once its pass is over, or it is not run). */
  function releaseSlots(items: QueueItem[]): void {
    const held = items.filter((item) => item.slotToken !== undefined);
    if (held.length === 0) return;
    for (const item of held) if (holding.get(item.runId) === item) holding.delete(item.runId);
    if (holding.size === 0) {
      cancelRenewal?.();
      cancelRenewal = undefined;
    }
    // A failure costs only time: a slot not given back expires with its lease.
    queue.releaseSlots(held).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "giving concurrency slots back" }));
  }

  /**
   * Renews the slots of running passes every third of a lease, in one call, while any are held
   * (an idle worker keeps no timer: a fake clock's long advance would fire it thousands of times).
   */
  function armRenewal(): void {
    if (cancelRenewal) return;
    cancelRenewal = clock.setTimer(() => {
      cancelRenewal = undefined;
      if (holding.size === 0) return;
      queue
        .renewSlots([...holding.values()], clock.now() + options.leaseMs)
        .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "renewing concurrency slots" }));
      armRenewal();
    }, options.leaseMs / 3);
  }

  /** Starts a pass in a slot already taken for it. */
  function launch(item: QueueItem, claimed?: ClaimedRun): void {
    // Two items for one run (a wake-up while its pass runs: a wait the pass just recorded,
    // resolved by an event already stored) need one pass at a time: the second goes back to the
    // queue once the first has ended, when its claim finds the run due or not.
    const current = passes.get(item.runId);
    if (current) {
      releaseSlots([item]);
      passEnded();
      void current.pass.finally(() => giveBack([item]));
      return;
    }
    if (item.slotToken !== undefined) {
      holding.set(item.runId, item);
      armRenewal();
    }
    // In the map before the pass starts: a run created claimed reports its epoch at once.
    const entry: ActivePass = { pass: Promise.resolve(), functionId: item.functionId, leaseEpoch: claimed?.run.leaseEpoch, abort: new AbortController() };
    passes.set(item.runId, entry);
    entry.pass = processRun(passContext, { runId: item.runId, claimed, abort: entry.abort })
      .catch((error: unknown) => {
        lifecycle.emit({ type: "engine-error", error, context: `processing run ${item.runId}` });
        logger.error({ runId: item.runId, error }, "run pass failed; the reconciler will retry it");
      })
      .finally(() => {
        passes.delete(item.runId);
        releaseSlots([item]);
        passEnded();
      });
  }

  /** A worker slot freed: the loop may dequeue. */
  function passEnded(): void {
    freeSlot?.();
  }

  async function dispatch(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      while (overflow.length > 0 && busy() < options.concurrency) launch(overflow.shift() as QueueItem);
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
        items = await queue.dequeueMany(signal, options.concurrency - busy(), { slotTtlMs: options.leaseMs });
        if (items.length === 0) return;
      } catch (error) {
        // The queue is unreachable for now: keep the loop alive and try again; what was lost
        // meanwhile comes back through the reconciler.
        lifecycle.emit({ type: "engine-error", error, context: "taking the next runs from the queue" });
        await new Promise((resolve) => setTimeout(resolve, DISPATCH_RETRY_MS));
        continue;
      }
      const now = clock.now();
      const back: QueueItem[] = [];
      for (const item of items) {
        // A wake-up queued by an older version, which left the function id out: the run is due
        // in the store, where the reconciler finds it and queues it with its function id.
        if (item.functionId === "") continue;
        if (!context.resolveFunction(item.functionId)) {
          // A run of a function this process does not have (another app shares the queue):
          // briefly out of this worker's way, for a worker that has it.
          releaseSlots([item]);
          // Jittered, so that two apps' workers do not fall into step, each taking the other's runs.
          back.push({ ...item, availableAt: now + FOREIGN_RUN_DELAY_MS * (0.5 + Math.random()), concurrency: undefined });
        } else if (limited(item.functionId) && item.slotToken === undefined) {
          // Queued by a process that does not have the function, so without its slots: queued
          // again with them (the engine's queueing reads the run's keys from the store).
          back.push({ ...item, concurrency: undefined });
        } else if (busy() >= options.concurrency) overflow.push(item);
        else launch(item);
      }
      if (back.length > 0) await giveBack(back);
    }
  }

  /** Back to the queue. A failure is reported; the reconciler re-enqueues the runs from the store. */
  async function giveBack(items: QueueItem[]): Promise<void> {
    await context.enqueue(items).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "giving runs back to the queue" }));
  }

  return {
    get activeCount() {
      return passes.size;
    },

    get pendingCount() {
      return passes.size + reserved.size + overflow.length;
    },

    get heldCount() {
      return overflow.length;
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
        if (!startsHere(run.runId, run.functionId)) continue;
        reserved.set(run.runId, run.functionId);
        taken.add(run.runId);
      }
      return taken;
    },

    async reserveWithSlots(items) {
      const taken = new Set<string>();
      if (!running) return taken;
      // The worker slots first, so that ingests meanwhile cannot promise them twice.
      const candidates = items.filter((item) => {
        if (!hasRoomFor(item.runId, item.functionId) || !slotsOnly(item.functionId)) return false;
        reserved.set(item.runId, item.functionId);
        return true;
      });
      if (candidates.length === 0) return taken;
      let acquired: QueueItem[] = [];
      try {
        acquired = await queue.acquireSlots(candidates, options.leaseMs);
      } catch (error) {
        // The runs go through the queue instead, which retries.
        lifecycle.emit({ type: "engine-error", error, context: "taking concurrency slots for runs starting at once" });
      }
      const got = new Map(acquired.map((item) => [item.runId, item]));
      for (const { runId } of candidates) {
        const item = got.get(runId);
        if (item) reservedSlots.set(runId, item);
        if (item && running) taken.add(runId);
        else dropReservation(runId);
      }
      return taken;
    },

    startClaimed(claimed) {
      const { id: runId, leaseEpoch } = claimed.run;
      const functionId = reserved.get(runId);
      if (functionId === undefined) return;
      reserved.delete(runId);
      const slotted = reservedSlots.get(runId);
      reservedSlots.delete(runId);
      if (running) {
        launch(slotted ?? { runId, functionId, availableAt: 0 }, claimed);
        return;
      }
      // Stopped while the run was being created: hand it on to the other workers.
      if (slotted) releaseSlots([slotted]);
      passEnded();
      void store
        .releaseRun({ runId, leaseEpoch, wakeAt: clock.now() })
        .then((released) => (released ? context.enqueue([{ runId, functionId, availableAt: clock.now() }]) : undefined))
        .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `releasing run ${runId} created during shutdown` }));
    },

    unreserve(runId) {
      if (reserved.has(runId)) dropReservation(runId);
    },

    offer(items) {
      if (!running) return items;
      const left: QueueItem[] = [];
      for (const item of items) {
        if (startsHere(item.runId, item.functionId)) launch(item);
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
      const held = overflow.splice(0);
      if (held.length > 0) {
        releaseSlots(held);
        await context.enqueue(held).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "giving held runs back to the queue" }));
      }
      const inFlight = [...passes.values()].map((entry) => entry.pass);
      let timer: NodeJS.Timeout | undefined;
      // setTimeout treats delays past 2^31-1 ms (and Infinity) as 1 ms: no limit means no timer.
      const grace = Number.isFinite(graceMs) && graceMs < 2 ** 31 ? new Promise((resolve) => (timer = setTimeout(resolve, graceMs))) : new Promise(() => {});
      await Promise.race([Promise.allSettled(inFlight), grace]);
      clearTimeout(timer);
      cancelRenewal?.();
      cancelRenewal = undefined;
      const released: QueueItem[] = [];
      for (const [runId, entry] of passes) {
        // Their step bodies stop (if they heed their signal) and nothing of them is committed.
        entry.abort.abort(new Error(`the worker is stopping: passes still running after the ${graceMs} ms grace period are released`));
        if (entry.leaseEpoch === undefined) continue;
        const wakeAt = clock.now();
        if (await store.releaseRun({ runId, leaseEpoch: entry.leaseEpoch, wakeAt }).catch(() => false))
          released.push({ runId, functionId: entry.functionId, availableAt: wakeAt });
      }
      if (released.length === 0) return { released: 0 };
      logger.warn({ released: released.length, graceMs }, "released runs still executing after the grace period");
      // For the other workers at once (a failure leaves them to the reconciler); their flow keys are read from the store.
      await context.enqueue(released).catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: "queueing runs released at stop" }));
      return { released: released.length };
    },
  };
}
