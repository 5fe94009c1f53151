import { functionChannel, LIFECYCLE_TOPIC, type RunLifecycleEvent, type RunsCreatedEvent, runChannel } from "@stepwise/core";
import type { Lifecycle, LifecycleEvent } from "./lifecycle.js";
import type { Realtime } from "./ports/realtime.js";

/** Step events go to the run's channel only: a function's channel follows its runs, not each step of each run. */
const STEP_EVENTS = new Set<LifecycleEvent["type"]>(["step-started", "step-ended"]);

const RUN_EVENTS = new Set<LifecycleEvent["type"]>([
  ...STEP_EVENTS,
  "run-started",
  "run-suspended",
  "run-retrying",
  "run-completed",
  "run-failed",
  "run-cancelled",
  "run-skipped",
  "run-aborted",
]);

/** Most runs one `runs-created` message names. */
const RUNS_PER_MESSAGE = 500;

/**
 * Publishes each run's lifecycle events on realtime channels, topic `lifecycle`: the run's own
 * (`run:<id>`) and, but for step events, its function's (`function:<qualified id>`): a busy
 * function's channel carries each run's changes of status, and a watcher opens a run's channel
 * for its steps (steps on both were half of what a one-step run published). New runs go to their function's
 * channel only, gathered over one turn of the event loop into one `runs-created` message per
 * function (the ingests one store commit answered): a message per run, and a new stream per run,
 * cost the Event API a third of its throughput. A run's own channel begins at `run-started`;
 * that a run is queued before then is in `GET /v1/runs/:id`. Best effort: a failed publish is
 * reported as an `engine-error` and never slows or fails the run. Answers the unsubscribe.
 */
export function publishLifecycle(lifecycle: Lifecycle, realtime: Realtime): () => void {
  const publish = (channel: string, data: RunLifecycleEvent | RunsCreatedEvent, what: string) =>
    realtime
      .publish({ channel, topic: LIFECYCLE_TOPIC, data: data as never })
      .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `publishing ${what}` }));

  // New runs of this turn, by function. A function's other events publish its gathered runs
  // first, so that a run's creation never follows its start on the channel.
  const created = new Map<string, RunsCreatedEvent["runs"]>();
  const publishCreated = (functionId: string) => {
    const runs = created.get(functionId);
    if (!runs) return;
    created.delete(functionId);
    for (let start = 0; start < runs.length; start += RUNS_PER_MESSAGE) {
      const chunk = runs.slice(start, start + RUNS_PER_MESSAGE);
      publish(functionChannel(functionId), { type: "runs-created", functionId, runs: chunk }, `runs-created of ${chunk.length} runs of ${functionId}`);
    }
  };
  const publishAllCreated = () => {
    for (const functionId of created.keys()) publishCreated(functionId);
  };

  return lifecycle.on((event) => {
    if (event.type === "run-created") {
      if (created.size === 0) setImmediate(publishAllCreated);
      const runs = created.get(event.functionId) ?? [];
      runs.push({ runId: event.runId, eventId: event.eventId });
      created.set(event.functionId, runs);
      return;
    }
    if (!RUN_EVENTS.has(event.type)) return;
    const runEvent = event as RunLifecycleEvent;
    publishCreated(runEvent.functionId);
    const what = `${runEvent.type} of ${runEvent.runId}`;
    publish(runChannel(runEvent.runId), runEvent, what);
    if (!STEP_EVENTS.has(event.type)) publish(functionChannel(runEvent.functionId), runEvent, what);
  });
}
