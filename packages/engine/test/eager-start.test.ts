import { Stepwise } from "@stepwise/core";
import { createEngine, createMemoryQueue, type Queue, type QueueItem, type RunStore } from "@stepwise/engine";
import { createTestPglite, type TestPglite } from "@stepwise/postgres/testing";
import { FakeClock } from "@stepwise/testing";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// Eager start: a run created by a process with a free worker slot starts there without a round
// trip through the queue; runs that find no slot go to the queue, and none is lost either way.

/** The real in-memory queue, recording what is enqueued into it and what dequeues take from it. */
function recordingQueue(clock: FakeClock): { queue: Queue; enqueued: QueueItem[]; taken: QueueItem[] } {
  const inner = createMemoryQueue({ clock });
  const enqueued: QueueItem[] = [];
  const taken: QueueItem[] = [];
  const queue: Queue = {
    ...inner,
    enqueue: (items) => {
      enqueued.push(...items);
      return inner.enqueue(items);
    },
    dequeueMany: async (signal, max) => {
      const items = await inner.dequeueMany(signal, max);
      taken.push(...items);
      return items;
    },
  };
  return { queue, enqueued, taken };
}

/**
 * The store, recording the runs claimed through it. A pass over a queued run starts with its
 * claim, called before the pass's first await: a pass launched shows here in the same turn.
 * (Runs started eagerly are created claimed and never show.)
 */
function recordingStore(store: RunStore): { store: RunStore; claimed: string[] } {
  const claimed: string[] = [];
  return {
    store: {
      ...store,
      claimRun: (input) => {
        claimed.push(input.runId);
        return store.claimRun(input);
      },
    },
    claimed,
  };
}

describe("eager start", () => {
  let database: TestPglite;
  beforeEach(async () => {
    database = await createTestPglite();
  });
  afterEach(() => database.close());

  function app() {
    const stepwise = new Stepwise({ id: "app" });
    const release: Array<() => void> = [];
    const started: string[] = [];
    let holding = true;
    stepwise.createFunction({ id: "hold" }, { event: "test/hold" }, async ({ event, step }) => {
      started.push(event.data["n"] as string);
      if (holding) await new Promise<void>((resolve) => release.push(resolve));
      return step.run("done", () => event.data["n"] as string);
    });
    stepwise.createFunction({ id: "quick" }, { event: "test/quick" }, async ({ step }) => step.run("one", () => "ok"));
    /** Lets every held pass and every later one finish, so that a failed test still stops. */
    const releaseAll = () => {
      holding = false;
      for (const resolve of release.splice(0)) resolve();
    };
    return { stepwise, release, releaseAll, started };
  }

  it("starts a sent event's run in this process without enqueueing it", async () => {
    const clock = new FakeClock();
    const { queue, enqueued } = recordingQueue(clock);
    const { stepwise } = app();
    const engine = createEngine({ store: database.createStore(), queue, clock, clients: [stepwise], reconcileIntervalMs: 86_400_000 });
    await engine.start();
    try {
      const { ids } = await engine.send({ name: "test/quick" });
      const [run] = await engine.runsForEvent(ids[0] as string);
      expect(await engine.waitForRun(run?.id as string)).toMatchObject({ status: "completed", output: "ok" });
      expect(enqueued).toEqual([]);
    } finally {
      await engine.stop();
    }
  });

  it("queues what finds no free slot, and runs it when one frees", async () => {
    const clock = new FakeClock();
    const { queue, enqueued, taken } = recordingQueue(clock);
    const { store, claimed } = recordingStore(database.createStore());
    const { stepwise, release, releaseAll, started } = app();
    const engine = createEngine({ store, queue, clock, clients: [stepwise], concurrency: 2, reconcileIntervalMs: 86_400_000 });
    await engine.start();
    try {
      const { ids } = await engine.send(["a", "b", "c", "d"].map((n) => ({ name: "test/hold", data: { n } })));
      await vi.waitFor(() => expect(started).toEqual(["a", "b"]));
      // a and b started here; c and d went to the queue, and the worker loop took them.
      expect(enqueued).toHaveLength(2);
      await vi.waitFor(() => expect(taken.map((item) => item.runId)).toEqual(enqueued.map((item) => item.runId)));
      // Nothing beyond the limit starts, even with the queue's items at hand: no pass over them
      // began (its claim would show by now), and none began eagerly.
      expect(claimed).toEqual([]);
      expect(started).toEqual(["a", "b"]);
      // Each freed slot starts one held run, and only one.
      release.shift()?.();
      await vi.waitFor(() => expect(started).toEqual(["a", "b", "c"]));
      expect(claimed).toHaveLength(1);
      release.shift()?.();
      await vi.waitFor(() => expect(started).toEqual(["a", "b", "c", "d"]));
      expect(claimed).toHaveLength(2);
      releaseAll();
      const runs = await Promise.all(ids.map(async (id) => (await engine.runsForEvent(id))[0]?.id as string));
      const results = await Promise.all(runs.map((runId) => engine.waitForRun(runId)));
      expect(results.map((result) => result.output)).toEqual(["a", "b", "c", "d"]);
    } finally {
      releaseAll();
      await engine.stop();
    }
  });

  it("starts a concurrency-limited run at once when its slot is free, and queues the rest in line", async () => {
    const clock = new FakeClock();
    const { queue, enqueued, taken } = recordingQueue(clock);
    const { store, claimed } = recordingStore(database.createStore());
    const stepwise = new Stepwise({ id: "app" });
    const release: Array<() => void> = [];
    const started: string[] = [];
    stepwise.createFunction({ id: "sync", concurrency: { limit: 2, key: "event.data.user" } }, { event: "user/changed" }, async ({ event, step }) => {
      started.push(event.data["n"] as string);
      await new Promise<void>((resolve) => release.push(resolve));
      return step.run("done", () => event.data["n"] as string);
    });
    const engine = createEngine({ store, queue, clock, clients: [stepwise], concurrency: 10, reconcileIntervalMs: 86_400_000 });
    await engine.start();
    const changed = (n: string, user: string) => ({ name: "user/changed", data: { n, user } });
    try {
      // u1's first two and u2's run take their slots at creation; u1's third finds its key full.
      const first = await engine.send([changed("a", "u1"), changed("b", "u1"), changed("c", "u1"), changed("x", "u2")]);
      await vi.waitFor(() => expect([...started].sort()).toEqual(["a", "b", "x"]));
      expect(claimed).toEqual([]);
      expect(await queue.slotsHeld("app/sync#0:u1")).toBe(2);
      const [third] = await engine.runsForEvent(first.ids[2] as string);
      expect(enqueued.map((item) => item.runId)).toEqual([third?.id]);
      // A freed slot goes to the queued run; a new run of the full key is queued behind it.
      release.shift()?.();
      await vi.waitFor(() => expect(started).toContain("c"));
      expect(taken.map((item) => item.runId)).toEqual([third?.id]);
      const later = await engine.send(changed("d", "u1"));
      const [fourth] = await engine.runsForEvent(later.ids[0] as string);
      expect(enqueued.map((item) => item.runId)).toEqual([third?.id, fourth?.id]);
      // Each attempt lets one held pass finish, until the fourth run has started.
      await vi.waitFor(
        () => {
          release.shift()?.();
          expect(started).toHaveLength(5);
        },
        { timeout: 10_000 },
      );
      for (const resolve of release.splice(0)) resolve();
      await engine.idle();
      expect(await queue.slotsHeld("app/sync#0:u1")).toBe(0);
      expect(await queue.slotsHeld("app/sync#0:u2")).toBe(0);
      const runs = await engine.listRuns({ functionId: "app/sync" });
      expect(runs.map((run) => run.status)).toEqual(["completed", "completed", "completed", "completed", "completed"]);
    } finally {
      for (const resolve of release.splice(0)) resolve();
      await engine.stop();
    }
  });

  it("sends everything through the queue with eagerStart off", async () => {
    const clock = new FakeClock();
    const { queue, enqueued } = recordingQueue(clock);
    const { stepwise } = app();
    const engine = createEngine({ store: database.createStore(), queue, clock, clients: [stepwise], eagerStart: false, reconcileIntervalMs: 86_400_000 });
    await engine.start();
    try {
      const { ids } = await engine.send({ name: "test/quick" });
      const [run] = await engine.runsForEvent(ids[0] as string);
      expect(await engine.waitForRun(run?.id as string)).toMatchObject({ status: "completed" });
      expect(enqueued.map((item) => item.runId)).toEqual([run?.id]);
    } finally {
      await engine.stop();
    }
  });
});
