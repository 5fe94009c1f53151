import { ErrorCode, MAX_EVENT_BYTES, Stepwise, StepwiseError } from "@stepwise/core";
import { createTestEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";

async function rejection(promise: Promise<unknown>): Promise<StepwiseError> {
  try {
    await promise;
  } catch (error) {
    if (StepwiseError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("the client through an in-process engine", () => {
  it("invokes a function and awaits its result; send() answers ids whose runs can be awaited", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const add = stepwise.createFunction({ id: "add" }, { event: "math/add" }, async ({ event, step }) => {
      return step.run("sum", () => (event.data["a"] as number) + (event.data["b"] as number));
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    expect(await stepwise.invoke(add, { a: 2, b: 3 })).toBe(5);
    const { ids } = await stepwise.send({ name: "math/add", data: { a: 1, b: 1 } });
    const [run] = await stepwise.runs(ids[0] as string);
    expect(run?.functionId).toBe("add");
    expect((await stepwise.waitForRun(run?.id as string)).output).toBe(2);
    void engine;
  });

  it("rejects stepwise.invoke with INVOKE_TIMEOUT when the run takes longer, and the run goes on", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const slow = stepwise.createFunction({ id: "slow" }, { event: "demo/slow" }, async ({ step }) => {
      await step.sleep("long", "1h");
      return "late";
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const error = await rejection(stepwise.invoke(slow, {}, { timeout: 200 }));
    expect(error.code).toBe(ErrorCode.InvokeTimeout);
    expect(error.message).toMatch(/got no result within 200 ms/);
    const runId = error.details["runId"] as string;
    await engine.advance("1h");
    expect((await engine.result(runId)).output).toBe("late");
  });

  it("accepts the newer createFunction form and explains bad step calls", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const errors: string[] = [];
    stepwise.createFunction(
      { id: "newer-form", triggers: [{ event: "demo/a" }, { event: "demo/b", if: "event.data.go == true" }] },
      async ({ event, step }) => {
        for (const call of [
          () => step.run("", () => 1),
          () => step.run("no-fn", undefined as never),
          () => step.sleep("bad-duration", "soon"),
          () => step.waitForEvent("bad-match", { event: "x", timeout: "1h", match: "data.[0]" }),
          () => step.invoke("bad-target", { function: 42 as never }),
        ]) {
          try {
            await call();
          } catch (error) {
            // Both runs start at once: keep one run's messages, in its order.
            if (event.name === "demo/a") errors.push((error as Error).message);
          }
        }
        await step.sleepUntil("in-the-past", new Date(0));
        return event.name;
      },
    );
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { ids } = await engine.send([{ name: "demo/a" }, { name: "demo/b", data: { go: false } }, { name: "demo/b", data: { go: true } }]);
    const started = await Promise.all(ids.map((id) => engine.runsForEvent(id)));
    expect(started.map((runs) => runs.length)).toEqual([1, 0, 1]);
    expect((await engine.result(started[0]?.[0]?.id as string)).output).toBe("demo/a");
    expect(errors).toEqual([
      'step.run: the first argument must be a non-empty step id, e.g. step.run("send-email", ...)',
      "step.run: the second argument must be a function",
      'step.sleep("bad-duration"): "soon" is not a duration; use milliseconds or a string such as "30s", "15m", "7d"',
      'step.waitForEvent: match must be a field path such as "data.userId", got "data.[0]"',
      "step.invoke: options.function must be a function returned by createFunction, or its id",
    ]);
  });

  it("deduplicates events by id for 24 hours", async () => {
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "once" }, { event: "order/placed" }, async () => "ok");
    await using engine = await createTestEngine({ clients: [stepwise] });
    const first = await stepwise.send({ name: "order/placed", id: "order-1", data: {} });
    const second = await stepwise.send({ name: "order/placed", id: "order-1", data: {} });
    expect(second.ids).toEqual(first.ids);
    expect(await stepwise.runs(first.ids[0] as string)).toHaveLength(1);
    await engine.advance("24h");
    await engine.advance("1s");
    const third = await stepwise.send({ name: "order/placed", id: "order-1", data: {} });
    expect(third.ids).not.toEqual(first.ids);
    expect(await stepwise.runs(third.ids[0] as string)).toHaveLength(1);
  });

  it("validates event data against the client's schemas", async () => {
    const stepwise = new Stepwise({ id: "app", schemas: { "user.created": z.object({ userId: z.string() }) } });
    const seen: string[] = [];
    stepwise.createFunction({ id: "typed" }, { event: "user.created" }, async ({ event }) => {
      // event.data.userId is typed as string by the schema.
      seen.push(event.data.userId.toUpperCase());
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const error = await rejection(stepwise.send({ name: "user.created", data: { userId: 42 as unknown as string } }));
    expect(error.code).toBe(ErrorCode.InvalidEventPayload);
    expect(error.message).toMatch(/data\.userId/);
    const { ids } = await stepwise.send({ name: "user.created", data: { userId: "ab" } });
    const [run] = await stepwise.runs(ids[0] as string);
    await stepwise.waitForRun(run?.id as string);
    expect(seen).toEqual(["AB"]);
    void engine;
  });
});

describe("bad input gets a clear error and loses nothing already accepted", () => {
  it("rejects an event without a name, an oversized event and an unknown function", async () => {
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "sink" }, { event: "demo/ok" }, async ({ step }) => step.run("s", () => "fine"));
    await using engine = await createTestEngine({ clients: [stepwise] });
    const accepted = await stepwise.send({ name: "demo/ok" });

    const noName = await rejection(engine.send([{ name: "demo/ok" }, { data: {} } as never]));
    expect(noName.code).toBe(ErrorCode.InvalidEventPayload);
    expect(noName.message).toBe('events[1].name: an event needs a name, e.g. { name: "user.created" }');

    const big = await rejection(engine.send({ name: "demo/ok", data: { blob: "x".repeat(MAX_EVENT_BYTES) } }));
    expect(big.code).toBe(ErrorCode.EventTooLarge);
    expect(big.message).toMatch(/the limit is 524288 bytes/);

    const unknown = await rejection(stepwise.invoke("nope", {}));
    expect(unknown.code).toBe(ErrorCode.FunctionNotFound);
    expect(unknown.message).toMatch(/no function with id "nope".*known: app\/sink/);

    // The batch with a bad event was refused whole; the event accepted earlier still ran.
    const [run] = await stepwise.runs(accepted.ids[0] as string);
    expect((await stepwise.waitForRun(run?.id as string)).output).toBe("fine");
    expect((await engine.store.listRuns({})).map((item) => item.functionId)).toEqual(["app/sink"]);
  });

  it("rejects invalid function configuration at createFunction, naming the option", () => {
    const stepwise = new Stepwise({ id: "app" });
    const attempt = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as Error).message;
      }
      return "no error";
    };
    const noop = async () => {};
    expect(attempt(() => stepwise.createFunction({ id: "x", retries: 21 }, { event: "e" }, noop))).toBe(
      'createFunction("x"): retries: retries must be at most 20',
    );
    expect(attempt(() => stepwise.createFunction({ id: "y" }, { event: "e", if: "event.data ==" }, noop))).toMatch(
      /^createFunction\("y"\): triggers\[0\]\.if: .* is not a valid CEL expression/,
    );
    expect(attempt(() => stepwise.createFunction({ id: "z" }, { cron: "61 * * * *" }, noop))).toMatch(
      /^createFunction\("z"\): triggers\[0\]\.cron: "61 \* \* \* \*"/,
    );
    expect(attempt(() => stepwise.createFunction({ id: "w", triggers: [] }, noop))).toMatch(/give 1 to 10 triggers, got 0/);
    expect(attempt(() => stepwise.createFunction({ id: "v", concurrency: 0 }, { event: "e" }, noop))).toMatch(/concurrency must be at least 1/);
    stepwise.createFunction({ id: "dup" }, { event: "e" }, noop);
    expect(attempt(() => stepwise.createFunction({ id: "dup" }, { event: "e" }, noop))).toMatch(/already exists/);
  });
});
