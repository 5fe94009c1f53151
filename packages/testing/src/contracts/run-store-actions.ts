import { describe, expect, it } from "vitest";
import { type RunStoreFixture, runStoreKit, T0 } from "./run-store-kit.js";

/**
 * What a `RunStore` must do for operators: cancel a run (fencing its worker, cascading to the
 * runs it invoked, failing its parent's step), create reruns that reuse the steps before a
 * chosen one, and list a run's steps in recorded order with their times.
 */
export function runStoreActionsContract(name: string, makeStore: () => Promise<RunStoreFixture>): void {
  describe(`RunStore actions contract: ${name}`, () => {
    const kit = runStoreKit(makeStore);
    const { startRun, claim, done, invoke, newId } = kit;
    const cancelError = { name: "StepwiseError", code: "RUN_CANCELLED", message: "stop" };

    it("cancels a running run: it ends cancelled, and its worker can record nothing more", async () => {
      const { store } = kit;
      const { runId } = await startRun();
      const { run } = await claim(runId);
      const { cancelled, parent } = await store.cancelRun({ runId, error: cancelError, now: T0 + 10 });
      expect(parent).toBeUndefined();
      expect(cancelled.map((entry) => [entry.id, entry.status, entry.error, entry.endedAt])).toEqual([[runId, "cancelled", cancelError, T0 + 10]]);
      expect(await store.commitStep({ runId, leaseEpoch: run.leaseEpoch, step: done("s1", 1), now: T0 + 11 })).toEqual({ ok: false });
      expect(await store.extendLease({ runId, leaseEpoch: run.leaseEpoch, until: T0 + 60_000 })).toBe(false);
      expect((await store.finishRun({ runId, leaseEpoch: run.leaseEpoch, status: "completed", output: 1, now: T0 + 12 })).ok).toBe(false);
      expect(await store.claimRun({ runId, workerId: "w", now: T0 + 13, leaseMs: 1000 })).toBeNull();
      // Read with others in one query (waitForRun's shared poll): missing ids are left out.
      expect((await store.getRuns([runId, "run_missing"])).map((entry) => [entry.id, entry.status])).toEqual([[runId, "cancelled"]]);
      expect(await store.getRuns([])).toEqual([]);
      // A second cancel finds nothing to do.
      expect((await store.cancelRun({ runId, error: cancelError, now: T0 + 14 })).cancelled).toEqual([]);
    });

    it("cancels the runs a run invoked with it, and a cancelled child fails its parent's step", async () => {
      const { store } = kit;
      const { runId: parentId } = await startRun();
      const { run } = await claim(parentId);
      const call = invoke(parentId, "call", "child-fn", T0 + 1);
      const suspended = await store.suspendRun({
        runId: parentId,
        leaseEpoch: run.leaseEpoch,
        steps: [call.step],
        waits: [],
        invokes: call.invokes,
        pendingKeys: [],
        now: T0 + 1,
      });
      expect(suspended.ok).toBe(true);
      const result = await store.cancelRun({ runId: call.childRunId, error: cancelError, now: T0 + 5 });
      expect(result.cancelled.map((entry) => entry.id)).toEqual([call.childRunId]);
      expect(result.parent).toEqual({ runId: parentId, functionId: "fn" });
      const [step] = await store.listSteps(parentId);
      expect(step).toMatchObject({ key: "call", status: "failed", error: { name: "StepError", code: "RUN_CANCELLED", nonRetriable: true } });
      expect((await store.getRun(parentId))?.wakeAt).toBe(T0 + 5);

      // Cancelling a parent takes its open children along.
      const { runId: secondParent } = await startRun();
      const second = await claim(secondParent);
      const secondCall = invoke(secondParent, "call", "child-fn", T0 + 6);
      await store.suspendRun({
        runId: secondParent,
        leaseEpoch: second.run.leaseEpoch,
        steps: [secondCall.step],
        waits: [],
        invokes: secondCall.invokes,
        pendingKeys: [],
        now: T0 + 6,
      });
      const cascade = await store.cancelRun({ runId: secondParent, error: cancelError, now: T0 + 7 });
      expect(cascade.cancelled.map((entry) => entry.id).sort()).toEqual([secondParent, secondCall.childRunId].sort());
      expect(cascade.parent).toBeUndefined();
    });

    it("creates reruns that start with the results recorded before a chosen step, and first runs once", async () => {
      const { store } = kit;
      const { runId, trigger } = await startRun();
      const { run } = await claim(runId);
      for (const [index, key] of ["a", "b", "c"].entries()) {
        await store.commitStep({
          runId,
          leaseEpoch: run.leaseEpoch,
          step: { ...done(key, key.toUpperCase()), startedAt: T0 + index * 10 },
          now: T0 + index * 10 + 5,
        });
      }
      const steps = await store.listSteps(runId);
      expect(steps.map((step) => [step.key, step.startedAt, step.endedAt])).toEqual([
        ["a", T0, T0 + 5],
        ["b", T0 + 10, T0 + 15],
        ["c", T0 + 20, T0 + 25],
      ]);
      const fromC = newId("run");
      const full = newId("run");
      const created = await store.createRuns({
        runs: [
          { id: fromC, functionId: "fn", eventId: trigger.id, rerunOf: runId, reuseStepsBefore: "c" },
          { id: full, functionId: "fn", eventId: trigger.id, rerunOf: runId },
          // A first run of a function that has one already is left out.
          { id: newId("run"), functionId: "fn", eventId: trigger.id },
          { id: newId("run"), functionId: "other-fn", eventId: trigger.id },
        ],
        now: T0 + 100,
      });
      expect(created.map((entry) => entry.functionId).sort()).toEqual(["fn", "fn", "other-fn"]);
      expect(await store.getRun(fromC)).toMatchObject({ status: "queued", rerunOf: runId, eventId: trigger.id, wakeAt: T0 + 100 });
      const reclaimed = await claim(fromC, T0 + 100);
      expect(reclaimed.steps.map((step) => [step.key, step.output])).toEqual([
        ["a", "A"],
        ["b", "B"],
      ]);
      expect((await claim(full, T0 + 100)).steps).toEqual([]);
    });
  });
}
