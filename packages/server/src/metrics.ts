import type { Engine, LifecycleEvent } from "@stepwise/engine";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * Prometheus metrics of one engine, from its lifecycle events (so they count what this process
 * does: a `stepwise start` serves its own; each process has its own counters). A registry of
 * its own, not prom-client's global one, so that several servers in one process never clash.
 */
export function createMetrics(engine: Engine): Registry {
  const registry = new Registry();
  const runsCreated = new Counter({
    name: "stepwise_runs_created_total",
    help: "Runs created by this process, by function",
    labelNames: ["function"],
    registers: [registry],
  });
  const passes = new Counter({
    name: "stepwise_run_passes_total",
    help: "Passes over runs started by this process's workers (a run's first start and every replay after a sleep, wait or retry)",
    labelNames: ["function"],
    registers: [registry],
  });
  const runsEnded = new Counter({
    name: "stepwise_runs_ended_total",
    help: "Runs this process ended, by function and status (completed and failed by its workers, cancelled through its API)",
    labelNames: ["function", "status"],
    registers: [registry],
  });
  const steps = new Counter({
    name: "stepwise_steps_total",
    help: "Step executions, by function and outcome",
    labelNames: ["function", "status"],
    registers: [registry],
  });
  const stepSeconds = new Histogram({
    name: "stepwise_step_duration_seconds",
    help: "How long step bodies ran, by function and kind",
    labelNames: ["function", "kind"],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [registry],
  });
  new Gauge({
    name: "stepwise_queue_depth",
    help: "Items in the queue, due or not (for the whole deployment when the queue is Redis)",
    registers: [registry],
    async collect() {
      this.set(await engine.queueSize());
    },
  });
  new Gauge({
    name: "stepwise_realtime_subscribers",
    help: "Realtime subscriptions (SSE streams) open in this process",
    registers: [registry],
    collect() {
      this.set(engine.realtime.subscriberCount);
    },
  });
  new Gauge({
    name: "stepwise_worker_runs",
    help: "Runs this process's workers hold: running, or taken from the queue and held for a free worker slot",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const { running, held } = engine.workload();
      this.set({ state: "running" }, running);
      this.set({ state: "held" }, held);
    },
  });
  engine.on((event: LifecycleEvent) => {
    switch (event.type) {
      case "run-created":
        return runsCreated.inc({ function: event.functionId });
      case "run-started":
        return passes.inc({ function: event.functionId });
      case "run-completed":
        return runsEnded.inc({ function: event.functionId, status: "completed" });
      case "run-failed":
        return runsEnded.inc({ function: event.functionId, status: "failed" });
      case "run-cancelled":
        return runsEnded.inc({ function: event.functionId, status: "cancelled" });
      case "run-skipped":
        return runsEnded.inc({ function: event.functionId, status: "skipped" });
      case "step-ended":
        steps.inc({ function: event.functionId, status: event.status });
        return stepSeconds.observe({ function: event.functionId, kind: event.kind }, event.durationMs / 1000);
      default:
        return;
    }
  });
  return registry;
}
