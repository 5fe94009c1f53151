import { Stepwise } from "@stepwise/core";
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
