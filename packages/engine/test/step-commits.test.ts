import { NonRetriableError, Stepwise } from "@stepwise/core";
import type { StepCommit } from "@stepwise/core/internal";
import { createMemoryRealtime, type LifecycleEvent, type RunStore } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite, type TestPglite } from "@stepwise/postgres/testing";
import { createTestEngine, FakeClock } from "@stepwise/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

// When a step's result is committed: before anything that may rest on it (the next step's
// body, a published message, a failure or a suspension), and for the steps a handler ends
// with, together with the run's end, in its statement.

/** A store that counts the step commits and the steps handed to run ends, by step id. */
function countingStore(store: RunStore, overrides: { commitStep?: RunStore["commitStep"] } = {}) {
  const committed: string[] = [];
  const withEnd: string[] = [];
  const counted: RunStore = new Proxy(store, {
    get(target, property) {
      if (property === "commitStep")
        return (input: Parameters<RunStore["commitStep"]>[0]) => {
          committed.push(input.step.id);
          return (overrides.commitStep ?? target.commitStep)(input);
        };
      if (property === "finishRun")
        return (input: Parameters<RunStore["finishRun"]>[0]) => {
          withEnd.push(...(input.steps ?? []).map((step: StepCommit) => step.id));
          return target.finishRun(input);
        };
      return Reflect.get(target, property);
    },
  });
  return { store: counted, committed, withEnd };
}

describe("step commits", () => {
  let database: TestPglite;
  beforeEach(async () => {
    database = await createTestPglite();
  });
  afterEach(() => database.close());

  it("records each step before the next step's body runs, and the last with the run's end", async () => {
    const { store, committed, withEnd } = countingStore(createPostgresStore({ pool: database.pool }));
    const stepwise = new Stepwise({ id: "app" });
    let recordedBeforeB: string[] = [];
    stepwise.createFunction({ id: "two" }, { event: "demo/two" }, async ({ step, runId }) => {
      const a = await step.run("a", () => 1);
      const b = await step.run("b", async () => {
        recordedBeforeB = (await store.listSteps(runId)).map((recorded) => `${recorded.id}=${JSON.stringify(recorded.output)}`);
        return a + 1;
      });
      return b;
    });
    await using engine = await createTestEngine({ clients: [stepwise], store });
    const lifecycle: string[] = [];
    engine.on((event: LifecycleEvent) => {
      if (event.type === "step-started" || event.type === "step-ended") lifecycle.push(`${event.type} ${event.stepId}`);
      if (event.type === "run-completed") lifecycle.push(event.type);
    });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/two" });
    const run = await engine.result(runIds[0] as string);
    expect(run).toMatchObject({ status: "completed", output: 2 });
    expect(recordedBeforeB).toEqual(["a=1"]);
    expect(committed).toEqual(["a"]);
    expect(withEnd).toEqual(["b"]);
    expect((await store.listSteps(run.id)).map((recorded) => [recorded.id, recorded.output])).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    // A step is reported ended once it is recorded: the last one right before its run.
    expect(lifecycle).toEqual(["step-started a", "step-ended a", "step-started b", "step-ended b", "run-completed"]);
  });

  it("ends a handler's parallel last steps with the run, in its statement", async () => {
    const { store, committed, withEnd } = countingStore(createPostgresStore({ pool: database.pool }));
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "fan" }, { event: "demo/fan" }, async ({ step }) => {
      const [x, y] = await Promise.all([step.run("x", () => "x"), step.run("y", () => "y")]);
      return x + y;
    });
    await using engine = await createTestEngine({ clients: [stepwise], store });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/fan" });
    expect(await engine.result(runIds[0] as string)).toMatchObject({ status: "completed", output: "xy" });
    expect(committed).toEqual([]);
    expect(withEnd.sort()).toEqual(["x", "y"]);
    expect((await store.listSteps(runIds[0] as string)).map((recorded) => recorded.id).sort()).toEqual(["x", "y"]);
  });

  it("records a step before a failure, a suspension or a published message reports on it", async () => {
    const { store, committed } = countingStore(createPostgresStore({ pool: database.pool }));
    const clock = new FakeClock();
    const memory = createMemoryRealtime({ clock });
    // What the store held for the run as each message went out.
    const recordedAtPublish: string[][] = [];
    const realtime = {
      ...memory,
      async publish(message: Parameters<typeof memory.publish>[0]) {
        if (message.topic === "progress") {
          const runId = (message.data as { runId: string }).runId;
          recordedAtPublish.push((await store.listSteps(runId)).map((recorded) => recorded.id));
        }
        return memory.publish(message);
      },
    };
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "fails" }, { event: "demo/fails" }, async ({ step }) => {
      await step.run("before-failure", () => "done");
      throw new NonRetriableError("no");
    });
    stepwise.createFunction({ id: "sleeps" }, { event: "demo/sleeps" }, async ({ step }) => {
      await step.run("before-sleep", () => "done");
      await step.sleep("nap", "1h");
    });
    stepwise.createFunction({ id: "publishes" }, { event: "demo/publishes" }, async ({ step, publish, runId }) => {
      await step.run("before-publish", () => "done");
      await publish({ channel: `run:${runId}:progress`, topic: "progress", data: { runId } });
      return "published";
    });
    await using engine = await createTestEngine({ clients: [stepwise], store, clock, realtime });
    const [failing, sleeping, publishing] = await Promise.all(
      ["demo/fails", "demo/sleeps", "demo/publishes"].map(async (name) => (await engine.sendAndGetRuns({ name })).runIds[0] as string),
    );
    expect(await engine.result(failing as string)).toMatchObject({ status: "failed", error: { message: "no" } });
    expect(await engine.result(publishing as string)).toMatchObject({ status: "completed", output: "published" });
    await engine.idle();
    expect((await engine.getRun(sleeping as string))?.status).toBe("sleeping");
    expect(recordedAtPublish).toEqual([["before-publish"]]);
    expect(committed.sort()).toEqual(["before-failure", "before-publish", "before-sleep"]);
    for (const [runId, stepId] of [
      [failing, "before-failure"],
      [sleeping, "before-sleep"],
    ] as const) {
      expect((await store.listSteps(runId as string)).filter((recorded) => recorded.kind === "run").map((recorded) => recorded.id)).toEqual([stepId]);
    }
  });

  it("stops the pass when a deferred commit fails: a catch around the next step never sees it, and a later pass repeats the step", async () => {
    const postgres = createPostgresStore({ pool: database.pool });
    let failures = 1;
    const { store } = countingStore(postgres, {
      commitStep: async (input) => {
        if (failures-- > 0) throw new Error("connection reset");
        return postgres.commitStep(input);
      },
    });
    const stepwise = new Stepwise({ id: "app" });
    const bodies: string[] = [];
    stepwise.createFunction({ id: "careful" }, { event: "demo/careful" }, async ({ step }) => {
      const first = await step.run("first", () => bodies.push("first"));
      try {
        await step.run("second", () => bodies.push("second"));
      } catch {
        // Carrying on here would build on a result of "first" that was never recorded.
        return "fallback";
      }
      return first;
    });
    await using engine = await createTestEngine({ clients: [stepwise], store, leaseMs: 60_000 });
    const aborted: string[] = [];
    engine.on((event: LifecycleEvent) => event.type === "run-aborted" && aborted.push(event.reason));
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/careful" });
    await engine.idle();
    expect(bodies).toEqual(["first"]);
    expect(aborted).toEqual(["a step's result could not be recorded: connection reset"]);
    await engine.advance("1d");
    expect(await engine.result(runIds[0] as string)).toMatchObject({ status: "completed", output: 2 });
    expect(bodies).toEqual(["first", "first", "second"]);
  });

  it("stops the pass when a deferred commit finds the lease lost: the next body never runs, and a later pass repeats the step", async () => {
    const postgres = createPostgresStore({ pool: database.pool });
    let refusals = 1;
    const { store } = countingStore(postgres, {
      commitStep: async (input) => {
        if (refusals-- > 0) return { ok: false };
        return postgres.commitStep(input);
      },
    });
    const stepwise = new Stepwise({ id: "app" });
    const bodies: string[] = [];
    stepwise.createFunction({ id: "fenced" }, { event: "demo/fenced" }, async ({ step }) => {
      await step.run("first", () => bodies.push("first"));
      await step.run("second", () => bodies.push("second"));
      return bodies.length;
    });
    await using engine = await createTestEngine({ clients: [stepwise], store, leaseMs: 60_000 });
    const aborted: string[] = [];
    engine.on((event: LifecycleEvent) => event.type === "run-aborted" && aborted.push(event.reason));
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/fenced" });
    await engine.idle();
    expect(bodies).toEqual(["first"]);
    expect(aborted).toEqual([expect.stringMatching(/lease on run .* was lost/)]);
    expect(await store.listSteps(runIds[0] as string)).toEqual([]);
    // The lease runs out, and the reconciler (daily in a test engine) hands the run to a new pass, which executes from the top.
    await engine.advance("1d");
    expect(await engine.result(runIds[0] as string)).toMatchObject({ status: "completed", output: 3 });
    expect(bodies).toEqual(["first", "first", "second"]);
  });
});
