import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe.each(BACKENDS)("debounce on %s", (backend) => {
  it("starts one run with the last event of a quiet period, per key; a new event resets the period", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const started: Array<{ userId: unknown; n: unknown; at: number }> = [];
    stepwise.createFunction({ id: "save", debounce: { period: "10s", key: "event.data.userId" } }, { event: "doc/edited" }, async ({ event }) => {
      started.push({ userId: event.data["userId"], n: event.data["n"], at: engine.clock.now() - t0 });
      return event.data["n"];
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const t0 = engine.clock.now();
    const edited = (userId: string, n: number) => ({ name: "doc/edited", data: { userId, n } });
    await engine.send([edited("a", 1), edited("b", 1)]);
    await engine.advance("5s");
    await engine.send(edited("a", 2));
    await engine.advance("5s");
    // b's quiet period ended at 10 s; a's moved to 15 s.
    expect(started).toEqual([{ userId: "b", n: 1, at: 10_000 }]);
    await engine.advance(4999);
    expect(started).toHaveLength(1);
    await engine.advance(1);
    expect(started).toEqual([
      { userId: "b", n: 1, at: 10_000 },
      { userId: "a", n: 2, at: 15_000 },
    ]);
    // One run per key; the event after the run started makes a new one.
    expect(await engine.listRuns({ functionId: "app/save" })).toHaveLength(2);
    await engine.send(edited("a", 3));
    await engine.advance("10s");
    expect(started.at(-1)).toEqual({ userId: "a", n: 3, at: 25_000 });
    expect(await engine.listRuns({ functionId: "app/save" })).toHaveLength(3);
  });

  it("caps the wait at timeout from the first event, however often events keep coming", async () => {
    const stepwise = new Stepwise({ id: "app" });
    const started: Array<{ n: unknown; at: number }> = [];
    stepwise.createFunction({ id: "digest", debounce: { period: "10s", timeout: "30s" } }, { event: "feed/item" }, async ({ event }) => {
      started.push({ n: event.data["n"], at: engine.clock.now() - t0 });
    });
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const t0 = engine.clock.now();
    for (let n = 0; n < 8; n++) {
      await engine.send({ name: "feed/item", data: { n } });
      await engine.advance("5s");
    }
    // Events at 0, 5, ..., 35 s: each pushed the start back, until the cap at 30 s, when the run
    // started with the newest event so far (n = 5, sent at 25 s). The event sent at 30 s came
    // after that start, so it began a new pending run, which the one at 35 s took over: it
    // starts 10 s later, at 45 s, with n = 7. Two runs for eight events; none lost its last.
    await engine.advance("20s");
    expect(started).toEqual([
      { n: 5, at: 30_000 },
      { n: 7, at: 45_000 },
    ]);
    expect(await engine.listRuns({ functionId: "app/digest" })).toHaveLength(2);
  });
});
