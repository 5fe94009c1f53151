import type pg from "pg";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { createTestPostgres, type TestDatabase } from "../src/testing.js";

// On a server, a step commit and a concurrent claim serialize on the run row (the commit's
// lease check takes it FOR SHARE): a claim in flight holds back a stale commit, which then
// sees the new epoch and writes nothing. PGlite has one connection, so only a server shows it.

let database: TestDatabase;
beforeEach(async () => {
  database = await createTestPostgres();
});
afterEach(() => database.close());

/**
 * Waits until a statement of another backend waits for a lock `holder` holds (the blocked
 * statement is then parked on the run row, not merely slow), and answers that statement.
 */
async function blockedBy(holder: pg.PoolClient): Promise<string> {
  const { rows } = await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  const holderPid = rows[0]?.pid;
  return vi.waitFor(
    async () => {
      const waiting = await database.pool.query<{ query: string }>(
        "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))",
        [holderPid],
      );
      expect(waiting.rows, `a statement waiting for a lock held by backend ${holderPid}`).toHaveLength(1);
      return waiting.rows[0]?.query as string;
    },
    { timeout: 5000, interval: 20 },
  );
}

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
    expect(await blockedBy(other)).toMatch(/steps/);
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
    expect(await blockedBy(committer)).toMatch(/UPDATE runs/i);
    expect(settled).toBe(false);
    await committer.query("COMMIT");
    const claimed = await claim;
    expect(claimed?.run.leaseEpoch).toBe(2);
    expect(claimed?.steps.map((step) => [step.key, step.output])).toEqual([["s1", "a"]]);
  } finally {
    committer.release();
  }
});
