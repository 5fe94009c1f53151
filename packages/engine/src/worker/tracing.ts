import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { SerializedError } from "@stepwise/core";
import type { StepProgress } from "@stepwise/core/internal";
import type { RunRecord } from "../ports/run-store.js";

// Spans through @opentelemetry/api alone: without an SDK registered (the default) every call
// here is a no-op; `stepwise dev|start|worker` register one when OTEL_* variables ask for it.
const tracer = trace.getTracer("@stepwise/engine");

/** The spans of one pass over a run: the pass, and a child per step execution. */
export interface PassTrace {
  /** The context the handler runs in, so that spans it makes nest under the run's. */
  readonly context: Context;
  stepStarted(step: StepProgress): void;
  stepEnded(step: StepProgress): void;
  /** Ends the pass's span with how the pass ended (`completed`, `failed`, `suspended`, …). */
  end(outcome: string, error?: SerializedError): void;
}

/** Starts the span of a pass over `run` (named `run <function id>`). */
export function tracePass(run: RunRecord): PassTrace {
  const span = tracer.startSpan(`run ${run.functionId}`, {
    kind: SpanKind.INTERNAL,
    attributes: {
      "stepwise.run.id": run.id,
      "stepwise.function.id": run.functionId,
      "stepwise.event.id": run.eventId,
      "stepwise.run.attempt": run.attempt,
    },
  });
  const passContext = trace.setSpan(context.active(), span);
  const steps = new Map<string, Span>();
  // Not recorded (no SDK registered, or sampled out): its steps' spans, children under the
  // default parent-based sampling, would not be either, and making them was 2% of a worker's time.
  const recording = span.isRecording();
  return {
    context: passContext,
    stepStarted(step) {
      if (!recording) return;
      const child = tracer.startSpan(
        `step ${step.id}`,
        {
          attributes: {
            "stepwise.run.id": run.id,
            "stepwise.function.id": run.functionId,
            "stepwise.step.id": step.id,
            "stepwise.step.kind": step.kind,
            "stepwise.step.attempt": step.attempt,
          },
        },
        passContext,
      );
      steps.get(step.key)?.end();
      steps.set(step.key, child);
    },
    stepEnded(step) {
      if (!recording) return;
      const child = steps.get(step.key);
      if (!child) return;
      steps.delete(step.key);
      child.setAttribute("stepwise.step.status", step.status ?? "completed");
      fail(child, step.error);
      child.end();
    },
    end(outcome, error) {
      // Steps cut short by a suspension or an abort end with the pass.
      for (const child of steps.values()) child.end();
      steps.clear();
      span.setAttribute("stepwise.run.outcome", outcome);
      fail(span, error);
      span.end();
    },
  };
}

function fail(span: Span, error: SerializedError | undefined): void {
  if (!error) return;
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.recordException({ name: error.name, message: error.message });
}
