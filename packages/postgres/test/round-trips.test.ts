import type { StepCommit } from "@stepwise/core/internal";
import type { StoredEvent } from "@stepwise/engine";
import { describe, expect, it } from "vitest";
import { DATABASES, recordedDatabase } from "./record-statements.js";

// Round trips are the latency of "event → run start" on a server: a keyless ingest is one
// statement (no BEGIN/COMMIT), and a first claim is one statement that also answers the event.

const T0 = 1_700_000_000_000;

function event(id: string, overrides: Partial<StoredEvent> = {}): StoredEvent {
  return { id, name: "test/trip", data: { id }, ts: T0 - 5, ...overrides };
}

describe.each(DATABASES)("round trips on %s", (_, createDatabase) => {
  const fixture = recordedDatabase(createDatabase);
  const { statements, settings } = fixture;

  it("plans its statements generically on each connection it uses, set once per connection ahead of its first query", async () => {
    const store = fixture.database.createStore();
    for (let index = 0; index < 3; index++) await store.ingest({ events: [event(`evt_plan_${index}`)], runs: [], now: T0 });
    // One after another, the three ingests took one connection: one SET, then three statements.
    expect(settings).toEqual(["SET plan_cache_mode = force_generic_plan"]);
    expect(statements).toEqual(Array(3).fill("stepwise_insert_events_and_runs"));
    const client = await fixture.database.pool.connect();
    try {
      expect((await client.query("SHOW plan_cache_mode")).rows).toEqual([{ plan_cache_mode: "force_generic_plan" }]);
    } finally {
      client.release();
    }
  });

  it("ingests 5,000 events without keys, with their runs, in one statement", async () => {
    const store = fixture.database.createStore();
    const events = Array.from({ length: 5000 }, (_, index) => event(`evt_${index}`));
    const runs = events.map((item, index) => ({ id: `run_${index}`, functionId: "fn", eventId: item.id }));
    const result = await store.ingest({ events, runs, now: T0 });
    expect(statements).toEqual(["stepwise_insert_events_and_runs"]);
    expect(result.events).toEqual(events.map((item) => ({ id: item.id, duplicate: false })));
    expect(result.runs).toEqual(runs);
    expect(await store.listDueRuns({ until: T0, limit: 10_000 })).toHaveLength(5000);
  });

  it("answers duplicate ids as the keyed path does, and creates no run of a duplicate id", async () => {
    const store = fixture.database.createStore();
    await store.ingest({ events: [event("evt_old")], runs: [], now: T0 });
    const events = [event("evt_old"), event("evt_new"), event("evt_twice"), event("evt_twice", { data: { again: true } })];
    const runs = [
      ...events.map((item) => ({ id: `run_${item.id}_${item.data["again"] ? "b" : "a"}`, functionId: "fn", eventId: item.id })),
      // A second function on the same event, and the same pair twice: one run per (function, event).
      { id: "run_evt_new_other", functionId: "other", eventId: "evt_new" },
      { id: "run_evt_new_again", functionId: "other", eventId: "evt_new" },
    ];
    const result = await store.ingest({ events, runs, now: T0 + 1 });
    expect(result.events).toEqual([
      { id: "evt_old", duplicate: true },
      { id: "evt_new", duplicate: false },
      { id: "evt_twice", duplicate: false },
      { id: "evt_twice", duplicate: true },
    ]);
    expect(result.runs).toEqual([
      { id: "run_evt_new_a", functionId: "fn", eventId: "evt_new" },
      { id: "run_evt_new_other", functionId: "other", eventId: "evt_new" },
    ]);
    expect(await store.listRunsForEvent("evt_old")).toEqual([]);
    expect(await store.getEvent("evt_twice")).toEqual(event("evt_twice"));
  });

  it("stores nothing of a keyless batch whose statement fails", async () => {
    const store = fixture.database.createStore();
    const runs = [
      { id: "run_ok", functionId: "fn", eventId: "evt_ok" },
      { id: "run_orphan", functionId: "fn", eventId: "evt_missing" },
    ];
    await expect(store.ingest({ events: [event("evt_ok")], runs, now: T0 })).rejects.toThrow(/foreign key/);
    expect(await store.getEvent("evt_ok")).toBeNull();
    expect(await store.getRun("run_ok")).toBeNull();
  });

  it("keeps the transaction for a batch with keys", async () => {
    const store = fixture.database.createStore();
    await store.ingest({ events: [event("evt_keyed", { key: "k" })], runs: [{ id: "run_keyed", functionId: "fn", eventId: "evt_keyed" }], now: T0 });
    expect(statements[0]).toBe("BEGIN");
    expect(statements.at(-1)).toBe("COMMIT");
  });

  it("claims a fresh run in one statement, with its event; a later claim reads the steps too", async () => {
    const store = fixture.database.createStore();
    const trigger = event("evt_claim", { key: "k-claim" });
    await store.ingest({ events: [trigger], runs: [{ id: "run_claim", functionId: "fn", eventId: trigger.id }], now: T0 });
    statements.length = 0;
    const first = await store.claimRun({ runId: "run_claim", workerId: "worker-a", now: T0, leaseMs: 1000 });
    expect(statements).toEqual(["stepwise_claim_run"]);
    expect(first).toMatchObject({ run: { id: "run_claim", status: "running", leaseEpoch: 1 }, event: trigger, steps: [] });

    const step = { key: "s1", id: "s1", kind: "run", status: "completed", output: "done", attempt: 0 } as const;
    await store.commitStep({ runId: "run_claim", leaseEpoch: 1, step, now: T0 + 1 });
    await store.recoverLeases({ now: T0 + 2000 });
    statements.length = 0;
    const second = await store.claimRun({ runId: "run_claim", workerId: "worker-b", now: T0 + 2000, leaseMs: 1000 });
    expect(statements).toEqual(["stepwise_claim_run", "stepwise_load_steps"]);
    expect(second).toEqual({ run: expect.objectContaining({ leaseEpoch: 2, leaseOwner: "worker-b" }), event: trigger, steps: [step] });
  });

  it("ends a run with the step results its pass had not committed, in the same one statement, and writes neither for a lost lease", async () => {
    const store = fixture.database.createStore();
    const trigger = event("evt_tail");
    await store.ingest({ events: [trigger], runs: [{ id: "run_tail", functionId: "fn", eventId: trigger.id }], now: T0 });
    await store.claimRun({ runId: "run_tail", workerId: "worker-a", now: T0, leaseMs: 1000 });
    // The first attempt of "b" failed and left a retrying row: the run's end replaces it.
    await store.suspendRun({
      runId: "run_tail",
      leaseEpoch: 1,
      steps: [{ key: "b", id: "b", kind: "run", status: "retrying", attempt: 0, error: { name: "Error", message: "flaky" }, wakeAt: T0 + 1 }],
      waits: [],
      invokes: { events: [], runs: [], now: T0 },
      pendingKeys: [],
      now: T0,
    });
    await store.claimRun({ runId: "run_tail", workerId: "worker-a", now: T0 + 1, leaseMs: 1000 });
    statements.length = 0;
    const steps: StepCommit[] = [
      { key: "a", id: "a", kind: "run", status: "completed", output: { n: 1 }, attempt: 0, startedAt: T0 + 2, fresh: true },
      { key: "b", id: "b", kind: "run", status: "completed", output: [2], attempt: 1, startedAt: T0 + 3 },
    ];
    expect(await store.finishRun({ runId: "run_tail", leaseEpoch: 2, status: "completed", output: "done", steps, now: T0 + 4 })).toEqual({
      ok: true,
      followUpRuns: [],
    });
    expect(statements).toEqual(["stepwise_finish_run"]);
    expect(await store.getRun("run_tail")).toMatchObject({ status: "completed", output: "done", endedAt: T0 + 4 });
    expect(await store.listSteps("run_tail")).toEqual([
      // The retried step keeps the time its first attempt began.
      { key: "b", id: "b", kind: "run", status: "completed", output: [2], attempt: 1, startedAt: T0, endedAt: T0 + 4 },
      { key: "a", id: "a", kind: "run", status: "completed", output: { n: 1 }, attempt: 0, startedAt: T0 + 2, endedAt: T0 + 4 },
    ]);

    const other = event("evt_tail_lost");
    await store.ingest({ events: [other], runs: [{ id: "run_tail_lost", functionId: "fn", eventId: other.id }], now: T0 });
    await store.claimRun({ runId: "run_tail_lost", workerId: "worker-a", now: T0, leaseMs: 1000 });
    const lost = await store.finishRun({ runId: "run_tail_lost", leaseEpoch: 9, status: "completed", output: null, steps: steps.slice(0, 1), now: T0 + 4 });
    expect(lost).toEqual({ ok: false, followUpRuns: [] });
    expect(await store.listSteps("run_tail_lost")).toEqual([]);
    expect((await store.getRun("run_tail_lost"))?.status).toBe("running");
  });

  it("ends a run in one statement; only follow-up events add a transaction", async () => {
    const store = fixture.database.createStore();
    const trigger = event("evt_end");
    await store.ingest({ events: [trigger], runs: [{ id: "run_end", functionId: "fn", eventId: trigger.id }], now: T0 });
    await store.claimRun({ runId: "run_end", workerId: "worker-a", now: T0, leaseMs: 1000 });
    statements.length = 0;
    expect(await store.finishRun({ runId: "run_end", leaseEpoch: 1, status: "completed", output: { done: true }, now: T0 + 1 })).toEqual({
      ok: true,
      followUpRuns: [],
    });
    expect(statements).toEqual(["stepwise_finish_run"]);
    expect(await store.getRun("run_end")).toMatchObject({ status: "completed", output: { done: true }, endedAt: T0 + 1 });

    const failing = event("evt_fail");
    await store.ingest({ events: [failing], runs: [{ id: "run_fail", functionId: "fn", eventId: failing.id }], now: T0 });
    await store.claimRun({ runId: "run_fail", workerId: "worker-a", now: T0, leaseMs: 1000 });
    statements.length = 0;
    const notice = event("evt_failure_notice", { name: "stepwise/function.failed" });
    const error = { name: "Error", message: "boom" };
    const followUp = { events: [notice], runs: [{ id: "run_on_failure", functionId: "fn/on-failure", eventId: notice.id }], now: T0 + 1 };
    const result = await store.finishRun({ runId: "run_fail", leaseEpoch: 1, status: "failed", error, followUp, now: T0 + 1 });
    expect(result).toEqual({ ok: true, followUpRuns: followUp.runs });
    expect(statements[0]).toBe("BEGIN");
    expect(statements[1]).toBe("stepwise_finish_run");
    expect(statements.at(-1)).toBe("COMMIT");

    // A lost lease ends nothing and stores none of the follow-up.
    const lost = await store.finishRun({
      runId: "run_fail",
      leaseEpoch: 1,
      status: "failed",
      error,
      followUp: { ...followUp, events: [event("evt_other")], runs: [] },
      now: T0 + 2,
    });
    expect(lost).toEqual({ ok: false, followUpRuns: [] });
    expect(await store.getEvent("evt_other")).toBeNull();
  });
});
