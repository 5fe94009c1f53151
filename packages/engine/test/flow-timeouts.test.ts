import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it, vi } from "vitest";

// Runs here hold still inside a step while the fake clock moves: a lease (and so a heartbeat)
// longer than the test's deadlines keeps the clock from waiting on them before the deadline.
const LEASE_MS = 4 * 3600_000;

describe.each(BACKENDS)("timeouts on %s", (backend) => {
  it("cancels a run not started within timeouts.start, and it never executes", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const executed: number[] = [];
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    stepwise.createFunction({ id: "serial", concurrency: 1, timeouts: { start: "10s" } }, { event: "job/run" }, async ({ event, step }) => {
      await step.run("work", async () => {
        executed.push(event.data["n"] as number);
        if (event.data["n"] === 0) await held;
      });
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise], leaseMs: LEASE_MS });
    const { runIds } = await engine.sendAndGetRuns([0, 1, 2].map((n) => ({ name: "job/run", data: { n } })));
    await vi.waitFor(() => expect(executed).toEqual([0]), { timeout: 10_000 });
    // Not awaited: the clock settles only once the held run ends.
    const advancing = engine.clock.advance("10s");
    try {
      // The sweep cancels them one after the other, in no promised order: wait for both.
      for (const runId of [runIds[1], runIds[2]]) {
        await vi.waitFor(async () => expect((await engine.getRun(runId as string))?.status).toBe("cancelled"), { timeout: 10_000 });
      }
      expect((await engine.getRun(runIds[1] as string))?.error?.message).toBe("timeouts.start: not started within 10000 ms of its event");
    } finally {
      // Whatever happened above, the held run ends, so that the engine can stop.
      release?.();
    }
    await advancing;
    await engine.idle();
    // The one that had started is not touched by the start deadline.
    expect((await engine.result(runIds[0] as string)).status).toBe("completed");
    expect(executed).toEqual([0]);
  });

  it("cancels a run not finished within timeouts.finish of its start: sleeping, or executing a step", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const started: string[] = [];
    stepwise.createFunction({ id: "bounded", timeouts: { finish: "30m" } }, { event: "job/run" }, async ({ event, step, signal }) => {
      started.push(String(event.data["mode"]));
      if (event.data["mode"] === "sleep") await step.sleep("long", "1h");
      if (event.data["mode"] === "busy") await step.run("stuck", () => new Promise((resolve) => signal.addEventListener("abort", resolve)));
      return "finished";
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise], leaseMs: LEASE_MS });
    const finished = "timeouts.finish: not finished within 1800000 ms of its start";
    const { runIds } = await engine.sendAndGetRuns([
      { name: "job/run", data: { mode: "sleep" } },
      { name: "job/run", data: { mode: "quick" } },
    ]);
    expect((await engine.result(runIds[1] as string)).output).toBe("finished");
    await engine.advance("29m");
    expect((await engine.getRun(runIds[0] as string))?.status).toBe("sleeping");
    await engine.advance("1m");
    expect(await engine.result(runIds[0] as string)).toMatchObject({ status: "cancelled", error: { message: finished } });

    // A run stuck in a step: its pass is aborted at the deadline. (The clock is not awaited: it
    // settles once the pass has ended, which is what the deadline does.)
    const { runIds: busy } = await engine.sendAndGetRuns({ name: "job/run", data: { mode: "busy" } });
    await vi.waitFor(() => expect(started).toContain("busy"), { timeout: 10_000 });
    const advancing = engine.clock.advance("30m");
    expect(await engine.result(busy[0] as string)).toMatchObject({ status: "cancelled", error: { message: finished } });
    await advancing;
    await engine.advance("1h");
    expect((await engine.getRun(runIds[0] as string))?.status).toBe("cancelled");
  });
});
