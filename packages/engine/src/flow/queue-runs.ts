import type { AnyStepwiseFunction } from "@stepwise/core";
import type { Queue } from "../ports/queue.js";
import type { RunStore } from "../ports/run-store.js";
import { needsRunFlow, type RunToQueue, toQueueItem } from "./flow-keys.js";

/** What {@link createRunQueuer} needs. */
export interface RunQueuerOptions {
  store: RunStore;
  queue: Queue;
  /** The user's function of a qualified id (not `onFailure` handlers, which have no flow control), if this process has it. */
  functionOf(functionId: string): AnyStepwiseFunction | undefined;
}

/**
 * Creates the engine's one way into the queue: each run becomes a queue item with its
 * concurrency slots and its priority. A run handed over without its flow keys (a wake-up
 * answered by SQL that does not return them: a resolved wait, a child's result, a cancelled
 * child) of a function that needs them is read from the store first: one query for the batch,
 * made only for functions with keyed concurrency or a priority.
 */
export function createRunQueuer(options: RunQueuerOptions): (runs: RunToQueue[]) => Promise<void> {
  const { store, queue, functionOf } = options;
  return async (runs) => {
    if (runs.length === 0) return;
    const unknown = runs.filter((run) => {
      if (run.flow !== undefined || run.concurrency !== undefined) return false;
      const fn = functionOf(run.functionId);
      return fn !== undefined && needsRunFlow(fn);
    });
    let filled = runs;
    if (unknown.length > 0) {
      const lookedUp = new Set(unknown);
      const records = new Map((await store.getRuns(unknown.map((run) => run.runId))).map((record) => [record.id, record]));
      filled = runs.map((run) => {
        const record = lookedUp.has(run) ? records.get(run.runId) : undefined;
        return record ? { ...run, flow: record.flow ?? null, fresh: record.startedAt === undefined } : run;
      });
    }
    await queue.enqueue(filled.map((run) => toQueueItem(functionOf(run.functionId), run)));
  };
}
