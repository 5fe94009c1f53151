import { ErrorCode, StepError, Stepwise } from "@stepwise/core";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe("step.sleep and step.sleepUntil", () => {
  it("suspends until the wake time and not a millisecond earlier", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const woke: number[] = [];
    stepwise.createFunction({ id: "sleeper" }, { event: "demo/sleep" }, async ({ step }) => {
      await step.sleep("nap", "7d");
      await step.run("after-nap", () => woke.push(engine.clock.now()));
      await step.sleepUntil("until", new Date(Date.UTC(2030, 0, 20)));
      return step.run("done", () => "done");
    });
    const engine = await createTestEngine({ clients: [stepwise] });
    try {
      const start = engine.clock.now();
      const { runIds } = await engine.sendAndGetRuns({ name: "demo/sleep" });
      await engine.advance(7 * 24 * 3600 * 1000 - 1);
      expect(woke).toEqual([]);
      expect((await engine.getRun(runIds[0] as string))?.status).toBe("sleeping");
      await engine.advance(1);
      expect(woke).toEqual([start + 7 * 24 * 3600 * 1000]);
      await engine.advanceTo(Date.UTC(2030, 0, 20));
      const run = await engine.result(runIds[0] as string);
      expect(run.output).toBe("done");
    } finally {
      await engine.close();
    }
  });
});

/** Sends one event and answers the ids of the runs of "waiter" and "if-waiter", in that order. */
async function runsByFunction(engine: TestEngine, event: { name: string; data: Record<string, unknown> }): Promise<[string, string]> {
  const { ids } = await engine.send(event);
  const runs = await engine.runsForEvent(ids[0] as string);
  const byFunction = new Map(runs.map((run) => [run.functionId, run.id]));
  return [byFunction.get("waiter") as string, byFunction.get("if-waiter") as string];
}

describe("step.waitForEvent", () => {
  function setup() {
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "waiter" }, { event: "order/created" }, async ({ step }) => {
      const paid = await step.waitForEvent("wait-paid", { event: "order/paid", timeout: "1h", match: "data.orderId" });
      return paid ? { paid: paid.data } : { paid: null };
    });
    stepwise.createFunction({ id: "if-waiter" }, { event: "order/created" }, async ({ step }) => {
      const big = await step.waitForEvent("wait-big", {
        event: "order/paid",
        timeout: "1h",
        if: "async.data.orderId == event.data.orderId && async.data.amount > 100",
      });
      return big?.data["amount"] ?? null;
    });
    return stepwise;
  }

  it("returns the matching event and ignores others", async () => {
    await using engine = await createTestEngine({ clients: [setup()] });
    const [waiter, ifWaiter] = await runsByFunction(engine, { name: "order/created", data: { orderId: "o1" } });
    await engine.idle();
    await engine.send([
      { name: "order/paid", data: { orderId: "other", amount: 500 } },
      { name: "order/shipped", data: { orderId: "o1" } },
    ]);
    await engine.idle();
    expect((await engine.getRun(waiter))?.status).toBe("waiting");
    await engine.send({ name: "order/paid", data: { orderId: "o1", amount: 50 } });
    expect((await engine.result(waiter)).output).toEqual({ paid: { orderId: "o1", amount: 50 } });
    await engine.idle();
    // amount 50 fails the `if`: still waiting.
    expect((await engine.getRun(ifWaiter))?.status).toBe("waiting");
    await engine.send({ name: "order/paid", data: { orderId: "o1", amount: 150 } });
    expect((await engine.result(ifWaiter)).output).toBe(150);
  });

  it("returns null when the timeout passes first", async () => {
    await using engine = await createTestEngine({ clients: [setup()] });
    const [waiter, ifWaiter] = await runsByFunction(engine, { name: "order/created", data: { orderId: "o2" } });
    await engine.advance("59m");
    expect((await engine.getRun(waiter))?.status).toBe("waiting");
    await engine.advance("1m");
    expect((await engine.result(waiter)).output).toEqual({ paid: null });
    expect((await engine.result(ifWaiter)).output).toBeNull();
    // An event after the timeout changes nothing.
    await engine.send({ name: "order/paid", data: { orderId: "o2", amount: 999 } });
    await engine.idle();
    expect((await engine.getRun(waiter))?.output).toEqual({ paid: null });
  });
});

describe("step.invoke", () => {
  it("returns the child's output, and a StepError when the child fails or does not exist", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const child = stepwise.createFunction({ id: "child" }, { event: "demo/child" }, async ({ event, step }) => {
      return step.run("double", () => (event.data["n"] as number) * 2);
    });
    const failing = stepwise.createFunction({ id: "failing-child", retries: 0 }, { event: "demo/failing" }, async () => {
      throw new Error("child broke");
    });
    stepwise.createFunction({ id: "parent" }, { event: "demo/parent" }, async ({ step }) => {
      const doubled = await step.invoke("call-child", { function: child, data: { n: 21 } });
      const errors: string[] = [];
      for (const target of [failing, "no-such-function"]) {
        try {
          await step.invoke(`call-${typeof target === "string" ? target : target.id}`, { function: target });
        } catch (error) {
          errors.push(`${(error as StepError).error.code}: ${(error as StepError).message}`);
        }
      }
      return { doubled, errors };
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/parent" });
    const run = await engine.result(runIds[0] as string);
    expect(run.output).toEqual({
      doubled: 42,
      errors: [
        expect.stringMatching(/^STEP_FAILED: .*failing-child failed: child broke/),
        expect.stringMatching(/^FUNCTION_NOT_FOUND: .*no function with id "no-such-function"/),
      ],
    });
  });

  it("fails with INVOKE_TIMEOUT when the child takes longer than the timeout", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const slow = stepwise.createFunction({ id: "slow" }, { event: "demo/slow" }, async ({ step }) => {
      await step.sleep("long", "2h");
      return "late";
    });
    stepwise.createFunction({ id: "impatient" }, { event: "demo/impatient" }, async ({ step }) => {
      try {
        return await step.invoke("call-slow", { function: slow, timeout: "1h" });
      } catch (error) {
        return StepError.isInstance(error) ? error.error.code : "other";
      }
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/impatient" });
    await engine.advance("1h");
    expect((await engine.result(runIds[0] as string)).output).toBe(ErrorCode.InvokeTimeout);
  });
});

describe("step.sendEvent", () => {
  it("starts the subscribed functions, once, even when the sender replays", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const received: unknown[] = [];
    stepwise.createFunction({ id: "sender" }, { event: "demo/send" }, async ({ step }) => {
      const { ids } = await step.sendEvent("fan-out", [
        { name: "demo/hello", data: { to: "a" } },
        { name: "demo/hello", data: { to: "b" } },
      ]);
      await step.sleep("then-wait", "1s"); // forces a replay after the send
      return ids;
    });
    stepwise.createFunction({ id: "receiver" }, { event: "demo/hello" }, async ({ event, step }) => {
      await step.run("record", () => received.push(event.data["to"]));
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/send" });
    await engine.advance("1s");
    const run = await engine.result(runIds[0] as string);
    const ids = run.output as string[];
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(await engine.runsForEvent(id)).toHaveLength(1);
    expect(received.sort()).toEqual(["a", "b"]);
  });
});

describe("parallel steps", () => {
  it("runs each step of Promise.all once, concurrently, and checkpoints each", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const calls = new Map<string, number>();
    let running = 0;
    let maxRunning = 0;
    const body = (id: string) => async () => {
      calls.set(id, (calls.get(id) ?? 0) + 1);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
      return id.toUpperCase();
    };
    stepwise.createFunction({ id: "fan" }, { event: "demo/fan" }, async ({ step }) => {
      const [a, b, c] = await Promise.all([step.run("a", body("a")), step.run("b", body("b")), step.run("c", body("c"))]);
      await Promise.all([step.sleep("s1", "1m"), step.run("d", body("d"))]);
      const e = await step.run("e", body("e"));
      return [a, b, c, e];
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/fan" });
    await engine.advance("1m");
    const run = await engine.result(runIds[0] as string);
    expect(run.output).toEqual(["A", "B", "C", "E"]);
    expect(Object.fromEntries(calls)).toEqual({ a: 1, b: 1, c: 1, d: 1, e: 1 });
    expect(maxRunning).toBe(3);
  });

  it("gives repeated ids their own identity (`:n`)", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let calls = 0;
    stepwise.createFunction({ id: "loop" }, { event: "demo/loop" }, async ({ step }) => {
      const out: number[] = [];
      for (let index = 0; index < 3; index++) out.push(await step.run("item", () => ++calls));
      await step.sleep("pause", "1s");
      return out;
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "demo/loop" });
    await engine.advance("1s");
    expect((await engine.result(runIds[0] as string)).output).toEqual([1, 2, 3]);
    expect(calls).toBe(3);
  });
});
