import { Stepwise } from "@stepwise/core";
import { createEngine, createMemoryQueue, type Queue, type QueueItem } from "@stepwise/engine";
import { createTestPglite, type TestPglite } from "@stepwise/postgres/testing";
import { FakeClock } from "@stepwise/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

// Eager start: a run created by a process with a free worker slot starts there without a round
// trip through the queue; runs that find no slot go to the queue, and none is lost either way.

/** The real in-memory queue, recording what is enqueued into it. */
function recordingQueue(clock: FakeClock): { queue: Queue; enqueued: QueueItem[] } {
  const inner = createMemoryQueue({ clock });
  const enqueued: QueueItem[] = [];
  const queue: Queue = {
    ...inner,
    enqueue: (items) => {
      enqueued.push(...items);
      return inner.enqueue(items);
    },
  };
  return { queue, enqueued };
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
    stepwise.createFunction({ id: "hold" }, { event: "test/hold" }, async ({ event, step }) => {
      started.push(event.data["n"] as string);
      await new Promise<void>((resolve) => release.push(resolve));
      return step.run("done", () => event.data["n"] as string);
    });
    stepwise.createFunction({ id: "quick" }, { event: "test/quick" }, async ({ step }) => step.run("one", () => "ok"));
    return { stepwise, release, started };
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
    const { queue, enqueued } = recordingQueue(clock);
    const { stepwise, release, started } = app();
    const engine = createEngine({ store: database.createStore(), queue, clock, clients: [stepwise], concurrency: 2, reconcileIntervalMs: 86_400_000 });
    await engine.start();
    try {
      const { ids } = await engine.send(["a", "b", "c", "d"].map((n) => ({ name: "test/hold", data: { n } })));
      await expect.poll(() => started).toEqual(["a", "b"]);
      // Nothing beyond the limit starts, even with the queue's items at hand.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(started).toEqual(["a", "b"]);
      expect(enqueued).toHaveLength(2);
      while (started.length < 4 || release.length > 0) {
        release.shift()?.();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const runs = await Promise.all(ids.map(async (id) => (await engine.runsForEvent(id))[0]?.id as string));
      const results = await Promise.all(runs.map((runId) => engine.waitForRun(runId)));
      expect(results.map((result) => result.output)).toEqual(["a", "b", "c", "d"]);
    } finally {
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
