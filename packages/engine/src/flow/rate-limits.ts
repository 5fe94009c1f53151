import { ErrorCode, type StepwiseEvent } from "@stepwise/core";
import type { Queue, RateLimitCheck } from "../ports/queue.js";
import type { NewRun } from "../ports/run-store.js";
import type { Router } from "../router.js";
import { keyValue } from "./flow-keys.js";

/**
 * Counts new runs of functions with a `rateLimit` against it (one call to the queue, where the
 * limits live, for the whole ingest; no database round trip) and answers the runs with those
 * over their limit marked `skipped`: they are stored ended, with the reason as their error, so
 * that every skip is listed. Runs of other functions pass unchanged, and with none limited the
 * queue is not asked at all.
 */
export async function skipRateLimited(
  runs: NewRun[],
  events: ReadonlyMap<string, StepwiseEvent>,
  router: Router,
  queue: Queue,
  now: number,
): Promise<NewRun[]> {
  const limited: Array<{ index: number; check: RateLimitCheck; shown: string }> = [];
  runs.forEach((run, index) => {
    const fn = router.functionOf(run.functionId);
    const rule = fn?.config.rateLimit;
    const event = events.get(run.eventId);
    if (!fn || !rule || !event) return;
    const value = rule.key === undefined ? "" : keyValue(rule.key, event);
    limited.push({ index, check: { key: `${fn.qualifiedId}:${value}`, limit: rule.limit, periodMs: rule.periodMs }, shown: value });
  });
  if (limited.length === 0) return runs;
  const answers = await queue.rateLimit(
    limited.map((entry) => entry.check),
    now,
  );
  const marked = [...runs];
  limited.forEach((entry, position) => {
    if (answers[position]) return;
    const run = marked[entry.index] as NewRun;
    const { limit, periodMs } = entry.check;
    const key = entry.shown === "" ? "" : ` for key ${JSON.stringify(entry.shown)}`;
    marked[entry.index] = {
      ...run,
      skipped: {
        name: "StepwiseError",
        code: ErrorCode.RateLimited,
        message: `rate limit of ${limit} per ${periodMs / 1000} s reached${key}; the event started no run`,
      },
    };
  });
  return marked;
}
