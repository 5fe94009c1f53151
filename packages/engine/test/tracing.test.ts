import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { type Logger, NonRetriableError, Stepwise } from "@stepwise/core";
import { createTestEngine } from "@stepwise/testing";
import { afterAll, expect, it } from "vitest";

// The engine's spans, recorded by the real OpenTelemetry SDK (in-memory exporter): a span per
// pass over a run, a child per step execution, with the run's ids and the outcome.

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
afterAll(() => provider.shutdown());

it("records a span per pass and a child per step, with ids, statuses and errors", async () => {
  const stepwise = new Stepwise({ id: "traced" });
  stepwise.createFunction({ id: "checkout", retries: 0 }, { event: "shop/checkout" }, async ({ step }) => {
    await step.run("reserve", () => "reserved");
    await step.sleep("cool-off", "1m");
    await step.run("charge", () => {
      throw new NonRetriableError("card declined");
    });
  });
  await using engine = await createTestEngine({ clients: [stepwise] });
  const { runIds } = await engine.sendAndGetRuns({ name: "shop/checkout" });
  await engine.advance("2m");
  const run = await engine.result(runIds[0] as string);
  expect(run.status).toBe("failed");

  const spans = exporter.getFinishedSpans();
  const passes = spans.filter((span) => span.name === "run traced/checkout");
  // Two passes: until the sleep, then after it.
  expect(passes.map((span) => span.attributes["stepwise.run.outcome"])).toEqual(["suspended", "failed"]);
  for (const pass of passes) expect(pass.attributes).toMatchObject({ "stepwise.run.id": run.id, "stepwise.function.id": "traced/checkout" });
  const steps = spans.filter((span) => span.name.startsWith("step "));
  expect(steps.map((span) => [span.name, span.attributes["stepwise.step.status"]])).toEqual([
    ["step reserve", "completed"],
    ["step charge", "failed"],
  ]);
  const [reserve, charge] = steps;
  // Each step is a child of the pass it ran in.
  expect(reserve?.parentSpanContext?.spanId).toBe(passes[0]?.spanContext().spanId);
  expect(charge?.parentSpanContext?.spanId).toBe(passes[1]?.spanContext().spanId);
  expect(charge?.status).toMatchObject({ code: 2, message: "card declined" });
  expect(passes[1]?.status.code).toBe(2);
  expect(new Set(spans.map((span) => span.spanContext().traceId)).size).toBeGreaterThanOrEqual(1);
});

it("gives a handler a logger that carries its run's ids, made only when the handler logs", async () => {
  const lines: Array<{ bindings: Record<string, unknown>; message: unknown }> = [];
  let children = 0;
  const logger = (bindings: Record<string, unknown>): Logger => ({
    debug: () => undefined,
    info: (objectOrMessage) => lines.push({ bindings, message: objectOrMessage }),
    warn: () => undefined,
    error: () => undefined,
    child: (more) => {
      children++;
      return logger({ ...bindings, ...more });
    },
  });
  const stepwise = new Stepwise({ id: "logged" });
  stepwise.createFunction({ id: "chatty" }, { event: "log/chatty" }, async ({ logger: log }) => log.info("hello"));
  stepwise.createFunction({ id: "quiet" }, { event: "log/quiet" }, async () => "shh");
  await using engine = await createTestEngine({ clients: [stepwise], logger: logger({}) });
  const { runIds } = await engine.sendAndGetRuns([{ name: "log/chatty" }, { name: "log/quiet" }]);
  for (const runId of runIds) await engine.result(runId);
  expect(lines).toEqual([{ bindings: { runId: runIds[0], functionId: "logged/chatty" }, message: "hello" }]);
  // The quiet handler's pass made no child logger.
  expect(children).toBe(1);
});
