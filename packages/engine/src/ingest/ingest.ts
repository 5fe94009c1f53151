import { type RunToQueue, toQueueItem } from "../flow/flow-keys.js";
import { skipRateLimited } from "../flow/rate-limits.js";
import type { Lifecycle } from "../lifecycle.js";
import type { ResolvedEngineOptions } from "../options.js";
import type { NewRun, RunRecord, StoredEvent } from "../ports/run-store.js";
import type { Router } from "../router.js";
import type { SingletonCancels } from "../run-actions.js";
import type { Dispatcher } from "../worker/dispatcher.js";

/** What {@link createIngest} needs from the engine. */
export interface IngestOptions {
  options: ResolvedEngineOptions;
  lifecycle: Lifecycle;
  router: Router;
  dispatcher: Dispatcher;
  /** Matches events the store flagged against the open waits (see `createWaitMatcher`). */
  matchWaits(events: StoredEvent[]): Promise<void>;
  enqueue(items: RunToQueue[]): Promise<void>;
  /** Announces runs the store cancelled for a `singleton: cancel` run (see `RunActions.announceSingletons`). */
  announceSingletons(cancelled: SingletonCancels): Promise<unknown>;
  /** Watches a `timeouts` deadline of a run created here. */
  watchDeadline(at: number | undefined): void;
  /** Runs work after the answer, counted as in flight (so `idle()` waits for it). */
  background(work: Promise<unknown>): void;
}

/** What an ingest answers: the events' ids (in order) and the runs created. */
export interface IngestOutcome {
  ids: string[];
  runs: Array<{ id: string; functionId: string; eventId: string }>;
}

/**
 * Creates the engine's ingest: route events to the functions they start, store events and runs
 * in one transaction (runs this process has free slots for created already claimed: eager
 * start), answer, then start or queue the runs and match the events against open waits.
 *
 * Once the store has committed, the ingest answers the ids whatever happens next: a caller
 * that saw an error would send again, and without an event `id` that creates duplicate runs.
 * A failure to queue the runs or to match waits is logged and left to the reconciler, which
 * re-enqueues due runs and matches events left unmatched.
 */
export function createIngest(dependencies: IngestOptions): (events: StoredEvent[], extraRuns?: NewRun[]) => Promise<IngestOutcome> {
  const { options, lifecycle, router, dispatcher } = dependencies;
  const { store, clock, logger } = options;

  return async (events, extraRuns = []) => {
    const now = clock.now();
    const eventsById = new Map(events.map((event) => [event.id, event]));
    // Runs over their function's rate limit are stored skipped (a queue call, only when some are limited).
    const runs = await skipRateLimited([...events.flatMap((event) => router.route(event)), ...extraRuns], eventsById, router, options.queue, now);
    // Eager start: runs this process has free slots for are created already claimed by it.
    const startable = runs.filter((run) => run.skipped === undefined);
    const reserved = options.eagerStart ? dispatcher.reserve(startable.map((run) => ({ runId: run.id, functionId: run.functionId }))) : new Set<string>();
    // Runs limited by concurrency alone start at once too when their slots are free (one queue call).
    const limited = options.eagerStart
      ? startable.flatMap((run) => {
          const fn = router.functionOf(run.functionId);
          if (reserved.has(run.id) || !fn || fn.config.concurrency.length === 0) return [];
          return [toQueueItem(fn, { runId: run.id, functionId: run.functionId, availableAt: now, flow: run.flow ?? null, fresh: true })];
        })
      : [];
    if (limited.length > 0) for (const runId of await dispatcher.reserveWithSlots(limited)) reserved.add(runId);
    const lease = { workerId: options.workerId, expiresAt: now + options.leaseMs };
    let result: Awaited<ReturnType<typeof store.ingest>>;
    try {
      result = await store.ingest({ events, runs: runs.map((run) => (reserved.has(run.id) ? { ...run, lease } : run)), now });
    } catch (error) {
      for (const runId of reserved) dispatcher.unreserve(runId);
      throw error;
    }
    // Committed. Nothing below may reject the call.
    for (const [index, event] of events.entries()) lifecycle.emit({ type: "event-received", event, duplicate: result.events[index]?.duplicate ?? false });
    const routed = new Map(runs.map((run) => [run.id, run]));
    for (const run of result.runs) {
      const skipped = run.skipped ?? routed.get(run.id)?.skipped;
      if (skipped) lifecycle.emit({ type: "run-skipped", runId: run.id, functionId: run.functionId, eventId: run.eventId, reason: skipped.message });
      // A pending debounced run that took the event over, or a batch it joined, was created before.
      else if (!run.debounce?.takenOver && run.batch?.created !== false)
        lifecycle.emit({ type: "run-created", runId: run.id, functionId: run.functionId, eventId: run.eventId });
    }
    const queued: RunToQueue[] = [];
    for (const run of result.runs) {
      const newRun = routed.get(run.id);
      if (newRun?.skipped || run.skipped) continue;
      if (run.batch) {
        // A new batch is queued for its timeout (or now, full); one this ingest filled, for now
        // (the item queued at its timeout finds it started, and is dropped).
        if (run.batch.created) dependencies.watchDeadline(newRun?.startBy);
        // A batch opened earlier carries flow keys this ingest did not route: the queuer reads them.
        if (run.batch.created || run.batch.wakeAt <= now)
          queued.push({ runId: run.id, functionId: run.functionId, availableAt: run.batch.wakeAt, ...(newRun && { flow: newRun.flow ?? null }), fresh: true });
        continue;
      }
      // The deadline the store set: the start's, or (created claimed) the finish's.
      const finishMs = newRun?.flow?.finishMs;
      dependencies.watchDeadline(reserved.has(run.id) && finishMs !== undefined ? now + finishMs : newRun?.startBy);
      const event = eventsById.get(run.eventId);
      if (!reserved.has(run.id) || !event || !newRun) {
        // A debounced run starts at the end of its quiet period (an earlier item for it finds
        // it not due yet, and queues it again at its time).
        queued.push({ runId: run.id, functionId: run.functionId, availableAt: run.debounce?.wakeAt ?? now, flow: newRun?.flow ?? null, fresh: true });
        continue;
      }
      reserved.delete(run.id);
      dispatcher.startClaimed({ run: createdClaimed(newRun, lease, now), event, steps: [] });
    }
    // Reserved but not created (the event was a duplicate): the slot goes back.
    for (const runId of reserved) dispatcher.unreserve(runId);
    const ids = result.events.map((event) => event.id);
    // After the answer: the events are stored, which is all the caller waits for (a queue round
    // trip less per request). A crash before this lands leaves the runs due in the store, where
    // the reconciler finds them.
    dependencies.background(
      (async () => {
        try {
          // The rest found no free slot at the reservation: for the queue.
          if (result.cancelled) await dependencies.announceSingletons(result.cancelled);
          if (queued.length > 0) await dependencies.enqueue(queued);
          await dependencies.matchWaits(events.filter((_, index) => result.events[index]?.matchWaits));
        } catch (error) {
          lifecycle.emit({ type: "engine-error", error, context: `queueing the runs of stored events ${ids.join(", ")}` });
          logger.error(
            { error, eventIds: ids },
            "events are stored, but queueing their runs or matching them against waits failed; the reconciler will finish it",
          );
        }
      })(),
    );
    return { ids, runs: result.runs };
  };
}

/** The record of a run the ingest created already claimed (see `NewRun.lease`), as the store holds it. */
function createdClaimed(run: NewRun, lease: { workerId: string; expiresAt: number }, now: number): RunRecord {
  const { id, functionId, eventId, parentRunId, parentStepKey, flow } = run;
  return {
    id,
    functionId,
    eventId,
    status: "running",
    attempt: 0,
    leaseEpoch: 1,
    leaseOwner: lease.workerId,
    leaseExpiresAt: lease.expiresAt,
    wakeAt: now,
    ...(parentRunId !== undefined && { parentRunId, parentStepKey }),
    ...(flow !== undefined && { flow }),
    ...(flow?.finishMs !== undefined && { timeoutAt: now + flow.finishMs }),
    createdAt: now,
    startedAt: now,
  };
}
