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
  RUN_CANCELLED_CHANNEL,
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

/** A store whose reads of runs (`getRun`, `getRuns`) are counted: queries in all, and reads per run. */
function countingStore() {
  const store = database.createStore();
  const counted = { store, reads: 0, byRun: new Map<string, number>() };
  const count = (runIds: string[]) => {
    counted.reads++;
    for (const runId of runIds) counted.byRun.set(runId, (counted.byRun.get(runId) ?? 0) + 1);
  };
  counted.store = new Proxy(store, {
    get: (target, property) => {
      if (property === "getRun") {
        return (runId: string) => {
          count([runId]);
          return target.getRun(runId);
        };
      }
      if (property === "getRuns") {
        return (runIds: string[]) => {
          count(runIds);
          return target.getRuns(runIds);
        };
      }
      return Reflect.get(target, property);
    },
  });
  return counted;
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
  // The client would read the store again only after an hour: an answer before that came from the notice.
  const reading = countingStore();
  const client = createEngine({
    store: reading.store,
    queue,
    bus: as("client"),
    clock,
    clients: [stepwise],
    workers: false,
    scheduler: false,
    waitPollMs: 3_600_000,
  });
  await worker.start();
  await client.start();
  try {
    const { ids } = await client.send({ name: "test/gated" });
    const [run] = await client.runsForEvent(ids[0] as string);
    await expect.poll(() => release.length).toBe(1);
    // The worker listens for cancellations only (rare); never for the end of every run.
    expect(subscriptions).toEqual([`worker ${RUN_CANCELLED_CHANNEL}`]);

    const waiting = client.waitForRun(run?.id as string);
    // The client subscribed, then read the store once (still running), before the run may end.
    await expect.poll(() => reading.reads).toBe(1);
    expect(subscriptions).toEqual([`worker ${RUN_CANCELLED_CHANNEL}`, `client ${RUN_ENDED_CHANNEL}`]);
    release[0]?.();
    expect(await waiting).toMatchObject({ status: "completed", output: "finished" });
    expect(reading.reads).toBe(1);
    expect(subscriptions).toEqual([`worker ${RUN_CANCELLED_CHANNEL}`, `client ${RUN_ENDED_CHANNEL}`]);
  } finally {
    await client.stop();
    await worker.stop();
  }
});

/** An engine whose reads of runs are counted, polling waits every 5 ms, with a function that sleeps a day. */
async function nappingEngine() {
  const clock = createSystemClock();
  const reading = countingStore();
  const stepwise = new Stepwise({ id: "app" });
  stepwise.createFunction({ id: "naps" }, { event: "test/naps" }, async ({ step }) => step.sleep("nap", "1d"));
  const engine = createEngine({ store: reading.store, queue: createMemoryQueue({ clock }), clock, clients: [stepwise], waitPollMs: 5 });
  await engine.start();
  return { engine, reading };
}

/** Starts `count` runs that sleep a day; answers their ids. */
async function napping(engine: Awaited<ReturnType<typeof nappingEngine>>["engine"], count: number): Promise<string[]> {
  const { ids } = await engine.send(Array.from({ length: count }, () => ({ name: "test/naps" })));
  const runIds: string[] = [];
  for (const id of ids) runIds.push(((await engine.runsForEvent(id))[0]?.id ?? "") as string);
  return runIds;
}

it("stops reading the store for a wait whose caller went away, and fires a timeout past 2^31-1 ms only when due", async () => {
  const { engine, reading } = await nappingEngine();
  try {
    const runIds = await napping(engine, 21);
    const [longRun, ...abandonedRuns] = runIds as [string, ...string[]];
    // Twenty callers wait (one run each) and go away; one more waits with a timeout Node would
    // clamp to 1 ms, which must not fire.
    const callers = abandonedRuns.map(() => new AbortController());
    const waits = abandonedRuns.map((runId, index) => engine.waitForRun(runId, { signal: callers[index]?.signal }).catch((error: unknown) => error));
    let settled = false;
    void engine
      .waitForRun(longRun, { timeoutMs: 1e12 })
      .finally(() => (settled = true))
      .catch(() => undefined);
    await expect.poll(() => Math.min(...abandonedRuns.map((runId) => reading.byRun.get(runId) ?? 0))).toBeGreaterThanOrEqual(3);
    for (const caller of callers) caller.abort();
    for (const error of await Promise.all(waits)) expect(error).toMatchObject({ code: "WAIT_ABORTED" });
    const atAbort = new Map(abandonedRuns.map((runId) => [runId, reading.byRun.get(runId) ?? 0]));
    // The long wait polls on, twenty times more: the abandoned ones read no more.
    const longReads = reading.byRun.get(longRun) ?? 0;
    await expect.poll(() => (reading.byRun.get(longRun) ?? 0) - longReads).toBeGreaterThanOrEqual(20);
    for (const runId of abandonedRuns) expect(reading.byRun.get(runId)).toBe(atAbort.get(runId));
    expect(settled).toBe(false);
  } finally {
    await engine.stop();
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

it("reads every waited run in one query per poll, however many wait", async () => {
  const { engine, reading } = await nappingEngine();
  try {
    const runIds = await napping(engine, 200);
    const caller = new AbortController();
    const waits = runIds.map((runId) => engine.waitForRun(runId, { signal: caller.signal }).catch(() => undefined));
    // Each wait reads its run once as it starts; then the polls begin.
    const first = runIds[0] as string;
    await expect.poll(() => reading.byRun.get(first) ?? 0).toBeGreaterThanOrEqual(2);
    const before = { queries: reading.reads, polls: reading.byRun.get(first) ?? 0 };
    await expect.poll(() => (reading.byRun.get(first) ?? 0) - before.polls).toBeGreaterThanOrEqual(10);
    const polls = (reading.byRun.get(first) ?? 0) - before.polls;
    // One query per poll for all 200 (a poll per waiter would be 200 queries per poll).
    expect(reading.reads - before.queries).toBeLessThanOrEqual(polls + 1);
    for (const runId of runIds) expect(reading.byRun.get(runId)).toBeGreaterThanOrEqual(polls);
    caller.abort();
    await Promise.all(waits);
  } finally {
    await engine.stop();
  }
});
