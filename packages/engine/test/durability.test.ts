import { Stepwise } from "@stepwise/core";
import { createEngine, createMemoryQueue } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPglite } from "@stepwise/postgres/testing";
import { createTestEngine, FakeClock } from "@stepwise/testing";
import { describe, expect, it, vi } from "vitest";

describe("leases", () => {
  it("rejects the late write of a worker whose lease was taken over; the recorded result stands", async () => {
    const database = await createTestPglite();
    const store = createPostgresStore({ pool: database.pool });
    const clock = new FakeClock();
    let releaseA: () => void = () => {};
    const bodies: string[] = [];
    const aborts: unknown[] = [];
    const define = (worker: "A" | "B") => {
      const stepwise = new Stepwise({ id: "app" });
      stepwise.createFunction({ id: "contended" }, { event: "demo/contended" }, async ({ step, signal: handlerSignal }) => {
        const value = await step.run("write", async ({ signal }) => {
          bodies.push(worker);
          // A's body is a call that would run long; it heeds its signal, as fetch(url, { signal }) does.
          if (worker === "A") {
            await new Promise<void>((resolve) => {
              releaseA = resolve;
              signal.addEventListener("abort", () => {
                aborts.push(signal.reason, handlerSignal.aborted);
                resolve();
              });
            });
          }
          return `written by ${worker}`;
        });
        return value;
      });
      return stepwise;
    };
    const engineA = createEngine({ store, queue: createMemoryQueue({ clock }), clock, clients: [define("A")], workerId: "A", reconcileIntervalMs: 86_400_000 });
    const engineB = createEngine({ store, queue: createMemoryQueue({ clock }), clock, clients: [define("B")], workerId: "B", reconcileIntervalMs: 86_400_000 });
    try {
      await engineA.start();
      const { ids } = await engineA.send({ name: "demo/contended" });
      // Only A's queue holds the run; wait until A is inside the step body.
      await vi.waitFor(() => expect(bodies).toHaveLength(1));
      const [run] = await store.listRunsForEvent(ids[0] as string);
      const runId = run?.id as string;
      // A stalls (think GC pause) past its lease: at +60 s the run is recovered, and B claims it.
      const recovered = await store.recoverLeases({ now: clock.now() + 60_000 });
      expect(recovered.map((item) => item.id)).toEqual([runId]);
      const aborted = new Promise((resolve) => engineA.on((event) => event.type === "run-aborted" && resolve(event)));
      await engineB.start();
      // A's next heartbeat finds the lease gone: its pass is aborted and the body's signal fires,
      // while the body is still running (it was never released).
      await clock.advance(60_000);
      expect(await aborted).toMatchObject({ type: "run-aborted", runId, reason: expect.stringContaining("lease") });
      expect(aborts).toEqual([expect.objectContaining({ name: "LeaseLostError" }), true]);
      const done = await engineB.waitForRun(runId, { timeoutMs: 10_000 });
      expect(done.output).toBe("written by B");
      // Even a body that ran on and returned has its result dropped, never committed.
      releaseA();
      const steps = await store.listSteps(runId);
      expect(steps).toHaveLength(1);
      expect(steps[0]?.output).toBe("written by B");
      expect((await store.getRun(runId))?.output).toBe("written by B");
      expect(bodies).toEqual(["A", "B"]);
    } finally {
      releaseA();
      await engineA.stop();
      await engineB.stop();
      await database.close();
    }
  });
});

describe("code changes", () => {
  it("never re-runs a completed step after the function gains a new step at the end", async () => {
    const database = await createTestPglite();
    const store = createPostgresStore({ pool: database.pool });
    const clock = new FakeClock();
    const calls: string[] = [];
    const version1 = new Stepwise({ id: "app" });
    version1.createFunction({ id: "evolving" }, { event: "demo/evolve" }, async ({ step }) => {
      await step.run("first", () => calls.push("first"));
      await step.run("second", () => calls.push("second"));
      await step.sleep("wait", "1h");
      return "v1";
    });
    const version2 = new Stepwise({ id: "app" });
    version2.createFunction({ id: "evolving" }, { event: "demo/evolve" }, async ({ step }) => {
      await step.run("first", () => calls.push("first"));
      await step.run("second", () => calls.push("second"));
      await step.sleep("wait", "1h");
      await step.run("third", () => calls.push("third"));
      return "v2";
    });
    const v1 = await createTestEngine({ clients: [version1], store, clock });
    const { runIds } = await v1.sendAndGetRuns({ name: "demo/evolve" });
    await v1.idle();
    await v1.stop();
    // Deploy version 2 on the same database.
    const v2 = await createTestEngine({ clients: [version2], store, clock });
    try {
      await v2.advance("1h");
      const run = await v2.result(runIds[0] as string);
      expect(run.output).toBe("v2");
      expect(calls).toEqual(["first", "second", "third"]);
    } finally {
      await v2.close();
      await database.close();
    }
  });
});

describe("events and waits across a crash", () => {
  it("matches an event stored just before a crash against open waits when the reconciler runs", async () => {
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "awaits-approval" }, { event: "doc/submitted" }, async ({ step }) => {
      const approval = await step.waitForEvent("approval", { event: "doc/approved", timeout: "7d", match: "data.docId" });
      return approval?.data["by"] ?? "nobody";
    });
    await using engine = await createTestEngine({ clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns({ name: "doc/submitted", data: { docId: "d1" } });
    await engine.idle();
    // The process stores the approval and dies before matching it: ingest through the store only.
    const approval = { id: "evt_approval", name: "doc/approved", data: { docId: "d1", by: "ada" }, ts: engine.clock.now() };
    const stored = await engine.store.ingest({ events: [approval], runs: [], now: engine.clock.now() });
    expect(stored.events[0]?.matchWaits).toBe(true);
    expect((await engine.getRun(runIds[0] as string))?.status).toBe("waiting");
    // The reconciler (daily in the test engine) finds the unmatched event and resumes the run,
    // long before the wait's 7-day timeout.
    await engine.advance("1d");
    expect((await engine.result(runIds[0] as string)).output).toBe("ada");
  });
});

describe("the reconciler in a process without workers", () => {
  it("leaves the queue to the processes that run the runs, and still matches events left unmatched", async () => {
    const database = await createTestPglite();
    const store = createPostgresStore({ pool: database.pool });
    const clock = new FakeClock();
    const queue = createMemoryQueue({ clock });
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "noop" }, { event: "app/noop" }, async () => null);
    const server = createEngine({ store, queue, clock, clients: [stepwise], workers: false, scheduler: false, reconcileIntervalMs: 86_400_000 });
    const worker = createEngine({ store, queue, clock, clients: [stepwise], scheduler: false, eagerStart: false, reconcileIntervalMs: 86_400_000 });
    try {
      await server.start();
      // A run stored but never queued: its process died between the commit and the enqueue.
      await store.ingest({
        events: [{ id: "evt_lost", name: "app/noop", data: {}, ts: clock.now() }],
        runs: [{ id: "run_lost", functionId: "app/noop", eventId: "evt_lost" }],
        now: clock.now(),
      });
      clock.advance(60_000);
      const matched = vi.spyOn(store, "listUnmatchedEvents");
      await server.reconcile();
      expect(await queue.size()).toBe(0);
      // Matching events left unmatched is ingest-side work: it still looks.
      expect(matched).toHaveBeenCalledTimes(1);
      // A process with workers re-enqueues it.
      await worker.reconcile();
      expect(await queue.size()).toBe(1);
    } finally {
      await server.stop();
      await worker.stop();
      await database.close();
    }
  });
});
