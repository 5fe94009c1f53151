import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

type Seen = { first: unknown; ns: unknown[]; at: number };

describe.each(BACKENDS)("batchEvents on %s", (backend) => {
  it("starts a run as soon as a batch is full, and the rest after the timeout; the handler gets every event in order", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const seen: Seen[] = [];
    stepwise.createFunction({ id: "bulk", batchEvents: { maxSize: 3, timeout: "10s" } }, { event: "row/added" }, async ({ event, events }) => {
      seen.push({ first: event.data["n"], ns: events.map((item) => item.data["n"]), at: engine.clock.now() - t0 });
      return events.length;
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const t0 = engine.clock.now();
    const row = (n: number) => ({ name: "row/added", data: { n } });
    // 7 events, in one send and in two more: two full batches start now, the 7th waits.
    await engine.send([row(1), row(2), row(3), row(4), row(5)]);
    await engine.send(row(6));
    await engine.send(row(7));
    await engine.idle();
    expect(seen.sort((a, b) => Number(a.first) - Number(b.first))).toEqual([
      { first: 1, ns: [1, 2, 3], at: 0 },
      { first: 4, ns: [4, 5, 6], at: 0 },
    ]);
    // The third batch opened with event 7 at 0 s: it starts at its timeout, not before.
    await engine.advance(9999);
    expect(seen).toHaveLength(2);
    await engine.advance(1);
    expect(seen.at(-1)).toEqual({ first: 7, ns: [7], at: 10_000 });

    const runs = await engine.listRuns({ functionId: "app/bulk" });
    expect(runs.map((run) => run.status)).toEqual(["completed", "completed", "completed"]);
    expect(runs.map((run) => run.output).sort()).toEqual([1, 3, 3]);
    // Each run lists its events; any of them finds its run.
    const full = runs.find((run) => run.eventIds?.length === 3);
    expect(full?.eventId).toBe(full?.eventIds?.[0]);
    for (const eventId of full?.eventIds ?? []) expect((await engine.runsForEvent(eventId)).map((run) => run.id)).toEqual([full?.id]);
    // A batch that timed out with one event lists it.
    const single = runs.find((run) => run.output === 1);
    expect(single?.eventIds).toEqual([single?.eventId]);
  });

  it("collects events until the timeout from the first; an event after the start opens the next batch", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const seen: Seen[] = [];
    stepwise.createFunction({ id: "digest", batchEvents: { maxSize: 100, timeout: "10s" } }, { event: "feed/item" }, async ({ event, events }) => {
      seen.push({ first: event.data["n"], ns: events.map((item) => item.data["n"]), at: engine.clock.now() - t0 });
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const t0 = engine.clock.now();
    for (let n = 1; n <= 4; n++) {
      await engine.send({ name: "feed/item", data: { n } });
      await engine.advance("3s");
    }
    // Events at 0, 3, 6 and 9 s; the batch started at 10 s, 10 s after its first event.
    await engine.advance(0);
    expect(seen).toEqual([{ first: 1, ns: [1, 2, 3, 4], at: 10_000 }]);
    await engine.send({ name: "feed/item", data: { n: 5 } });
    await engine.advance("10s");
    expect(seen.at(-1)).toEqual({ first: 5, ns: [5], at: 22_000 });
    expect(await engine.listRuns({ functionId: "app/digest" })).toHaveLength(2);
  });

  it("batches per key, and runs an event that fails `if` on its own at once", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const seen: Array<{ accounts: unknown[]; ns: unknown[] }> = [];
    stepwise.createFunction(
      { id: "usage", batchEvents: { maxSize: 2, timeout: "30s", key: "event.data.account", if: "event.data.plan == 'free'" } },
      { event: "api/called" },
      async ({ events }) => {
        seen.push({ accounts: [...new Set(events.map((item) => item.data["account"]))], ns: events.map((item) => item.data["n"]) });
      },
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const call = (account: string, n: number, plan = "free") => ({ name: "api/called", data: { account, n, plan } });
    await engine.send([call("a", 1), call("b", 2), call("p", 3, "pro"), call("a", 4), call("b", 5), call("b", 6)]);
    await engine.idle();
    // a: [1, 4] full; b: [2, 5] full, [6] open; the pro account's event ran alone.
    const byFirst = (a: { ns: unknown[] }, b: { ns: unknown[] }) => Number(a.ns[0]) - Number(b.ns[0]);
    expect(seen.sort(byFirst)).toEqual([
      { accounts: ["a"], ns: [1, 4] },
      { accounts: ["b"], ns: [2, 5] },
      { accounts: ["p"], ns: [3] },
    ]);
    await engine.send(call("b", 7));
    await engine.idle();
    expect(seen.sort(byFirst).at(-1)).toEqual({ accounts: ["b"], ns: [6, 7] });
    expect(await engine.listRuns({ functionId: "app/usage" })).toHaveLength(4);
  });

  it("puts every event of concurrent sends into exactly one batch", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const batches: unknown[][] = [];
    stepwise.createFunction({ id: "sink", batchEvents: { maxSize: 10, timeout: "60s" } }, { event: "metric" }, async ({ events }) => {
      batches.push(events.map((item) => item.data["n"]));
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    // 40 sends of one or two events each, all at once: 60 events, 6 full batches.
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        engine.send(
          index < 20
            ? [
                { name: "metric", data: { n: index * 2 } },
                { name: "metric", data: { n: index * 2 + 1 } },
              ]
            : { name: "metric", data: { n: 20 + index } },
        ),
      ),
    );
    await engine.idle();
    expect(batches.map((batch) => batch.length)).toEqual([10, 10, 10, 10, 10, 10]);
    const all = batches.flat().map(Number);
    expect(new Set(all).size).toBe(60);
    expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, n) => n));
  });

  it("hands a retried handler the same events, and a rerun the batch's events", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const attempts: Array<{ attempt: number; ns: unknown[] }> = [];
    stepwise.createFunction({ id: "flaky", retries: 1, batchEvents: { maxSize: 2, timeout: "5s" } }, { event: "job" }, async ({ events, attempt, step }) => {
      const ns = await step.run("read", () => events.map((item) => item.data["n"]));
      attempts.push({ attempt, ns });
      if (attempt === 0) throw new Error("first attempt fails");
      return ns;
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    await engine.send([
      { name: "job", data: { n: 1 } },
      { name: "job", data: { n: 2 } },
    ]);
    const [run] = await engine.listRuns({ functionId: "app/flaky" });
    await engine.advance("1m");
    expect(await engine.result(run?.id as string)).toMatchObject({ status: "completed", output: [1, 2] });
    expect(attempts).toEqual([
      { attempt: 0, ns: [1, 2] },
      { attempt: 1, ns: [1, 2] },
    ]);
    const rerun = await engine.rerun(run?.id as string);
    await engine.advance("1m");
    const repeated = await engine.result(rerun.id);
    expect(repeated).toMatchObject({ status: "completed", output: [1, 2], eventIds: run?.eventIds });
  });

  it("refuses options that decide per event, and bounds maxSize and timeout", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const create = (extra: Record<string, unknown>) =>
      stepwise.createFunction({ id: "f", batchEvents: { maxSize: 10, timeout: "5s" }, ...extra } as never, { event: "e" }, async () => null);
    expect(() => create({ idempotency: "event.data.id" })).toThrow(/batchEvents: cannot be combined with idempotency/);
    expect(() => create({ debounce: { period: "5s" } })).toThrow(/batchEvents: cannot be combined with debounce/);
    expect(() => create({ rateLimit: { limit: 1, period: "1m" } })).toThrow(/batchEvents: cannot be combined with rateLimit/);
    expect(() => create({ singleton: { mode: "skip" } })).toThrow(/batchEvents: cannot be combined with singleton/);
    expect(() => create({ cancelOn: [{ event: "stop" }] })).toThrow(/batchEvents: cannot be combined with cancelOn/);
    expect(() => create({ batchEvents: { maxSize: 1001, timeout: "5s" } })).toThrow(/batchEvents.maxSize: must be at most 1000, got 1001/);
    expect(() => create({ batchEvents: { maxSize: 10, timeout: "2m" } })).toThrow(/batchEvents.timeout: "2m" is over 60 s/);
    expect(() => create({ batchEvents: { maxSize: 10, timout: "5s" } })).toThrow(/"timout" is not an option; did you mean "timeout"\?/);
  });
});
