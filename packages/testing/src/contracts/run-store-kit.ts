import type { StepCommit } from "@stepwise/core/internal";
import type { IngestInput, NewRun, RunStore, StoredEvent, SuspendedStep, SuspendInput } from "@stepwise/engine";
import { afterEach, beforeEach, expect } from "vitest";

/** A store under test and how to dispose of it. */
export interface RunStoreFixture {
  store: RunStore;
  close(): Promise<void>;
}

/** A fixed clock origin: stores must take every time from the `now` they are given. */
export const T0 = 1_700_000_000_000;
export const LEASE_MS = 30_000;

/**
 * What the RunStore contracts share: a fresh store before each test (`kit.store`), and
 * builders of events, runs, claims, steps and suspensions with ids unique in the file. @internal
 */
export function runStoreKit(makeStore: () => Promise<RunStoreFixture>) {
  let fixture: RunStoreFixture | undefined;
  let store!: RunStore;
  let seq = 0;
  beforeEach(async () => {
    fixture = await makeStore();
    store = fixture.store;
  });
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });
  const newId = (prefix: string) => `${prefix}_${String(++seq).padStart(6, "0")}`;

  function event(overrides: Partial<StoredEvent> = {}): StoredEvent {
    return { id: newId("evt"), name: "test/thing.happened", data: { n: seq }, ts: T0 - 5, ...overrides };
  }

  /** Ingests one event starting one run of `functionId`, at `now`. */
  async function startRun(options: { functionId?: string; now?: number; key?: string } = {}) {
    const trigger = event(options.key === undefined ? {} : { key: options.key });
    const runs = runsFor([trigger], options.functionId);
    expect((await store.ingest({ events: [trigger], runs, now: options.now ?? T0 })).runs).toEqual(runs);
    return { runId: runs[0]!.id, trigger };
  }

  async function claim(runId: string, now = T0, workerId = "worker-a", leaseMs = LEASE_MS) {
    const claimed = await store.claimRun({ runId, workerId, now, leaseMs });
    if (!claimed) throw new Error(`run ${runId} could not be claimed at ${now}`);
    return claimed;
  }

  function done(key: string, output: StepCommit["output"], attempt = 0): StepCommit {
    return { key, id: key, kind: "run", status: "completed", output, attempt };
  }

  /** One run of `functionId` per event. */
  function runsFor(events: StoredEvent[], functionId = "fn"): NewRun[] {
    return events.map((item) => ({ id: newId("run"), functionId, eventId: item.id }));
  }

  function sleep(key: string, wakeAt: number): SuspendedStep {
    return { key, id: key, kind: "sleep", status: "waiting", attempt: 0, wakeAt };
  }

  /** A suspension; each `waitFor` entry opens a wait step for "test/reply" and its wait. */
  function suspension(
    runId: string,
    leaseEpoch: number,
    now: number,
    input: Partial<SuspendInput> & { waitFor?: Array<{ key: string; timeoutAt: number; expression?: string }> },
  ): SuspendInput {
    const { waitFor = [], ...rest } = input;
    const waitSteps = waitFor.map(({ key, timeoutAt }): SuspendedStep => ({ key, id: key, kind: "wait", status: "waiting", attempt: 0, wakeAt: timeoutAt }));
    const waits = waitFor.map(({ key, timeoutAt, expression }) => ({ stepKey: key, stepId: key, eventName: "test/reply", timeoutAt, expression }));
    return { runId, leaseEpoch, waits, invokes: { events: [], runs: [], now }, pendingKeys: [], now, ...rest, steps: [...(rest.steps ?? []), ...waitSteps] };
  }

  /** A `step.invoke` of `functionId` from `runId`'s step `stepKey`: its open step and the child to ingest. */
  function invoke(runId: string, stepKey: string, functionId: string, now: number, wakeAt?: number) {
    const child = event({ name: "stepwise/function.invoked" });
    const run: NewRun = { id: newId("run"), functionId, eventId: child.id, parentRunId: runId, parentStepKey: stepKey };
    const step: SuspendedStep = { key: stepKey, id: stepKey, kind: "invoke", status: "waiting", attempt: 0, ...(wakeAt === undefined ? {} : { wakeAt }) };
    return { child, childRunId: run.id, step, invokes: { events: [child], runs: [run], now } satisfies IngestInput };
  }

  return {
    get store() {
      return store;
    },
    newId,
    event,
    startRun,
    claim,
    done,
    runsFor,
    sleep,
    suspension,
    invoke,
  };
}
