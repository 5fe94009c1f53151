import { afterEach, beforeEach, expect, it } from "vitest";
import { createTestPostgres, type TestDatabase } from "../src/testing.js";

// On a server, a step commit and a concurrent claim serialize on the run row (the commit's
// lease check takes it FOR SHARE): a claim in flight holds back a stale commit, which then
// sees the new epoch and writes nothing. PGlite has one connection, so only a server shows it.

let database: TestDatabase;
beforeEach(async () => {
  database = await createTestPostgres();
});
afterEach(() => database.close());

it("holds a stale commit back until a concurrent claim ends, then rejects it", async () => {
  const store = database.createStore();
  const event = { id: "evt_1", name: "test/fence", data: {}, ts: 0 };
  await store.ingest({ events: [event], runs: [{ id: "run_1", functionId: "fn", eventId: event.id }], now: 1000 });
  const claimed = await store.claimRun({ runId: "run_1", workerId: "worker-a", now: 1000, leaseMs: 10 });
  expect(claimed?.run.leaseEpoch).toBe(1);

  // Another worker's claim, caught between its UPDATE and its COMMIT.
  const other = await database.pool.connect();
  try {
    await other.query("BEGIN");
    await other.query("UPDATE runs SET lease_epoch = lease_epoch + 1, lease_owner = 'worker-b' WHERE id = 'run_1'");
    let settled = false;
    const commit = store.commitStep({
      runId: "run_1",
      leaseEpoch: 1,
      step: { key: "s1", id: "s1", kind: "run", status: "completed", output: "a", attempt: 0 },
      now: 1001,
    });
    void commit.finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    await other.query("COMMIT");
    expect(await commit).toEqual({ ok: false });
  } finally {
    other.release();
  }
  expect(await store.listSteps("run_1")).toEqual([]);
});

it("lets a commit that took the run row first finish before the claim, which then sees its step", async () => {
  const store = database.createStore();
  const event = { id: "evt_1", name: "test/fence", data: {}, ts: 0 };
  await store.ingest({ events: [event], runs: [{ id: "run_1", functionId: "fn", eventId: event.id }], now: 1000 });
  await store.claimRun({ runId: "run_1", workerId: "worker-a", now: 1000, leaseMs: 10 });
  await store.recoverLeases({ now: 2000 });

  // The same lock a commit statement takes, held open to stand for a commit in progress.
  const committer = await database.pool.connect();
  try {
    await committer.query("BEGIN");
    await committer.query("SELECT id FROM runs WHERE id = 'run_1' AND lease_epoch = 1 FOR SHARE");
    await committer.query(
      "INSERT INTO steps (run_id, step_key, step_id, kind, status, output, attempt, created_at, ended_at) VALUES ('run_1', 's1', 's1', 'run', 'completed', '\"a\"', 0, now(), now())",
    );
    let settled = false;
    const claim = store.claimRun({ runId: "run_1", workerId: "worker-b", now: 2000, leaseMs: 10_000 });
    void claim.finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    await committer.query("COMMIT");
    const claimed = await claim;
    expect(claimed?.run.leaseEpoch).toBe(2);
    expect(claimed?.steps.map((step) => [step.key, step.output])).toEqual([["s1", "a"]]);
  } finally {
    committer.release();
  }
});
