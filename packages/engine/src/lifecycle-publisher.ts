import { functionChannel, LIFECYCLE_TOPIC, type RunLifecycleEvent, runChannel } from "@stepwise/core";
import type { Lifecycle, LifecycleEvent } from "./lifecycle.js";
import type { Realtime } from "./ports/realtime.js";

const RUN_EVENTS = new Set<LifecycleEvent["type"]>([
  "run-created",
  "run-started",
  "step-started",
  "step-ended",
  "run-suspended",
  "run-retrying",
  "run-completed",
  "run-failed",
  "run-cancelled",
  "run-aborted",
]);

/**
 * Publishes each run's lifecycle events on realtime channels, topic `lifecycle`: the run's own
 * (`run:<id>`) and its function's (`function:<qualified id>`), except `run-created`, which goes
 * to the function's channel only. A run's own channel begins at `run-started`: a new stream per
 * run in the Event API's answer path cost a third of its throughput, and what a run page needs
 * before the run starts (that it is queued) is in `GET /v1/runs/:id`. Best effort: a failed
 * publish is reported as an `engine-error` and never slows or fails the run. Answers the
 * unsubscribe.
 */
export function publishLifecycle(lifecycle: Lifecycle, realtime: Realtime): () => void {
  return lifecycle.on((event) => {
    if (!RUN_EVENTS.has(event.type)) return;
    const runEvent = event as RunLifecycleEvent;
    const channels = [functionChannel(runEvent.functionId)];
    if (runEvent.type !== "run-created") channels.push(runChannel(runEvent.runId));
    for (const channel of channels) {
      realtime
        .publish({ channel, topic: LIFECYCLE_TOPIC, data: runEvent as never })
        .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `publishing ${runEvent.type} of ${runEvent.runId}` }));
    }
  });
}
