import { EVENT_DEDUPE_WINDOW_MS } from "@stepwise/core";
import type { StepCommit } from "@stepwise/core/internal";
import type { IngestInput, NewRun, RunStore, StoredEvent, SuspendedStep } from "@stepwise/engine";
import { beforeEach, describe, expect, it } from "vitest";
import { LEASE_MS, type RunStoreFixture, runStoreKit, T0 } from "./run-store-kit.js";

export type { RunStoreFixture } from "./run-store-kit.js";

/**
 * The behaviour every `RunStore` must have, as a vitest `describe` block: deduplication,
 * claims and lease epochs, exactly-once step results, suspensions, waits, invokes, cron
 * ticks and recovery. `makeStore` is called before each test with a fresh, empty store.
 *
 * @example
 * runStoreContract("memory store", async () => {
 *   const store = createMemoryStore();
 *   return { store, close: () => store.close() };
 * });
 */
export function runStoreContract(name: string, makeStore: () => Promise<RunStoreFixture>): void {
  describe(`RunStore contract: ${name}`, () => {
    const kit = runStoreKit(makeStore);
    const { event, startRun, claim, done, runsFor, sleep, suspension, invoke } = kit;
    // The store of the test running now (a fresh one each test).
    let store: RunStore;
    beforeEach(() => {
      store = kit.store;
    });

    it("stores events and creates their runs, queued and due at once", async () => {
      const trigger = event({ key: "order-1", data: { order: 1 } });
      const runs = [...runsFor([trigger], "fn-a"), ...runsFor([trigger], "fn-b")];
      const result = await store.ingest({ events: [trigger], runs, now: T0 });
      expect(result.events).toEqual([{ id: trigger.id, duplicate: false }]);
      expect(result.runs.map((run) => run.id).sort()).toEqual(runs.map((run) => run.id).sort());
      expect(await store.getEvent(trigger.id)).toEqual(trigger);
      expect(await store.getEvent("evt_missing")).toBeNull();
      const run = await store.getRun(runs[0]!.id);
      expect(run).toMatchObject({ functionId: "fn-a", eventId: trigger.id, status: "queued", attempt: 0, leaseEpoch: 0, wakeAt: T0, createdAt: T0 });
      expect(run?.leaseOwner).toBeUndefined();
      expect((await store.listRunsForEvent(trigger.id)).map((found) => found.id).sort()).toEqual(runs.map((item) => item.id).sort());
      expect(await store.getRun("run_missing")).toBeNull();
    });

    it("creates a run already claimed when asked (eager start), with and without event keys", async () => {
      for (const key of [undefined, "eager-key"]) {
        const trigger = event(key === undefined ? {} : { key });
        const [queued, claimed] = [...runsFor([trigger], "fn-queued"), ...runsFor([trigger], "fn-eager")] as [NewRun, NewRun];
        const lease = { workerId: "worker-e", expiresAt: T0 + LEASE_MS };
        await store.ingest({ events: [trigger], runs: [queued, { ...claimed, lease }], now: T0 });
        expect(await store.getRun(queued.id)).toMatchObject({ status: "queued", leaseEpoch: 0 });
        expect(await store.getRun(claimed.id)).toMatchObject({
          status: "running",
          leaseEpoch: 1,
          leaseOwner: "worker-e",
          leaseExpiresAt: T0 + LEASE_MS,
          startedAt: T0,
        });
        // The creator holds it: its commits land, and nobody else can claim it.
        expect(await store.claimRun({ runId: claimed.id, workerId: "worker-b", now: T0, leaseMs: LEASE_MS })).toBeNull();
        expect(await store.commitStep({ runId: claimed.id, leaseEpoch: 1, step: done("s1", "eager"), now: T0 + 1 })).toMatchObject({ ok: true });
      }
    });

    it("deduplicates by key within 24 h, creates no runs for duplicates, and accepts the key again after the window", async () => {
      const first = await startRun({ key: "k-1" });
      const again = event({ key: "k-1" });
      const dup = await store.ingest({ events: [again], runs: runsFor([again]), now: T0 + 60 * 60 * 1000 });
      expect(dup).toEqual({ events: [{ id: first.trigger.id, duplicate: true }], runs: [] });
      expect(await store.getEvent(again.id)).toBeNull();
      expect(await store.listRunsForEvent(again.id)).toEqual([]);
      // Twice in one batch: the second is a duplicate of the first.
      const pair = [event({ key: "k-2" }), event({ key: "k-2" })];
      const batch = await store.ingest({ events: pair, runs: runsFor(pair), now: T0 });
      expect(batch.events).toEqual([pair[0]!.id, pair[0]!.id].map((id, index) => ({ id, duplicate: index === 1 })));
      expect(batch.runs.map((run) => run.eventId)).toEqual([pair[0]!.id]);

      const later = event({ key: "k-1" });
      const afterWindow = T0 + EVENT_DEDUPE_WINDOW_MS + 1;
      const fresh = await store.ingest({ events: [later], runs: runsFor([later]), now: afterWindow });
      expect(fresh.events).toEqual([{ id: later.id, duplicate: false }]);
      expect(fresh.runs).toHaveLength(1);
      const third = await store.ingest({ events: [event({ key: "k-1" })], runs: [], now: afterWindow + 1000 });
      expect(third.events).toEqual([{ id: later.id, duplicate: true }]);
    });

    it("lets one of several concurrent ingests of a key be the original", async () => {
      const attempts = [1, 2, 3, 4, 5].map(() => event({ key: "race" }));
      const results = await Promise.all(attempts.map((item) => store.ingest({ events: [item], runs: runsFor([item]), now: T0 })));
      const originals = results.filter((result) => !result.events[0]?.duplicate);
      expect(originals).toHaveLength(1);
      const originalId = originals[0]?.events[0]?.id;
      expect(results.map((result) => result.events[0]?.id)).toEqual(attempts.map(() => originalId));
      expect(results.flatMap((result) => result.runs).map((run) => run.eventId)).toEqual([originalId]);
    });

    it("ingests a large batch in one call", async () => {
      const events = Array.from({ length: 2000 }, (_, index) => event({ key: `bulk-${index}` }));
      const result = await store.ingest({ events, runs: runsFor(events, "bulk"), now: T0 });
      expect(result.events.filter((entry) => !entry.duplicate)).toHaveLength(2000);
      expect(result.runs).toHaveLength(2000);
      expect(await store.listDueRuns({ until: T0, limit: 5000 })).toHaveLength(2000);
    });

    it("claims only a due run, bumps its epoch, and refuses a second claim", async () => {
      const { runId, trigger } = await startRun({ now: T0 + 100 });
      expect(await store.claimRun({ runId, workerId: "worker-a", now: T0 + 99, leaseMs: LEASE_MS })).toBeNull();
      const claimed = await claim(runId, T0 + 100);
      expect(claimed.run).toMatchObject({ status: "running", leaseEpoch: 1, leaseOwner: "worker-a", leaseExpiresAt: T0 + 100 + LEASE_MS, startedAt: T0 + 100 });
      expect(claimed.event).toEqual(trigger);
      expect(claimed.steps).toEqual([]);
      expect(await store.claimRun({ runId, workerId: "worker-b", now: T0 + 200, leaseMs: LEASE_MS })).toBeNull();
      expect(await store.getRun(runId)).toMatchObject({ status: "running", leaseEpoch: 1, leaseOwner: "worker-a" });
    });

    it("records a step once: a second commit answers the first record", async () => {
      const { runId } = await startRun();
      // A run never claimed (epoch 0) takes no step result.
      expect(await store.commitStep({ runId, leaseEpoch: 0, step: { ...done("s0", "early"), fresh: true }, now: T0 })).toEqual({ ok: false });
      const { leaseEpoch } = (await claim(runId)).run;
      const first = await store.commitStep({ runId, leaseEpoch, step: done("s1", { a: 1 }), now: T0 + 1 });
      expect(first).toEqual({ ok: true, record: { key: "s1", id: "s1", kind: "run", status: "completed", output: { a: 1 }, attempt: 0 } });
      expect(await store.commitStep({ runId, leaseEpoch, step: done("s1", { a: 2 }, 1), now: T0 + 2 })).toEqual(first);
      // Top-level strings, numbers, null and arrays come back as they went in.
      const outputs = { s2: "text", s3: null, s4: 42, s5: [1, "two"], s6: false };
      for (const [key, output] of Object.entries(outputs)) await store.commitStep({ runId, leaseEpoch, step: done(key, output), now: T0 + 3 });
      const failed: StepCommit = {
        key: "s7",
        id: "s7",
        kind: "run",
        status: "failed",
        error: { name: "Error", message: "boom", nonRetriable: true },
        attempt: 3,
      };
      await store.commitStep({ runId, leaseEpoch, step: failed, now: T0 + 4 });
      const steps = await store.listSteps(runId);
      expect(Object.fromEntries(steps.map((step) => [step.key, step.output]))).toEqual({ s1: { a: 1 }, ...outputs, s7: undefined });
      // Listed with its times: no `startedAt` given, so it began when it was recorded.
      expect(steps.find((step) => step.key === "s7")).toEqual({ ...failed, startedAt: T0 + 4, endedAt: T0 + 4 });
      // A commit marked `fresh` (no row when the pass began) takes the plain-insert path; a
      // conflict there still answers the record that stands.
      const freshFirst = await store.commitStep({ runId, leaseEpoch, step: { ...done("s8", "first"), fresh: true }, now: T0 + 5 });
      expect(freshFirst).toEqual({ ok: true, record: { key: "s8", id: "s8", kind: "run", status: "completed", output: "first", attempt: 0 } });
      expect(await store.commitStep({ runId, leaseEpoch, step: { ...done("s8", "second"), fresh: true }, now: T0 + 6 })).toEqual(freshFirst);
      expect(await store.commitStep({ runId, leaseEpoch: leaseEpoch + 1, step: { ...done("s9", "x"), fresh: true }, now: T0 + 7 })).toEqual({ ok: false });
    });

    it("rejects a stale worker's writes after another claimed the run; the recorded result stands", async () => {
      const { runId } = await startRun();
      const a = (await claim(runId, T0, "worker-a")).run.leaseEpoch;
      const expired = T0 + LEASE_MS + 1;
      expect(await store.recoverLeases({ now: expired })).toEqual([{ id: runId, functionId: "fn" }]);
      // Recovered (no longer running): even the old epoch takes no step result now.
      expect(await store.commitStep({ runId, leaseEpoch: a, step: { ...done("s0", "late"), fresh: true }, now: expired })).toEqual({ ok: false });
      const b = (await claim(runId, expired, "worker-b")).run.leaseEpoch;
      expect(b).toBeGreaterThan(a);
      expect((await store.commitStep({ runId, leaseEpoch: b, step: done("s1", "from-b"), now: expired + 1 })).ok).toBe(true);
      expect(await store.commitStep({ runId, leaseEpoch: a, step: done("s1", "from-a"), now: expired + 2 })).toEqual({ ok: false });
      expect(await store.commitStep({ runId, leaseEpoch: a, step: done("s2", "from-a"), now: expired + 2 })).toEqual({ ok: false });
      expect((await store.listSteps(runId)).map((step) => [step.key, step.output])).toEqual([["s1", "from-b"]]);
      expect(await store.extendLease({ runId, leaseEpoch: a, until: expired + 99_999 })).toBe(false);
      expect(await store.extendLease({ runId, leaseEpoch: b, until: expired + 99_999 })).toBe(true);
      expect((await store.getRun(runId))?.leaseExpiresAt).toBe(expired + 99_999);
      const stale = { runId, leaseEpoch: a, now: expired + 3 };
      expect((await store.finishRun({ ...stale, status: "completed", output: "a" })).ok).toBe(false);
      expect((await store.suspendRun(suspension(runId, a, expired + 3, { steps: [sleep("nap", expired + 9)] }))).ok).toBe(false);
      expect(await store.releaseRun({ ...stale, wakeAt: expired })).toBe(false);
      expect(await store.retryRun({ ...stale, error: { name: "Error", message: "x" }, wakeAt: expired })).toBe(false);
      expect(await store.getRun(runId)).toMatchObject({ status: "running", leaseOwner: "worker-b", attempt: 0 });
      expect(await store.listSteps(runId)).toHaveLength(1);
    });

    it("suspends: wakes at the earliest open step, sleeping or waiting, and never for an open invoke alone", async () => {
      const { runId } = await startRun();
      const first = (await claim(runId)).run.leaseEpoch;
      const error = { name: "Error", message: "flaky" };
      const flaky: SuspendedStep = { key: "flaky", id: "flaky", kind: "run", status: "retrying", attempt: 0, error, wakeAt: T0 + 500 };
      expect(await store.suspendRun(suspension(runId, first, T0 + 1, { steps: [sleep("nap", T0 + 1000), flaky] }))).toEqual({
        ok: true,
        wakeAt: T0 + 500,
        childRuns: [],
      });
      const slept = await store.getRun(runId);
      expect(slept).toMatchObject({ status: "sleeping", wakeAt: T0 + 500, leaseEpoch: first });
      expect(slept?.leaseOwner).toBeUndefined();

      const second = await claim(runId, T0 + 500);
      // The port promises no order among steps: the executor finds them by key.
      expect([...second.steps].sort((x, y) => x.key.localeCompare(y.key))).toEqual([
        { key: "flaky", id: "flaky", kind: "run", status: "retrying", attempt: 0, error },
        { key: "nap", id: "nap", kind: "sleep", status: "waiting", attempt: 0 },
      ]);
      await store.commitStep({ runId, leaseEpoch: second.run.leaseEpoch, step: done("flaky", "ok", 1), now: T0 + 501 });
      const waiting = await store.suspendRun(
        suspension(runId, second.run.leaseEpoch, T0 + 502, { waitFor: [{ key: "reply", timeoutAt: T0 + 5000 }], pendingKeys: ["nap"] }),
      );
      expect(waiting).toEqual({ ok: true, wakeAt: T0 + 1000, childRuns: [] });
      expect(await store.getRun(runId)).toMatchObject({ status: "waiting", wakeAt: T0 + 1000 });

      const other = await startRun();
      const { step } = invoke(other.runId, "call", "child", T0 + 1);
      const forever = await store.suspendRun(suspension(other.runId, (await claim(other.runId)).run.leaseEpoch, T0 + 1, { steps: [step] }));
      expect(forever).toEqual({ ok: true, childRuns: [] });
      expect(await store.getRun(other.runId)).toMatchObject({ status: "waiting" });
      expect((await store.getRun(other.runId))?.wakeAt).toBeUndefined();
      expect(await store.listDueRuns({ until: T0 + 10 ** 12, limit: 10 })).not.toContainEqual(expect.objectContaining({ id: other.runId }));
    });

    it("completes due sleeps and times out due waits (output null) when the run is claimed", async () => {
      const { runId } = await startRun();
      const { run } = await claim(runId);
      const waitFor = [
        { key: "w1", timeoutAt: T0 + 1000 },
        { key: "w2", timeoutAt: T0 + 9000 },
      ];
      await store.suspendRun(suspension(runId, run.leaseEpoch, T0 + 1, { steps: [sleep("nap", T0 + 1000)], waitFor }));
      expect(await store.claimRun({ runId, workerId: "worker-a", now: T0 + 999, leaseMs: LEASE_MS })).toBeNull();
      const byKey = Object.fromEntries((await claim(runId, T0 + 1000)).steps.map((step) => [step.key, step]));
      expect(byKey["nap"]).toMatchObject({ status: "completed", output: null });
      expect(byKey["w1"]).toMatchObject({ status: "completed", output: null });
      expect(byKey["w2"]).toMatchObject({ status: "waiting" });
      expect((await store.findWaits("test/reply")).map((wait) => wait.stepKey)).toEqual(["w2"]);
    });

    it("fails an invoke step that timed out, and a late child result leaves it failed", async () => {
      const { runId } = await startRun({ functionId: "parent" });
      const { run } = await claim(runId);
      const { child, childRunId, step, invokes } = invoke(runId, "call", "child", T0 + 1, T0 + 1000);
      const suspended = await store.suspendRun(suspension(runId, run.leaseEpoch, T0 + 1, { steps: [step], invokes }));
      expect(suspended).toEqual({ ok: true, wakeAt: T0 + 1000, childRuns: [{ id: childRunId, functionId: "child", eventId: child.id }] });
      expect(await store.getRun(childRunId)).toMatchObject({ status: "queued", parentRunId: runId, parentStepKey: "call" });

      const timedOut = { name: "StepwiseError", code: "INVOKE_TIMEOUT", message: 'step.invoke("call") timed out', nonRetriable: true };
      expect((await claim(runId, T0 + 1000)).steps).toEqual([{ key: "call", id: "call", kind: "invoke", status: "failed", error: timedOut, attempt: 0 }]);
      const childEpoch = (await claim(childRunId, T0 + 1001)).run.leaseEpoch;
      expect(await store.finishRun({ runId: childRunId, leaseEpoch: childEpoch, status: "completed", output: 1, now: T0 + 1002 })).toEqual({
        ok: true,
        followUpRuns: [],
      });
      expect((await store.listSteps(runId))[0]).toMatchObject({ status: "failed", error: timedOut });
    });

    it("resolves a wait once, with the event as output, and wakes the run", async () => {
      const { runId, trigger } = await startRun();
      const { run } = await claim(runId);
      const expression = "event.data.n == async.data.n";
      await store.suspendRun(suspension(runId, run.leaseEpoch, T0 + 1, { waitFor: [{ key: "reply", timeoutAt: T0 + 60_000, expression }] }));
      expect(await store.findWaits("test/reply")).toEqual([
        {
          runId,
          stepKey: "reply",
          stepId: "reply",
          kind: "step",
          alternative: 0,
          eventName: "test/reply",
          expression,
          timeoutAt: T0 + 60_000,
          triggerEvent: trigger,
        },
      ]);
      expect(await store.findWaits("test/other")).toEqual([]);
      const reply = event({ name: "test/reply", data: { n: 1 }, ts: T0 + 9 });
      // The function id comes back with the wake-up: the engine queues it without reading the run.
      expect(await store.resolveWait({ runId, stepKey: "reply", event: reply, now: T0 + 10 })).toBe("fn");
      expect(await store.resolveWait({ runId, stepKey: "reply", event: event({ name: "test/reply" }), now: T0 + 11 })).toBeNull();
      expect(await store.getRun(runId)).toMatchObject({ status: "waiting", wakeAt: T0 + 10 });
      expect(await store.findWaits("test/reply")).toEqual([]);
      const output = { id: reply.id, name: reply.name, data: reply.data, ts: reply.ts };
      expect((await claim(runId, T0 + 10)).steps).toEqual([{ key: "reply", id: "reply", kind: "wait", status: "completed", output, attempt: 0 }]);
    });

    it("flags events that open waits may match, and lists them until marked matched", async () => {
      const { runId } = await startRun();
      const { run } = await claim(runId);
      const lonely = event({ name: "test/nobody-waits" });
      const first = await store.ingest({ events: [lonely], runs: [], now: T0 + 1 });
      expect(first.events).toEqual([{ id: lonely.id, duplicate: false }]);
      await store.suspendRun(suspension(runId, run.leaseEpoch, T0 + 2, { waitFor: [{ key: "reply", timeoutAt: T0 + 60_000 }] }));
      const reply = event({ name: "test/reply" });
      const second = await store.ingest({ events: [reply], runs: [], now: T0 + 3 });
      expect(second.events).toEqual([{ id: reply.id, duplicate: false, matchWaits: true }]);
      // Not yet matched (think: the process died here), so the reconciler finds it; events
      // nobody waited for are never listed.
      expect((await store.listUnmatchedEvents({ before: T0 + 4, limit: 10 })).map((item) => item.id)).toEqual([reply.id]);
      expect(await store.listUnmatchedEvents({ before: T0 + 3, limit: 10 })).toEqual([]);
      await store.markWaitsMatched({ eventIds: [reply.id], now: T0 + 5 });
      expect(await store.listUnmatchedEvents({ before: T0 + 10, limit: 10 })).toEqual([]);
    });

    it("wakes at once when a step the pass was waiting on was resolved while the run was running", async () => {
      const { runId } = await startRun();
      const first = (await claim(runId)).run.leaseEpoch;
      const steps = [sleep("nap", T0 + 100), sleep("later", T0 + 50_000)];
      await store.suspendRun(suspension(runId, first, T0 + 1, { steps, waitFor: [{ key: "reply", timeoutAt: T0 + 60_000 }] }));
      const second = (await claim(runId, T0 + 100)).run.leaseEpoch;
      // The event arrives while the handler runs: the running run is not touched...
      expect(await store.resolveWait({ runId, stepKey: "reply", event: event({ name: "test/reply" }), now: T0 + 101 })).toBe("fn");
      expect(await store.getRun(runId)).toMatchObject({ status: "running", leaseEpoch: second });
      // ...and the suspension of the pass that still saw it open wakes it at once, not at "later";
      // the wait it sends again (a retried suspension, say) neither reopens nor overwrites it.
      const again = suspension(runId, second, T0 + 102, { pendingKeys: ["later"], waitFor: [{ key: "reply", timeoutAt: T0 + 60_000 }] });
      expect(await store.suspendRun(again)).toEqual({ ok: true, wakeAt: T0 + 102, childRuns: [] });
      expect(await store.findWaits("test/reply")).toEqual([]);
      expect((await claim(runId, T0 + 102)).steps.find((step) => step.key === "reply")?.status).toBe("completed");
    });

    it("hands a child's result to the parent's invoke step and makes the parent runnable", async () => {
      for (const outcome of ["completed", "failed"] as const) {
        const { runId } = await startRun({ functionId: "parent" });
        const { run } = await claim(runId);
        const { childRunId, step, invokes } = invoke(runId, "call", "child-fn", T0 + 1);
        await store.suspendRun(suspension(runId, run.leaseEpoch, T0 + 1, { steps: [step], invokes }));
        const childEpoch = (await claim(childRunId, T0 + 2)).run.leaseEpoch;
        const result = outcome === "completed" ? { status: outcome, output: { sum: 3 } } : { status: outcome, error: { name: "Error", message: "boom" } };
        const finished = await store.finishRun({ runId: childRunId, leaseEpoch: childEpoch, ...result, now: T0 + 3 });
        expect(finished).toEqual({ ok: true, parent: { runId, functionId: "parent" }, followUpRuns: [] });
        expect(await store.getRun(runId)).toMatchObject({ status: "waiting", wakeAt: T0 + 3 });
        const error = { name: "StepError", code: "STEP_FAILED", message: "invoked function child-fn failed: boom", nonRetriable: true };
        const expected = outcome === "completed" ? { status: "completed", output: { sum: 3 } } : { status: "failed", error };
        expect((await store.listSteps(runId))[0]).toMatchObject(expected);
      }
    });

    it("ends a run with its follow-up events and runs in one step, and not at all without the lease", async () => {
      const { runId } = await startRun();
      const { run } = await claim(runId);
      const failure = event({ name: "stepwise/function.failed" });
      const followUp: IngestInput = { events: [failure], runs: runsFor([failure], "fn-failure"), now: T0 + 5 };
      const error = { name: "Error", message: "handler threw" };
      const stale = await store.finishRun({ runId, leaseEpoch: run.leaseEpoch + 1, status: "failed", error, followUp, now: T0 + 5 });
      expect(stale).toEqual({ ok: false, followUpRuns: [] });
      expect(await store.getEvent(failure.id)).toBeNull();
      const finished = await store.finishRun({ runId, leaseEpoch: run.leaseEpoch, status: "failed", error, followUp, now: T0 + 5 });
      expect(finished).toEqual({ ok: true, followUpRuns: [{ id: followUp.runs[0]!.id, functionId: "fn-failure", eventId: failure.id }] });
      const ended = await store.getRun(runId);
      expect(ended).toMatchObject({ status: "failed", error, endedAt: T0 + 5 });
      expect(ended?.wakeAt ?? ended?.leaseOwner).toBeUndefined();
      expect(await store.getRun(followUp.runs[0]!.id)).toMatchObject({ status: "queued", functionId: "fn-failure" });
      expect(await store.claimRun({ runId, workerId: "worker-a", now: T0 + 10 ** 9, leaseMs: LEASE_MS })).toBeNull();
    });

    it("records the steps a run's end carries with it, and neither without the lease", async () => {
      const { runId } = await startRun();
      const { leaseEpoch } = (await claim(runId)).run;
      const steps: StepCommit[] = [
        { ...done("last", { b: [1, 2] }), startedAt: T0 + 1, fresh: true },
        { key: "also", id: "also", kind: "run", status: "failed", error: { name: "Error", message: "caught" }, attempt: 0, startedAt: T0 + 1 },
      ];
      expect((await store.finishRun({ runId, leaseEpoch: leaseEpoch + 1, status: "completed", output: "done", steps, now: T0 + 2 })).ok).toBe(false);
      expect(await store.listSteps(runId)).toEqual([]);
      expect((await store.finishRun({ runId, leaseEpoch, status: "completed", output: "done", steps, now: T0 + 2 })).ok).toBe(true);
      expect(await store.getRun(runId)).toMatchObject({ status: "completed", output: "done" });
      const recorded = await store.listSteps(runId);
      expect(recorded.map((step) => [step.key, step.status, step.output ?? step.error?.message, step.startedAt, step.endedAt]).sort()).toEqual([
        ["also", "failed", "caught", T0 + 1, T0 + 2],
        ["last", "completed", { b: [1, 2] }, T0 + 1, T0 + 2],
      ]);
    });

    it("retries and releases a run only with its lease", async () => {
      const { runId } = await startRun();
      const first = (await claim(runId)).run.leaseEpoch;
      const error = { name: "Error", message: "try again" };
      expect(await store.retryRun({ runId, leaseEpoch: first + 1, error, wakeAt: T0 + 2000, now: T0 + 1 })).toBe(false);
      expect(await store.retryRun({ runId, leaseEpoch: first, error, wakeAt: T0 + 2000, now: T0 + 1 })).toBe(true);
      expect(await store.getRun(runId)).toMatchObject({ status: "queued", attempt: 1, error, wakeAt: T0 + 2000 });
      expect(await store.claimRun({ runId, workerId: "worker-a", now: T0 + 1999, leaseMs: LEASE_MS })).toBeNull();
      const second = await claim(runId, T0 + 2000);
      expect(second.run).toMatchObject({ attempt: 1, leaseEpoch: first + 1 });
      expect(await store.releaseRun({ runId, leaseEpoch: second.run.leaseEpoch, wakeAt: T0 + 3000 })).toBe(true);
      expect(await store.getRun(runId)).toMatchObject({ status: "queued", wakeAt: T0 + 3000 });
      expect(await store.releaseRun({ runId, leaseEpoch: second.run.leaseEpoch, wakeAt: T0 + 4000 })).toBe(false);
    });

    it("records a cron tick exactly once, even when schedulers race", async () => {
      const tick = (scheduledFor: number) => {
        const trigger = event({ name: "stepwise/cron" });
        return store.recordCronTick({ functionId: "cron-fn", scheduledFor, ingest: { events: [trigger], runs: runsFor([trigger], "cron-fn"), now: T0 } });
      };
      const started = (await Promise.all([1, 2, 3, 4, 5].map(() => tick(T0 + 60_000)))).filter((result) => result !== null);
      expect(started).toHaveLength(1);
      expect((await store.listRuns({ functionId: "cron-fn" })).map((run) => run.id)).toEqual([started[0]?.id]);
      expect(await tick(T0 + 60_000)).toBeNull();
      expect(await tick(T0 + 120_000)).toMatchObject({ functionId: "cron-fn" });
      expect(await store.listRuns({ functionId: "cron-fn" })).toHaveLength(2);
    });

    it("moves runs and cron ticks recorded under plain function ids to their qualified ids, once", async () => {
      const legacy = await startRun({ functionId: "send-email" });
      const failure = await startRun({ functionId: "send-email/on-failure" });
      const other = await startRun({ functionId: "other-app/send-email" });
      // Another app's legacy run of a function with the same id, started by an event of its own.
      const elsewhere = event({ name: "other/started" });
      const elsewhereRun = runsFor([elsewhere], "send-email")[0] as NewRun;
      await store.ingest({ events: [elsewhere], runs: [elsewhereRun], now: T0 });
      const trigger = event({ name: "stepwise/scheduled.timer" });
      expect(
        await store.recordCronTick({
          functionId: "send-email",
          scheduledFor: T0 + 60_000,
          ingest: { events: [trigger], runs: runsFor([trigger], "send-email"), now: T0 },
        }),
      ).not.toBeNull();
      const ids = [
        { plain: "send-email", qualified: "my-app/send-email", events: ["test/thing.happened", "stepwise/scheduled.timer"] },
        { plain: "send-email/on-failure", qualified: "my-app/send-email/on-failure", events: ["test/thing.happened"] },
      ];
      expect(await store.qualifyFunctionIds(ids)).toBe(3);
      expect(await store.getRun(legacy.runId)).toMatchObject({ functionId: "my-app/send-email" });
      expect(await store.getRun(failure.runId)).toMatchObject({ functionId: "my-app/send-email/on-failure" });
      expect(await store.getRun(other.runId)).toMatchObject({ functionId: "other-app/send-email" });
      expect(await store.getRun(elsewhereRun.id)).toMatchObject({ functionId: "send-email" });
      // The tick moved with its function: the qualified scheduler does not start it again.
      const again = event({ name: "stepwise/cron" });
      const tick = (at: number) =>
        store.recordCronTick({
          functionId: "my-app/send-email",
          scheduledFor: at,
          ingest: { events: [again], runs: runsFor([again], "my-app/send-email"), now: T0 },
        });
      expect(await tick(T0 + 60_000)).toBeNull();
      expect(await tick(T0 + 120_000)).not.toBeNull();
      expect(await store.qualifyFunctionIds(ids)).toBe(0);
      expect(await store.qualifyFunctionIds([])).toBe(0);
    });

    it("lists events newest received first, by name and time, and pages on from a cursor", async () => {
      const received: StoredEvent[] = [];
      for (let index = 0; index < 6; index++) {
        const item = event({ name: index % 2 === 0 ? "test/even" : "test/odd" });
        await store.ingest({ events: [item], runs: [], now: T0 + index * 10 });
        received.push(item);
      }
      const ids = (list: Array<{ id: string }>) => list.map((item) => item.id);
      const newestFirst = [...received].reverse();
      const all = await store.listEvents({ limit: 10 });
      expect(ids(all)).toEqual(ids(newestFirst));
      expect(all[0]).toMatchObject({ name: "test/odd", receivedAt: T0 + 50 });
      expect(ids(await store.listEvents({ name: "test/even" }))).toEqual(ids(newestFirst.filter((item) => item.name === "test/even")));
      expect(ids(await store.listEvents({ since: T0 + 20, until: T0 + 40 }))).toEqual(ids([received[3]!, received[2]!]));
      const first = await store.listEvents({ limit: 2 });
      const last = first.at(-1)!;
      expect(ids(await store.listEvents({ limit: 10, before: { receivedAt: last.receivedAt, id: last.id } }))).toEqual(ids(newestFirst.slice(2)));
    });

    it("recovers expired leases (or all) without bumping the epoch", async () => {
      const [short, long, finished] = [await startRun(), await startRun(), await startRun()];
      await claim(short.runId, T0, "worker-a", 1000);
      await claim(long.runId, T0, "worker-a", 60_000);
      const finishedEpoch = (await claim(finished.runId)).run.leaseEpoch;
      await store.finishRun({ runId: finished.runId, leaseEpoch: finishedEpoch, status: "completed", output: null, now: T0 + 1 });
      expect(await store.recoverLeases({ now: T0 + 1000 })).toEqual([]);
      expect(await store.recoverLeases({ now: T0 + 1001 })).toEqual([{ id: short.runId, functionId: "fn" }]);
      const recovered = await store.getRun(short.runId);
      expect(recovered).toMatchObject({ status: "queued", wakeAt: T0 + 1001, leaseEpoch: 1 });
      expect(recovered?.leaseOwner).toBeUndefined();
      expect(await store.recoverLeases({ now: T0 + 1002, all: true })).toEqual([{ id: long.runId, functionId: "fn" }]);
      expect((await claim(long.runId, T0 + 1002, "worker-b")).run.leaseEpoch).toBe(2);
    });

    it("lists due runs oldest first, and runs newest first with filters", async () => {
      const r0 = (await startRun({ now: T0, functionId: "fn-a" })).runId;
      const r1 = (await startRun({ now: T0 + 10, functionId: "fn-b" })).runId;
      const r2 = (await startRun({ now: T0 + 20, functionId: "fn-a" })).runId;
      const r3 = (await startRun({ now: T0 + 5, functionId: "fn-a" })).runId;
      await claim(r3, T0 + 5);
      const due = [
        { id: r0, functionId: "fn-a", wakeAt: T0, fresh: true },
        { id: r1, functionId: "fn-b", wakeAt: T0 + 10, fresh: true },
      ];
      expect(await store.listDueRuns({ until: T0 + 15, limit: 10 })).toEqual(due);
      expect(await store.listDueRuns({ until: T0 + 15, limit: 1 })).toEqual(due.slice(0, 1));
      const ids = (runs: Array<{ id: string }>) => runs.map((run) => run.id);
      expect(ids(await store.listRuns({}))).toEqual([r2, r1, r3, r0]);
      expect(ids(await store.listRuns({ functionId: "fn-a" }))).toEqual([r2, r3, r0]);
      expect(ids(await store.listRuns({ status: "running" }))).toEqual([r3]);
      expect(ids(await store.listRuns({ limit: 2 }))).toEqual([r2, r1]);
    });

    it("answers its clock in epoch milliseconds", async () => {
      const before = Date.now();
      const now = await store.now();
      // The same machine's clock, give or take a minute of skew between the store and Node.
      expect(Math.abs(now - before)).toBeLessThan(60_000);
      expect(Number.isInteger(now)).toBe(true);
    });
  });
}
