import { Stepwise } from "@stepwise/core";
import { createEngine } from "@stepwise/engine";
import { createPostgresStore } from "@stepwise/postgres";
import { createTestPostgres } from "@stepwise/postgres/testing";
import { createRedisQueue } from "@stepwise/redis";
import { createTestRedis } from "@stepwise/redis/testing";
import { BACKENDS, createBackendEngine, FakeClock } from "@stepwise/testing";
import { describe, expect, it, vi } from "vitest";

/**
 * Runs that hold still inside a step until the test lets them go, so that the test sees who
 * executes at once (never by timing: it waits for conditions and counts).
 */
function gatedRuns() {
  const open = new Map<string, () => void>();
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  let total = 0;
  let maxTotal = 0;
  return {
    /** The step body: counts itself in under `group`, then waits for `release(runId)`. */
    async hold(runId: string, group: string): Promise<void> {
      total++;
      maxTotal = Math.max(maxTotal, total);
      inFlight.set(group, (inFlight.get(group) ?? 0) + 1);
      maxInFlight.set(group, Math.max(maxInFlight.get(group) ?? 0, inFlight.get(group) as number));
      await new Promise<void>((resolve) => open.set(runId, resolve));
      inFlight.set(group, (inFlight.get(group) ?? 0) - 1);
      total--;
    },
    /** Run ids held now. */
    held: () => [...open.keys()],
    release(runId: string) {
      const resolve = open.get(runId);
      open.delete(runId);
      resolve?.();
    },
    releaseAll() {
      for (const runId of [...open.keys()]) this.release(runId);
    },
    maxOf: (group: string) => maxInFlight.get(group) ?? 0,
    get maxTotal() {
      return maxTotal;
    },
  };
}

describe.each(BACKENDS)("concurrency on %s", (backend) => {
  it("runs one run per user at a time with a keyed limit of 1, while two users run in parallel", async () => {
    const gate = gatedRuns();
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "per-user", concurrency: { limit: 1, key: "event.data.userId" } }, { event: "user/act" }, async ({ event, runId, step }) => {
      await step.run("work", () => gate.hold(runId, String(event.data["userId"])));
      return event.data["n"];
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const events = ["a", "b"].flatMap((userId) => [0, 1, 2].map((n) => ({ name: "user/act", data: { userId, n } })));
    const { runIds } = await engine.sendAndGetRuns(events);
    // Three rounds: each time exactly one run of each user holds, never two of one user.
    for (let round = 0; round < 3; round++) {
      await vi.waitFor(() => expect(gate.held()).toHaveLength(2), { timeout: 10_000 });
      expect(gate.maxOf("a")).toBe(1);
      expect(gate.maxOf("b")).toBe(1);
      gate.releaseAll();
    }
    for (const runId of runIds) expect((await engine.result(runId)).status).toBe("completed");
    expect(gate.maxTotal).toBe(2);
    await engine.idle();
    expect(await engine.queueSize()).toBe(0);
    for (const userId of ["a", "b"]) expect(await engine.queue.slotsHeld(`app/per-user#0:${userId}`)).toBe(0);
  });

  it("holds no slot while a run sleeps, and needs a slot of every rule", async () => {
    const gate = gatedRuns();
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction(
      { id: "two-rules", concurrency: [{ limit: 2 }, { limit: 1, key: "event.data.userId" }] },
      { event: "user/act" },
      async ({ event, runId, step }) => {
        await step.sleep("nap", "1s");
        await step.run("work", () => gate.hold(runId, String(event.data["userId"])));
      },
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const events = ["a", "b", "c"].flatMap((userId) => [0, 1].map((n) => ({ name: "user/act", data: { userId, n } })));
    const { runIds } = await engine.sendAndGetRuns(events);
    await engine.idle();
    // Six runs asleep at once: sleeping holds no slot, so none waited for one.
    expect(await engine.store.listRuns({ functionId: "app/two-rules", status: "sleeping" })).toHaveLength(6);
    // Not awaited: the clock settles (waits for the engine to go idle) only once runs end.
    const advancing = engine.clock.advance(1000);
    let released = 0;
    while (released < 6) {
      await vi.waitFor(() => expect(gate.held().length).toBeGreaterThan(0), { timeout: 10_000 });
      const [first] = gate.held();
      gate.release(first as string);
      released++;
    }
    await advancing;
    for (const runId of runIds) expect((await engine.result(runId)).status).toBe("completed");
    expect(gate.maxTotal).toBe(2);
    for (const userId of ["a", "b", "c"]) expect(gate.maxOf(userId)).toBe(1);
  });

  it('shares slots between functions by key value with scope "env"', async () => {
    const gate = gatedRuns();
    const stepwise = new Stepwise({ id: "app" });
    for (const id of ["summarize", "translate"]) {
      stepwise.createFunction({ id, concurrency: { limit: 1, key: '"openai"', scope: "env" } }, { event: "text/ready" }, async ({ runId, step }) => {
        await step.run("call-model", () => gate.hold(runId, "openai"));
      });
    }
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const { ids } = await engine.send([{ name: "text/ready" }, { name: "text/ready" }]);
    const runs = (await Promise.all(ids.map((id) => engine.runsForEvent(id)))).flat();
    expect(runs).toHaveLength(4);
    for (let done = 0; done < 4; done++) {
      await vi.waitFor(() => expect(gate.held()).toHaveLength(1), { timeout: 10_000 });
      gate.releaseAll();
    }
    for (const run of runs) expect((await engine.result(run.id)).status).toBe("completed");
    expect(gate.maxOf("openai")).toBe(1);
  });

  it("starts a queued run once a running one of its key is cancelled", async () => {
    const gate = gatedRuns();
    const stepwise = new Stepwise({ id: "app" });
    stepwise.createFunction({ id: "serial", concurrency: { limit: 1, key: "event.data.userId" } }, { event: "user/act" }, async ({ runId, step, signal }) => {
      await step.run("work", () => Promise.race([gate.hold(runId, "u"), new Promise((resolve) => signal.addEventListener("abort", resolve))]));
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns([
      { name: "user/act", data: { userId: "u" } },
      { name: "user/act", data: { userId: "u" } },
    ]);
    await vi.waitFor(() => expect(gate.held()).toHaveLength(1), { timeout: 10_000 });
    const [running] = gate.held() as [string];
    const waiting = runIds.find((runId) => runId !== running) as string;
    expect((await engine.getRun(waiting))?.status).toBe("queued");
    await engine.cancel(running);
    // The cancelled pass is aborted (its body stays parked in the gate, unawaited) and its slot
    // goes to the waiting run.
    await vi.waitFor(() => expect(gate.held()).toContain(waiting), { timeout: 10_000 });
    gate.releaseAll();
    expect((await engine.result(waiting)).status).toBe("completed");
    expect((await engine.result(running)).status).toBe("cancelled");
  });
});

describe("concurrency across processes (Postgres + Redis)", () => {
  it("holds a limit across two engines sharing the database and the queue", async () => {
    const gate = gatedRuns();
    const database = await createTestPostgres();
    const redis = await createTestRedis();
    const clock = new FakeClock();
    const makeEngine = (workerId: string) => {
      const stepwise = new Stepwise({ id: "app" });
      stepwise.createFunction({ id: "shared", concurrency: 2 }, { event: "job/run" }, async ({ runId, step }) => {
        await step.run("work", () => gate.hold(runId, "all"));
      });
      return createEngine({
        store: createPostgresStore({ pool: database.pool }),
        queue: createRedisQueue({ redis: redis.redis, clock, prefix: redis.prefix, pollIntervalMs: 100 }),
        clock,
        clients: [stepwise],
        workerId,
        reconcileIntervalMs: 86_400_000,
      });
    };
    const engines = [makeEngine("one"), makeEngine("two")];
    try {
      for (const engine of engines) await engine.start();
      // Half the events through each engine: each eager-starts nothing (the function is
      // limited) and both take from the one queue.
      for (const [index, engine] of engines.entries()) await engine.send(Array.from({ length: 5 }, (_, n) => ({ name: "job/run", data: { index, n } })));
      let released = 0;
      while (released < 10) {
        await vi.waitFor(() => expect(gate.held()).toHaveLength(Math.min(2, 10 - released)), { timeout: 10_000 });
        gate.release(gate.held()[0] as string);
        released++;
      }
      await vi.waitFor(async () => expect(await engines[0]?.listRuns({ status: "completed" })).toHaveLength(10), { timeout: 10_000 });
      expect(gate.maxTotal).toBe(2);
      expect(await engines[0]?.queueSize()).toBe(0);
    } finally {
      for (const engine of engines) await engine.stop();
      await redis.close();
      await database.close();
    }
  });
});
