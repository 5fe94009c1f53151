import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it, vi } from "vitest";

describe.each(BACKENDS)("throttle and priority on %s", (backend) => {
  it("throttles starts to the limit per period, per key, and drops none", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const starts = new Map<string, number[]>();
    stepwise.createFunction({ id: "paced", throttle: { limit: 2, period: "1s", key: "event.data.userId" } }, { event: "api/call" }, async ({ event, step }) => {
      await step.run("call", () => {
        const userId = String(event.data["userId"]);
        starts.set(userId, [...(starts.get(userId) ?? []), engine.clock.now()]);
      });
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const t0 = engine.clock.now();
    const { runIds } = await engine.sendAndGetRuns([
      ...Array.from({ length: 9 }, () => ({ name: "api/call", data: { userId: "a" } })),
      ...Array.from({ length: 3 }, () => ({ name: "api/call", data: { userId: "b" } })),
    ]);
    await engine.advance("5s");
    for (const runId of runIds) expect((await engine.result(runId)).status).toBe("completed");
    const a = (starts.get("a") ?? []).map((at) => at - t0);
    const b = (starts.get("b") ?? []).map((at) => at - t0);
    expect(a).toHaveLength(9);
    expect(b).toHaveLength(3);
    // One start every period / limit (500 ms), per key: never more than 2 in any second.
    expect(a).toEqual([0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000]);
    expect(b).toEqual([0, 500, 1000]);
    for (const at of a) expect(a.filter((other) => other >= at && other < at + 1000).length).toBeLessThanOrEqual(2);
  });

  it("starts a run with a higher priority ahead of runs queued before it, and delays a negative one", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const order: string[] = [];
    let release: (() => void) | undefined;
    const first = new Promise<void>((resolve) => {
      release = resolve;
    });
    stepwise.createFunction(
      { id: "ranked", concurrency: 1, priority: { run: "event.data.tier == 'enterprise' ? 120 : (event.data.tier == 'batch' ? -60 : 0)" } },
      { event: "report/requested" },
      async ({ event, step }) => {
        await step.run("build", async () => {
          order.push(String(event.data["name"]));
          if (event.data["name"] === "holder") await first;
        });
      },
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    await engine.send({ name: "report/requested", data: { name: "holder" } });
    await vi.waitFor(() => expect(order).toEqual(["holder"]), { timeout: 10_000 });
    await engine.send([
      { name: "report/requested", data: { name: "free-1" } },
      { name: "report/requested", data: { name: "free-2" } },
    ]);
    await engine.send({ name: "report/requested", data: { name: "enterprise", tier: "enterprise" } });
    await engine.send({ name: "report/requested", data: { name: "batch", tier: "batch" } });
    release?.();
    await engine.idle();
    expect(order).toEqual(["holder", "enterprise", "free-1", "free-2"]);
    // The negative priority holds the batch run back by its 60 s, even with the queue empty.
    await engine.advance("59s");
    expect(order).toHaveLength(4);
    await engine.advance("1s");
    expect(order).toEqual(["holder", "enterprise", "free-1", "free-2", "batch"]);
  });
});
