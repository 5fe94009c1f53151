import type { JsonValue } from "@stepwise/core";
import type { RunStore } from "@stepwise/engine";
import { describe, expect, it } from "vitest";
import { createPostgresStore } from "../src/create-postgres-store.js";
import { createGroupCommit } from "../src/group-commit.js";
import { DATABASES, recordedDatabase } from "./record-statements.js";

// Group commit: step results and run ends of many runs that arrive together become one
// statement; each caller still gets its own answer, and nothing waits when the store is idle.

const T0 = 1_700_000_000_000;

describe("createGroupCommit", () => {
  /** A writer whose statements finish only when the test says so, recording each batch. */
  function gatedWriter() {
    const batches: number[][] = [];
    const gates: Array<() => void> = [];
    const write = createGroupCommit<number, string>({
      maxInFlight: 2,
      maxBatch: 3,
      single: async (item) => {
        batches.push([item]);
        await new Promise<void>((resolve) => gates.push(resolve));
        if (item < 0) throw new Error(`bad item ${item}`);
        return `one:${item}`;
      },
      batch: async (items) => {
        batches.push(items);
        await new Promise<void>((resolve) => gates.push(resolve));
        if (items.some((item) => item < 0)) throw new Error("bad batch");
        return items.map((item) => `many:${item}`);
      },
    });
    const openAll = async () => {
      while (gates.length > 0) {
        for (const open of gates.splice(0)) open();
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    return { write, batches, openAll };
  }

  it("sends a call alone while fewer than maxInFlight are in flight, and groups the rest by maxBatch", async () => {
    const { write, batches, openAll } = gatedWriter();
    const answers = Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((item) => write(item)));
    expect(batches).toEqual([[1], [2]]);
    await openAll();
    expect(await answers).toEqual(["one:1", "one:2", "many:3", "many:4", "many:5", "many:6", "many:7", "many:8"]);
    expect(batches).toEqual([[1], [2], [3, 4, 5], [6, 7, 8]]);
  });

  it("retries the items of a failed batch one by one, so only the bad one fails", async () => {
    const { write, batches, openAll } = gatedWriter();
    const answers = [1, 2, 3, -4, 5].map((item) => write(item).catch((error: Error) => error.message));
    await openAll();
    expect(await Promise.all(answers)).toEqual(["one:1", "one:2", "one:3", "bad item -4", "one:5"]);
    expect(batches).toEqual([[1], [2], [3, -4, 5], [3], [-4], [5]]);
  });
});

describe.each(DATABASES)("group commit on %s", (_, createDatabase) => {
  const fixture = recordedDatabase(createDatabase);
  const { statements } = fixture;

  /** `count` claimed runs, run_0 … run_{count-1}. */
  async function claimedRuns(store: RunStore, count: number): Promise<string[]> {
    const events = Array.from({ length: count }, (_, index) => ({ id: `evt_${index}`, name: "test/group", data: {}, ts: T0 }));
    const runs = events.map((event, index) => ({ id: `run_${index}`, functionId: "fn", eventId: event.id }));
    await store.ingest({ events, runs, now: T0 });
    for (const run of runs) await store.claimRun({ runId: run.id, workerId: "worker-a", now: T0, leaseMs: 60_000 });
    statements.length = 0;
    return runs.map((run) => run.id);
  }

  function step(key: string, output: JsonValue) {
    return { key, id: key, kind: "run", status: "completed", output, attempt: 0, fresh: true } as const;
  }

  it("records concurrent fresh steps of many runs in fewer statements than steps, each answered as alone", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool, groupCommit: { maxInFlight: 1 } });
    const runIds = await claimedRuns(store, 40);
    const answers = await Promise.all(
      runIds.map((runId, index) => store.commitStep({ runId, leaseEpoch: 1, step: { ...step("s1", { index }), startedAt: T0 - index }, now: T0 + 1 })),
    );
    expect(answers).toEqual(
      runIds.map((_, index) => ({ ok: true, record: { key: "s1", id: "s1", kind: "run", status: "completed", output: { index }, attempt: 0 } })),
    );
    const batched = statements.filter((name) => name === "stepwise_commit_new_steps").length;
    expect(batched).toBeGreaterThan(0);
    expect(statements.length).toBeLessThan(20);
    for (const [index, runId] of runIds.entries()) {
      // The batched statement records when each body began, and when its result was committed.
      expect(await store.listSteps(runId)).toEqual([
        { key: "s1", id: "s1", kind: "run", status: "completed", output: { index }, attempt: 0, startedAt: T0 - index, endedAt: T0 + 1 },
      ]);
    }
  });

  it("answers a lost lease and an already recorded step inside a batch as the single path does", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool, groupCommit: { maxInFlight: 1 } });
    const runIds = await claimedRuns(store, 4);
    await store.commitStep({ runId: "run_2", leaseEpoch: 1, step: step("s1", "first"), now: T0 + 1 });
    await store.recoverLeases({ now: T0, all: true });
    await store.claimRun({ runId: "run_3", workerId: "worker-b", now: T0, leaseMs: 60_000 });
    for (const runId of ["run_0", "run_1", "run_2"]) await store.claimRun({ runId, workerId: "worker-a", now: T0, leaseMs: 60_000 });
    statements.length = 0;
    const answers = await Promise.all(
      runIds.map((runId) => store.commitStep({ runId, leaseEpoch: runId === "run_3" ? 1 : 2, step: step("s1", `again-${runId}`), now: T0 + 2 })),
    );
    expect(statements).toContain("stepwise_commit_new_steps");
    expect(answers).toEqual([
      { ok: true, record: expect.objectContaining({ output: "again-run_0" }) },
      { ok: true, record: expect.objectContaining({ output: "again-run_1" }) },
      // Recorded by an earlier pass: the recorded result stands and is answered.
      { ok: true, record: expect.objectContaining({ output: "first" }) },
      // run_3 was claimed by worker-b (epoch 2): worker-a's epoch 1 is fenced off.
      { ok: false },
    ]);
    expect(await store.listSteps("run_3")).toEqual([]);
  });

  it("keeps a bad step from failing the others of its batch", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool, groupCommit: { maxInFlight: 1 } });
    const runIds = await claimedRuns(store, 6);
    const answers = await Promise.all(
      runIds.map((runId, index) =>
        store
          .commitStep({ runId, leaseEpoch: 1, step: { ...step("s1", index), kind: index === 3 ? ("no-such-kind" as "run") : "run" }, now: T0 + 1 })
          .then((answer) => answer.ok)
          .catch((error: Error) => error.message),
      ),
    );
    expect(answers).toEqual([true, true, true, expect.stringMatching(/invalid input value for enum step_kind/), true, true]);
  });

  it("ends concurrent runs in fewer statements, a child with its parent's hand-over, and not a run whose lease is gone", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool, groupCommit: { maxInFlight: 1 } });
    const runIds = await claimedRuns(store, 20);
    // run_0 waits on an invoke of a child run.
    const child = { id: "evt_child", name: "stepwise/invoke", data: {}, ts: T0 };
    await store.suspendRun({
      runId: "run_0",
      leaseEpoch: 1,
      steps: [{ key: "call", id: "call", kind: "invoke", status: "waiting", attempt: 0, wakeAt: T0 + 60_000 }],
      waits: [],
      invokes: { events: [child], runs: [{ id: "run_child", functionId: "child", eventId: child.id, parentRunId: "run_0", parentStepKey: "call" }], now: T0 },
      pendingKeys: [],
      now: T0,
    });
    await store.claimRun({ runId: "run_child", workerId: "worker-a", now: T0, leaseMs: 60_000 });
    statements.length = 0;
    const ending = ["run_child", ...runIds.slice(1)];
    const answers = await Promise.all(
      ending.map((runId) => store.finishRun({ runId, leaseEpoch: runId === "run_5" ? 7 : 1, status: "completed", output: { runId }, now: T0 + 5 })),
    );
    expect(statements).toContain("stepwise_finish_runs");
    expect(statements.length).toBeLessThan(ending.length);
    expect(answers).toEqual(
      ending.map((runId) =>
        runId === "run_5"
          ? { ok: false, followUpRuns: [] }
          : runId === "run_child"
            ? { ok: true, followUpRuns: [], parent: { runId: "run_0", functionId: "fn" } }
            : { ok: true, followUpRuns: [] },
      ),
    );
    for (const runId of ending) {
      expect(await store.getRun(runId)).toMatchObject(runId === "run_5" ? { status: "running" } : { status: "completed", output: { runId }, endedAt: T0 + 5 });
    }
    expect(await store.listSteps("run_0")).toEqual([expect.objectContaining({ key: "call", status: "completed", output: { runId: "run_child" } })]);
  });

  it("ends concurrent runs with their uncommitted step results in the same statements, and writes none for a run whose lease is gone", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool });
    const runIds = await claimedRuns(store, 12);
    const answers = await Promise.all(
      runIds.map((runId, index) =>
        store.finishRun({
          runId,
          leaseEpoch: runId === "run_4" ? 3 : 1,
          status: "completed",
          output: index,
          // run_7 ends with two steps, run_9 with none.
          steps: runId === "run_9" ? [] : [step("last", { runId }), ...(runId === "run_7" ? [step("also", "x")] : [])],
          now: T0 + 5,
        }),
      ),
    );
    expect(statements).toContain("stepwise_finish_runs");
    expect(statements.length).toBeLessThan(runIds.length);
    expect(answers.map((answer) => answer.ok)).toEqual(runIds.map((runId) => runId !== "run_4"));
    for (const runId of runIds) {
      const keys = (await store.listSteps(runId)).map((recorded) => [recorded.key, recorded.output, recorded.endedAt]);
      if (runId === "run_4" || runId === "run_9") expect(keys).toEqual([]);
      else if (runId === "run_7")
        expect(keys).toEqual([
          ["also", "x", T0 + 5],
          ["last", { runId }, T0 + 5],
        ]);
      else expect(keys).toEqual([["last", { runId }, T0 + 5]]);
    }
  });

  it("writes behind one statement in flight by default: concurrent ingests of one event each go out as two statements, each answered its own", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool });
    statements.length = 0;
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        store.ingest({
          events: [{ id: `evt_one_${index}`, name: "test/group", data: { index }, ts: T0 }],
          runs: [{ id: `run_one_${index}`, functionId: "fn", eventId: `evt_one_${index}` }],
          now: T0,
        }),
      ),
    );
    // The first alone (nothing was in flight), the 29 that arrived meanwhile together.
    expect(statements.filter((name) => name === "stepwise_insert_events_and_runs")).toHaveLength(2);
    expect(answers).toEqual(
      Array.from({ length: 30 }, (_, index) => ({
        events: [{ id: `evt_one_${index}`, duplicate: false }],
        runs: [{ id: `run_one_${index}`, functionId: "fn", eventId: `evt_one_${index}` }],
      })),
    );
    expect((await store.getRun("run_one_29"))?.status).toBe("queued");
  });

  it("claims concurrent runs in fewer statements: fresh ones, a replay with its steps and due sleep, not one that is not due", async () => {
    const store = createPostgresStore({ pool: fixture.database.pool, groupCommit: { maxInFlight: 1 } });
    const events = Array.from({ length: 30 }, (_, index) => ({ id: `evt_${index}`, name: "test/group", data: { index }, ts: T0 }));
    await store.ingest({ events, runs: events.map((event, index) => ({ id: `run_${index}`, functionId: "fn", eventId: event.id })), now: T0 });
    // run_0 recorded a step, then slept until T0 + 10; run_1 sleeps until T0 + 1000.
    for (const [runId, wakeAt] of [
      ["run_0", T0 + 10],
      ["run_1", T0 + 1000],
    ] as const) {
      await store.claimRun({ runId, workerId: "worker-a", now: T0, leaseMs: 60_000 });
      await store.commitStep({ runId, leaseEpoch: 1, step: step("s1", runId), now: T0 });
      await store.suspendRun({
        runId,
        leaseEpoch: 1,
        steps: [{ key: "nap", id: "nap", kind: "sleep", status: "waiting", attempt: 0, wakeAt }],
        waits: [],
        invokes: { events: [], runs: [], now: T0 + 1 },
        pendingKeys: [],
        now: T0 + 1,
      });
    }
    statements.length = 0;
    const requests = [...events.map((_, index) => `run_${index}`), "run_7"];
    const claims = await Promise.all(requests.map((runId) => store.claimRun({ runId, workerId: "worker-b", now: T0 + 20, leaseMs: 60_000 })));
    expect(statements).toContain("stepwise_claim_runs");
    expect(statements.length).toBeLessThan(requests.length);
    const [replay, notDue, ...rest] = claims;
    expect(replay).toEqual({
      run: expect.objectContaining({ id: "run_0", leaseEpoch: 2, leaseOwner: "worker-b", status: "running" }),
      event: events[0],
      steps: [
        { key: "s1", id: "s1", kind: "run", status: "completed", output: "run_0", attempt: 0 },
        { key: "nap", id: "nap", kind: "sleep", status: "completed", output: null, attempt: 0 },
      ],
    });
    expect(notDue).toBeNull();
    // run_7 was asked for twice: one claim holds it, the other answers null.
    expect(rest.filter((claim) => claim?.run.id === "run_7")).toHaveLength(1);
    expect(rest.filter((claim) => claim === null)).toHaveLength(1);
    for (const [offset, claim] of rest.slice(0, 28).entries()) {
      if (claim === null) continue;
      expect(claim).toEqual({
        run: expect.objectContaining({ id: `run_${offset + 2}`, leaseEpoch: 1, startedAt: T0 + 20 }),
        event: events[offset + 2],
        steps: [],
      });
    }
  });

  it("rejects group-commit limits below 1", () => {
    expect(() => createPostgresStore({ pool: fixture.database.pool, groupCommit: { maxInFlight: 0 } })).toThrow(
      /groupCommit.maxInFlight must be a whole number of at least 1, got 0/,
    );
  });
});
