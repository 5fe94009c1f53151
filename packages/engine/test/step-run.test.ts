import { ErrorCode, NonRetriableError, RetryAfterError, StepError, Stepwise } from "@stepwise/core";
import { createTestEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe("step.run", () => {
  it("runs steps in order, memoizes them, and returns the handler's output", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const calls: string[] = [];
    stepwise.createFunction({ id: "three-steps" }, { event: "demo/go" }, async ({ event, step }) => {
      const a = await step.run("a", () => {
        calls.push("a");
        return { n: (event.data["n"] as number) + 1 };
      });
      const b = await step.run("b", () => {
        calls.push("b");
        return a.n * 10;
      });
      await step.sleep("pause", "1m");
      const c = await step.run("c", () => {
        calls.push("c");
        return `${b}!`;
      });
      return { a, b, c };
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/go", data: { n: 1 } });
    await engine.idle();
    expect(calls).toEqual(["a", "b"]);
    expect((await engine.getRun(runIds[0] as string))?.status).toBe("sleeping");
    await engine.advance("1m");
    const run = await engine.result(runIds[0] as string);
    expect(run.status).toBe("completed");
    expect(run.output).toEqual({ a: { n: 2 }, b: 20, c: "20!" });
    // After the sleep the handler replayed from the top: a and b came from the store.
    expect(calls).toEqual(["a", "b", "c"]);
    const steps = await engine.store.listSteps(runIds[0] as string);
    expect(steps.map((step) => [step.id, step.status]).sort()).toEqual([
      ["a", "completed"],
      ["b", "completed"],
      ["c", "completed"],
      ["pause", "completed"],
    ]);
  });

  it("retries a failing step exactly `retries` times, then throws a StepError into the handler", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let calls = 0;
    let caught: unknown;
    stepwise.createFunction({ id: "flaky", retries: 3 }, { event: "demo/flaky" }, async ({ step }) => {
      try {
        await step.run("always-fails", () => {
          calls++;
          throw new Error(`boom ${calls}`);
        });
      } catch (error) {
        caught = error;
        return "compensated";
      }
      return "unreachable";
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/flaky" });
    for (let index = 0; index < 6; index++) await engine.advance("15m");
    const run = await engine.result(runIds[0] as string);
    expect(calls).toBe(4);
    expect(run.output).toBe("compensated");
    expect(StepError.isInstance(caught)).toBe(true);
    expect((caught as StepError).stepId).toBe("always-fails");
    expect((caught as StepError).error.message).toBe("boom 4");
  });

  it("waits with exponential backoff between attempts", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const times: number[] = [];
    stepwise.createFunction({ id: "backoff", retries: 2 }, { event: "demo/backoff" }, async ({ step }) => {
      await step.run("fails", () => {
        times.push(engine.clock.now());
        throw new Error("no");
      });
    });
    const engine = await createTestEngine({ clients: [stepwise] });
    try {
      const { runIds } = await engine.sendAndGetRuns({ name: "demo/backoff" });
      await engine.idle();
      expect(times).toHaveLength(1);
      await engine.advance(400); // below half of the 1 s first delay
      expect(times).toHaveLength(1);
      await engine.advance("1s");
      expect(times).toHaveLength(2);
      await engine.advance("2s");
      expect(times).toHaveLength(3);
      const run = await engine.result(runIds[0] as string);
      expect(run.status).toBe("failed");
      const gaps = [(times[1] as number) - (times[0] as number), (times[2] as number) - (times[1] as number)];
      expect(gaps[0]).toBeGreaterThanOrEqual(500);
      expect(gaps[0]).toBeLessThanOrEqual(1000);
      expect(gaps[1]).toBeGreaterThanOrEqual(1000);
      expect(gaps[1]).toBeLessThanOrEqual(2000);
    } finally {
      await engine.close();
    }
  });

  it("stops at once on NonRetriableError and fails the run when uncaught", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let calls = 0;
    stepwise.createFunction({ id: "fatal", retries: 5 }, { event: "demo/fatal" }, async ({ step }) => {
      await step.run("no-retry", () => {
        calls++;
        throw new NonRetriableError("bad card");
      });
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/fatal" });
    const run = await engine.result(runIds[0] as string);
    expect(calls).toBe(1);
    expect(run.status).toBe("failed");
    expect(run.error?.message).toContain("bad card");
  });

  it("honours RetryAfterError's delay", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let calls = 0;
    stepwise.createFunction({ id: "rate-limited" }, { event: "demo/rl" }, async ({ step }) => {
      return step.run("call-api", () => {
        calls++;
        if (calls === 1) throw new RetryAfterError("429", "30s");
        return "ok";
      });
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/rl" });
    await engine.advance("29s");
    expect(calls).toBe(1);
    await engine.advance("1s");
    const run = await engine.result(runIds[0] as string);
    expect(calls).toBe(2);
    expect(run.output).toBe("ok");
  });

  it("fails the step clearly when its output is not JSON-serializable", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let caught: StepError | undefined;
    stepwise.createFunction({ id: "bigint" }, { event: "demo/bigint" }, async ({ step }) => {
      try {
        await step.run("returns-bigint", () => ({ total: 10n }));
      } catch (error) {
        caught = error as StepError;
      }
      return "handled";
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/bigint" });
    await engine.result(runIds[0] as string);
    expect(caught?.error.code).toBe(ErrorCode.OutputNotSerializable);
    expect(caught?.error.message).toContain('step "returns-bigint"');
    expect(caught?.error.message).toContain("$.total is a bigint");
  });

  it("retries the handler on an error outside steps, counting attempts", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const attempts: number[] = [];
    let stepCalls = 0;
    stepwise.createFunction({ id: "handler-retry", retries: 2 }, { event: "demo/hr" }, async ({ step, attempt }) => {
      await step.run("once", () => stepCalls++);
      attempts.push(attempt);
      if (attempt < 2) throw new Error("not yet");
      return attempt;
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/hr" });
    for (let index = 0; index < 3; index++) await engine.advance("5s");
    const run = await engine.result(runIds[0] as string);
    expect(run.output).toBe(2);
    expect(attempts).toEqual([0, 1, 2]);
    expect(stepCalls).toBe(1);
  });

  it("runs onFailure once, durably, after the last attempt", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const failures: Array<{ message: string; runId: unknown }> = [];
    stepwise.createFunction(
      {
        id: "doomed",
        retries: 1,
        onFailure: async ({ error, event, step }) => {
          await step.run("notify", () => failures.push({ message: error.message, runId: event.data.run_id }));
        },
      },
      { event: "demo/doomed" },
      async () => {
        throw new Error("always");
      },
    );
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/doomed" });
    await engine.advance("10s");
    const run = await engine.result(runIds[0] as string);
    expect(run.status).toBe("failed");
    await engine.idle();
    expect(failures).toEqual([{ message: "always", runId: runIds[0] }]);
  });
});
