import { ErrorCode, type RunStatus, StepwiseError } from "@stepwise/core";
import { compileExpression, matchesExpression } from "@stepwise/core/internal";
import { publicEvent, type RunStore, type StoredEvent } from "./ports/run-store.js";

/** Which runs {@link createCancelMany} cancels. */
export interface CancelManyFilter {
  /** The function, by qualified id (the engine resolves a plain id first). */
  functionId: string;
  /** Only runs created at or after this time (epoch ms). (Default: any) */
  since?: number;
  /** Only runs created before this time (epoch ms). (Default: any) */
  until?: number;
  /** CEL over `event` (the run's trigger): only runs whose event it holds for. (Default: all) */
  if?: string;
  /** Recorded as each run's error message. (Default: "cancelled in bulk by an operator") */
  reason?: string;
}

/** The statuses of runs that have not ended, which a bulk cancel looks through. */
const OPEN_STATUSES: RunStatus[] = ["queued", "running", "sleeping", "waiting"];
/** Runs read per page, and cancelled at once. */
const PAGE = 500;
const PARALLEL = 8;

/**
 * Creates the bulk cancel: every run of a function that has not ended, created in a time range,
 * whose event meets an optional expression, is cancelled as `cancel` cancels one (its pass
 * aborted, its waits closed, its slot freed, its parent told). Answers how many were cancelled.
 */
export function createCancelMany(
  store: RunStore,
  cancel: (runId: string, reason: string) => Promise<number>,
): (filter: CancelManyFilter) => Promise<{ cancelled: number }> {
  return async (filter) => {
    if (filter.if !== undefined) {
      try {
        compileExpression(filter.if, "if");
      } catch (error) {
        throw StepwiseError.isInstance(error) ? new StepwiseError({ code: ErrorCode.InvalidExpression, category: "user", message: error.message }) : error;
      }
    }
    const reason = filter.reason ?? "cancelled in bulk by an operator";
    const events = new Map<string, StoredEvent | null>();
    let cancelled = 0;
    for (const status of OPEN_STATUSES) {
      let before: { createdAt: number; id: string } | undefined;
      for (;;) {
        const page = await store.listRuns({ functionId: filter.functionId, status, since: filter.since, until: filter.until, limit: PAGE, before });
        if (page.length === 0) break;
        const chosen = [];
        for (const run of page) {
          if (filter.if !== undefined) {
            if (!events.has(run.eventId)) events.set(run.eventId, await store.getEvent(run.eventId));
            const event = events.get(run.eventId);
            if (!event || !matchesExpression(filter.if, { event: publicEvent(event) })) continue;
          }
          chosen.push(run.id);
        }
        for (let start = 0; start < chosen.length; start += PARALLEL) {
          const counts = await Promise.all(chosen.slice(start, start + PARALLEL).map((runId) => cancel(runId, reason)));
          cancelled += counts.reduce((sum, count) => sum + count, 0);
        }
        const last = page.at(-1);
        if (page.length < PAGE || !last) break;
        before = { createdAt: last.createdAt, id: last.id };
      }
    }
    return { cancelled };
  };
}
