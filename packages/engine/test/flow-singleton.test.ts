import { Stepwise } from "@stepwise/core";
import { createEngine, createMemoryQueue, createSystemClock, SINGLETON_CANCELLED } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite } from "@stepwise/postgres/testing";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it, vi } from "vitest";

describe.each(BACKENDS)("singleton on %s", (backend) => {
  it('skips a new event of a key while a run of it has not ended ("skip"), per key', async () => {
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "sync", singleton: { key: "event.data.userId", mode: "skip" } }, { event: "user/changed" }, async ({ step }) => {
      await step.sleep("settle", "1m");
      return "synced";
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const changed = (userId: string) => ({ name: "user/changed", data: { userId } });
    await engine.send([changed("a"), changed("a"), changed("b")]);
    await engine.idle();
    await engine.send(changed("a"));
    await engine.idle();
    const runs = async (status: "sleeping" | "skipped" | "completed") => (await engine.listRuns({ functionId: "app/sync", status, limit: 100 })).length;
    expect(await runs("sleeping")).toBe(2);
    expect(await runs("skipped")).toBe(2);
    const [skipped] = await engine.listRuns({ functionId: "app/sync", status: "skipped", limit: 1 });
    expect(skipped?.error).toMatchObject({ code: "RUN_SKIPPED", message: expect.stringMatching(/^singleton: run run_\w+ of key "a" has not ended/) });
    // Once the run of "a" ended, the next event of "a" starts one.
    await engine.advance("1m");
    expect(await runs("completed")).toBe(2);
    await engine.send(changed("a"));
    await engine.idle();
    expect(await runs("sleeping")).toBe(1);
  });

  it('cancels the run of a key for a new event of it ("cancel"), aborting its pass', async () => {
    const stepwise = new Stepwise({ id: "app" });
    const started: string[] = [];
    stepwise.createFunction(
      { id: "search", singleton: { key: "event.data.session", mode: "cancel" } },
      { event: "search/typed" },
      async ({ event, step, signal }) => {
        await step.run("query", async () => {
          started.push(String(event.data["q"]));
          if (event.data["q"] !== "final") await new Promise((resolve) => signal.addEventListener("abort", resolve));
        });
        return event.data["q"];
      },
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const first = await engine.sendAndGetRuns({ name: "search/typed", data: { session: "s1", q: "ca" } });
    await vi.waitFor(() => expect(started).toEqual(["ca"]), { timeout: 10_000 });
    const other = await engine.sendAndGetRuns({ name: "search/typed", data: { session: "s2", q: "other" } });
    await vi.waitFor(() => expect(started).toContain("other"), { timeout: 10_000 });
    const last = await engine.sendAndGetRuns({ name: "search/typed", data: { session: "s1", q: "final" } });
    expect(await engine.result(first.runIds[0] as string)).toMatchObject({
      status: "cancelled",
      error: { message: "singleton: cancelled for a new event of its key" },
    });
    expect((await engine.result(last.runIds[0] as string)).output).toBe("final");
    // Another key's run was not touched.
    expect((await engine.getRun(other.runIds[0] as string))?.status).toBe("running");
    await engine.cancel(other.runIds[0] as string);
  });

  it('aborts the pass of the run it cancels for a run that step.invoke starts ("cancel"), at once', async () => {
    const stepwise = new Stepwise({ id: "app" });
    const started: string[] = [];
    const aborted: string[] = [];
    const search = stepwise.createFunction(
      { id: "search", singleton: { key: "event.data.session", mode: "cancel" } },
      { event: "search/typed" },
      async ({ event, step }) => {
        const q = String(event.data["q"]);
        await step.run("query", async ({ signal }) => {
          started.push(q);
          if (q === "ca") await new Promise((resolve) => signal.addEventListener("abort", () => resolve(aborted.push(q)), { once: true }));
        });
        return q;
      },
    );
    stepwise.createFunction({ id: "caller" }, { event: "caller/go" }, async ({ event, step }) =>
      step.invoke("search", { function: search, data: { session: event.data["session"], q: event.data["q"] } }),
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const first = await engine.sendAndGetRuns({ name: "search/typed", data: { session: "s1", q: "ca" } });
    await vi.waitFor(() => expect(started).toEqual(["ca"]), { timeout: 10_000 });
    // An invoke starts a run of the key: the running one's step body sees its signal abort (the
    // fake clock never renews a lease, so no heartbeat could have told it).
    const caller = await engine.sendAndGetRuns({ name: "caller/go", data: { session: "s1", q: "final" } });
    expect(await engine.result(caller.runIds[0] as string)).toMatchObject({ status: "completed", output: "final" });
    await vi.waitFor(() => expect(aborted).toEqual(["ca"]), { timeout: 10_000 });
    expect(await engine.result(first.runIds[0] as string)).toMatchObject({ status: "cancelled" });
    expect(started).toEqual(["ca", "final"]);
  });
});

// Cron ticks on the real clock (every second): a tick's run must still be running at the next
// tick, and the fake clock's advance waits for the engine to be idle.
describe("singleton on cron ticks", () => {
  it("skips a tick while the last one runs, or cancels it and aborts its pass at once", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const started: Record<string, number> = { skip: 0, cancel: 0 };
    const aborted: string[] = [];
    for (const mode of ["skip", "cancel"] as const) {
      stepwise.createFunction({ id: `every-second-${mode}`, singleton: { mode } }, { cron: "* * * * * *" }, async ({ step }) => {
        await step.run("work", async ({ signal }) => {
          started[mode] = (started[mode] ?? 0) + 1;
          // Runs until its signal aborts: a tick always finds the last one running.
          await new Promise((resolve) => signal.addEventListener("abort", () => resolve(aborted.push(mode)), { once: true }));
        });
      });
    }
    const database = await createTestPglite();
    const clock = createSystemClock();
    const engine = createEngine({ store: createPostgresStore({ pool: database.pool }), queue: createMemoryQueue({ clock }), clock, clients: [stepwise] });
    const skipped: string[] = [];
    engine.on((event) => event.type === "run-skipped" && skipped.push(event.functionId));
    await engine.start();
    try {
      // cancel: each tick replaces the run before, whose body sees its signal abort at once (a
      // heartbeat would tell it only after 10 s); skip: each tick's run is recorded skipped.
      await vi.waitFor(() => expect(aborted).toContain("cancel"), { timeout: 10_000 });
      await vi.waitFor(() => expect(skipped).toContain("app/every-second-skip"), { timeout: 10_000 });
      expect(started["skip"]).toBe(1);
      expect(aborted).not.toContain("skip");
      expect(skipped).not.toContain("app/every-second-cancel");
      const cancelled = await engine.listRuns({ functionId: "every-second-cancel", status: "cancelled" });
      expect(cancelled[0]?.error?.message).toBe(SINGLETON_CANCELLED);
    } finally {
      await engine.stop({ graceMs: 0 });
      await database.close();
    }
  });
});
