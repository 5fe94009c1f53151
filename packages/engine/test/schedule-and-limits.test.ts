import { Stepwise } from "@stepwise/core";
import { createEngine, createMemoryQueue } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite } from "@stepwise/postgres/testing";
import { createTestEngine, FakeClock } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe("cron", () => {
  it("starts one run per tick in the trigger's time zone", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const ticks: string[] = [];
    stepwise.createFunction({ id: "lisbon-9am" }, { cron: "0 9 * * *", timezone: "America/New_York" }, async ({ event, step }) => {
      await step.run("report", () => ticks.push(new Date(event.ts).toISOString()));
    });
    // 2030-01-01T00:00Z; 9:00 in New York (UTC-5) is 14:00Z.
    await using engine = await createTestEngine({ clients: [stepwise] });
    await engine.advance("13h59m");
    expect(ticks).toEqual([]);
    await engine.advance("1m");
    await engine.advance("24h");
    expect(ticks).toEqual(["2030-01-01T14:00:00.000Z", "2030-01-02T14:00:00.000Z"]);
  });

  it("starts exactly one run per tick when two schedulers share the database", async () => {
    const database = await createTestPglite();
    const store = createPostgresStore({ pool: database.pool });
    const clock = new FakeClock();
    const engines = [1, 2].map(() => {
      const stepwise = new Stepwise({ id: "app" });
      stepwise.createFunction({ id: "every-minute" }, { cron: "* * * * *" }, async () => "tick");
      return createEngine({ store, queue: createMemoryQueue({ clock }), clock, clients: [stepwise], reconcileIntervalMs: 86_400_000 });
    });
    try {
      for (const engine of engines) await engine.start();
      const created: string[] = [];
      for (const engine of engines) engine.on((event) => event.type === "cron-tick" && event.runId && created.push(event.runId));
      clock.onSettle(async () => {
        for (const engine of engines) await engine.idle();
      });
      await clock.advance("10m");
      const runs = await store.listRuns({ functionId: "app/every-minute", limit: 100 });
      expect(runs).toHaveLength(10);
      expect(created).toHaveLength(10);
      expect(new Set(runs.map((run) => run.eventId)).size).toBe(10);
    } finally {
      for (const engine of engines) await engine.stop();
      await database.close();
    }
  });
});

describe("concurrency", () => {
  it("executes at most `limit` runs of a function at once; sleeping runs hold no slot", async () => {
    const stepwise = new Stepwise({ id: "app" });
    let running = 0;
    let maxRunning = 0;
    stepwise.createFunction({ id: "limited", concurrency: { limit: 5 } }, { event: "demo/limited" }, async ({ step }) => {
      await step.sleep("first-sleep", "1s");
      await step.run("work", async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 30));
        running--;
      });
      return "done";
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns(Array.from({ length: 20 }, () => ({ name: "demo/limited" })));
    await engine.idle();
    // All 20 passed the sleep's first pass at once: sleeping needs no slot.
    const sleeping = await engine.store.listRuns({ functionId: "app/limited", status: "sleeping", limit: 100 });
    expect(sleeping).toHaveLength(20);
    await engine.advance("1s");
    for (const runId of runIds) expect((await engine.result(runId)).status).toBe("completed");
    expect(maxRunning).toBe(5);
  });
});
