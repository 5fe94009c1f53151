import type { NewRun } from "@stepwise/engine";
import { describe, expect, it } from "vitest";
import { LEASE_MS, type RunStoreFixture, runStoreKit, T0 } from "./run-store-kit.js";

/**
 * What a `RunStore` keeps for flow control: a run's flow keys, answered wherever the run is
 * queued again, and waits found by their `match` value, with every condition of a step closed
 * when one resolves it.
 */
export function runStoreFlowContract(name: string, makeStore: () => Promise<RunStoreFixture>): void {
  describe(`RunStore flow contract: ${name}`, () => {
    const kit = runStoreKit(makeStore);
    const { event, newId, startRun, claim, runsFor, suspension } = kit;

    it("stores a run's flow keys and answers them wherever the run is queued again", async () => {
      const flow = { concurrency: ["user-1", ""], priority: 30 };
      const trigger = event();
      const [run] = runsFor([trigger]);
      const plain = { id: newId("run"), functionId: "fn", eventId: trigger.id };
      await kit.store.ingest({ events: [trigger], runs: [{ ...(run as NewRun), flow }, plain], now: T0 });
      expect((await kit.store.getRun((run as NewRun).id))?.flow).toEqual(flow);
      expect((await kit.store.getRun(plain.id))?.flow).toBeUndefined();
      const due = await kit.store.listDueRuns({ until: T0, limit: 10 });
      expect(due.find((entry) => entry.id === (run as NewRun).id)).toEqual({ id: (run as NewRun).id, functionId: "fn", wakeAt: T0, flow, fresh: true });
      const claimed = await claim((run as NewRun).id);
      expect(claimed.run.flow).toEqual(flow);
      // A started run is no longer fresh: its start is behind it (priority moved only that).
      const recovered = await kit.store.recoverLeases({ now: T0 + LEASE_MS + 1 });
      expect(recovered).toEqual([{ id: (run as NewRun).id, functionId: "fn", flow }]);
      expect((await kit.store.listDueRuns({ until: T0 + LEASE_MS + 1, limit: 10 })).find((entry) => entry.id === (run as NewRun).id)?.fresh).toBeUndefined();
      const [rerun] = await kit.store.createRuns({
        runs: [{ id: newId("run"), functionId: "fn", eventId: trigger.id, rerunOf: (run as NewRun).id, flow }],
        now: T0,
      });
      expect((await kit.store.getRun(rerun?.id as string))?.flow).toEqual(flow);
    });

    it("finds keyed waits by an event's field values, with the unkeyed ones, and leaves timed-out waits out", async () => {
      const opened: Record<string, string> = {};
      for (const [user, timeoutAt] of [
        ["u1", T0 + 60_000],
        ["u2", T0 + 60_000],
        ["u3", T0 + 60_000],
        ["late", T0 + 5],
      ] as const) {
        const { runId } = await startRun();
        const { run } = await claim(runId);
        const base = suspension(runId, run.leaseEpoch, T0 + 1, { waitFor: [{ key: "reply", timeoutAt }] });
        await kit.store.suspendRun({ ...base, waits: base.waits.map((wait) => ({ ...wait, matchPath: "data.userId", matchValue: JSON.stringify(user) })) });
        opened[user] = runId;
      }
      const { runId: open } = await startRun();
      const { run } = await claim(open);
      await kit.store.suspendRun(suspension(open, run.leaseEpoch, T0 + 1, { waitFor: [{ key: "any", timeoutAt: T0 + 60_000 }] }));
      const found = async (values: Array<[string, string]>, now = T0 + 10) =>
        (await kit.store.findWaits("test/reply", { matchValues: values, now })).map((wait) => wait.runId).sort();
      expect(await found([["data.userId", '"u2"']])).toEqual([opened["u2"], open].sort());
      expect(await found([["data.userId", '"nobody"']])).toEqual([open]);
      expect(await found([["data.other", '"u2"']])).toEqual([open]);
      // Timed out (T0 + 5) by the time of the event.
      expect(await found([["data.userId", '"late"']])).toEqual([open]);
      expect(await found([["data.userId", '"late"']], T0 + 4)).toEqual([opened["late"], open].sort());
      // Without values: every open wait of the name.
      expect((await kit.store.findWaits("test/reply")).length).toBe(5);
    });

    it("closes every condition of a step when one of them resolves it", async () => {
      const { runId } = await startRun();
      const { run } = await claim(runId);
      const base = suspension(runId, run.leaseEpoch, T0 + 1, { waitFor: [{ key: "either", timeoutAt: T0 + 60_000 }] });
      const [first] = base.waits;
      await kit.store.suspendRun({
        ...base,
        waits: [first as (typeof base.waits)[number], { ...(first as (typeof base.waits)[number]), alternative: 1, eventName: "test/rejected" }],
      });
      expect((await kit.store.findWaits("test/rejected")).map((wait) => [wait.stepKey, wait.alternative])).toEqual([["either", 1]]);
      expect(await kit.store.resolveWait({ runId, stepKey: "either", event: event({ name: "test/rejected" }), now: T0 + 10 })).toBe("fn");
      expect(await kit.store.findWaits("test/reply")).toEqual([]);
      expect(await kit.store.findWaits("test/rejected")).toEqual([]);
    });
    it("stores a skipped run ended at once, with its reason, and never claims or cancels it", async () => {
      const trigger = event();
      const [run] = runsFor([trigger]);
      const reason = { name: "StepwiseError", code: "RATE_LIMITED", message: "over the limit" };
      const result = await kit.store.ingest({ events: [trigger], runs: [{ ...(run as NewRun), skipped: reason }], now: T0 });
      expect(result.runs.map((entry) => entry.id)).toEqual([(run as NewRun).id]);
      expect(await kit.store.getRun((run as NewRun).id)).toMatchObject({ status: "skipped", error: reason, endedAt: T0 });
      expect(await kit.store.claimRun({ runId: (run as NewRun).id, workerId: "w", now: T0 + 1, leaseMs: LEASE_MS })).toBeNull();
      expect(await kit.store.listDueRuns({ until: T0 + 1, limit: 10 })).toEqual([]);
      expect((await kit.store.cancelRun({ runId: (run as NewRun).id, error: reason, now: T0 + 2 })).cancelled).toEqual([]);
    });
  });
}
