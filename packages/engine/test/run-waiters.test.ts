import type { RunInfo } from "@stepwise/core";
import { Stepwise } from "@stepwise/core";
import {
  type Bus,
  createEngine,
  createMemoryBus,
  createMemoryQueue,
  createRunWaiters,
  createSystemClock,
  Lifecycle,
  RUN_ENDED_CHANNEL,
} from "@stepwise/engine";
import { createTestPglite, type TestPglite } from "@stepwise/postgres/testing";
import { afterEach, beforeEach, expect, it } from "vitest";

// waitForRun across processes: an engine hears of a run another one ended through the bus, and
// only an engine that waits subscribes (a worker does not receive every run's notice).

let database: TestPglite;
beforeEach(async () => {
  database = await createTestPglite();
});
afterEach(() => database.close());

/** The real in-memory bus, shared like Redis between "processes", recording who subscribes. */
function sharedBus() {
  const bus = createMemoryBus();
  const subscriptions: string[] = [];
  const as = (name: string): Bus => ({
    ...bus,
    subscribe: (channel, handler) => {
      subscriptions.push(`${name} ${channel}`);
      return bus.subscribe(channel, handler);
    },
  });
  return { as, subscriptions };
}

it("answers a wait for a run that a worker in another engine ends, through its notice; the worker never subscribes", async () => {
  const clock = createSystemClock();
  const queue = createMemoryQueue({ clock });
  const { as, subscriptions } = sharedBus();
  const release: Array<() => void> = [];
  const stepwise = new Stepwise({ id: "app" });
  stepwise.createFunction({ id: "gated" }, { event: "test/gated" }, async ({ step }) => {
    await new Promise<void>((resolve) => release.push(resolve));
    return step.run("done", () => "finished");
  });
  const worker = createEngine({ store: database.createStore(), queue, bus: as("worker"), clock, clients: [stepwise], scheduler: false });
  const client = createEngine({ store: database.createStore(), queue, bus: as("client"), clock, clients: [stepwise], workers: false, scheduler: false });
  await worker.start();
  await client.start();
  try {
    const { ids } = await client.send({ name: "test/gated" });
    const [run] = await client.runsForEvent(ids[0] as string);
    await expect.poll(() => release.length).toBe(1);
    expect(subscriptions).toEqual([]);

    const waiting = client.waitForRun(run?.id as string);
    // The client subscribed and read the store (still running) before the run may end.
    await expect.poll(() => subscriptions).toEqual([`client ${RUN_ENDED_CHANNEL}`]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const released = performance.now();
    release[0]?.();
    expect(await waiting).toMatchObject({ status: "completed", output: "finished" });
    // The store is read again only after a second: an answer sooner came from the notice.
    expect(performance.now() - released).toBeLessThan(900);
    expect(subscriptions).toEqual([`client ${RUN_ENDED_CHANNEL}`]);
  } finally {
    await client.stop();
    await worker.stop();
  }
});

it("announces the runs ended in one turn of the event loop in one message", async () => {
  const bus = createMemoryBus();
  const messages: unknown[] = [];
  await bus.subscribe(RUN_ENDED_CHANNEL, (message) => messages.push(message));
  const waiters = createRunWaiters({ store: database.createStore(), bus, lifecycle: new Lifecycle() });
  await waiters.start();
  const ended = (id: string): RunInfo => ({ id, functionId: "fn", eventId: "evt_1", status: "completed", attempt: 0, output: id, createdAt: 1, endedAt: 2 });
  waiters.runEnded(ended("run_a"));
  waiters.runEnded(ended("run_b"));
  waiters.runEnded(ended("run_c"));
  expect(messages).toEqual([]);
  await new Promise((resolve) => setImmediate(resolve));
  expect(messages).toEqual([[ended("run_a"), ended("run_b"), ended("run_c")]]);
  waiters.runEnded(ended("run_d"));
  // Stopping announces what is pending rather than dropping it.
  await waiters.stop();
  expect(messages).toEqual([[ended("run_a"), ended("run_b"), ended("run_c")], [ended("run_d")]]);
});
