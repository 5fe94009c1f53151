import type { JsonValue, RunStatus, SerializedError, StepwiseEvent } from "@stepwise/core";
import type { StepCommit, StepRecord } from "@stepwise/core/internal";

/** An event as stored. `key` is the sender's own id, used for 24 h deduplication. */
export interface StoredEvent extends StepwiseEvent {
  key?: string;
}

/** A stored event as handlers and expressions see it: `{ id, name, data, ts }`, without the sender's key. */
export function publicEvent(event: StoredEvent): StepwiseEvent {
  return { id: event.id, name: event.name, data: event.data, ts: event.ts };
}

/**
 * What flow control needs of a run, evaluated once from its event when the run is created and
 * stored with it (absent for functions without such controls): every process that queues the
 * run again reads it here rather than evaluating the function's expressions.
 */
export interface RunFlow {
  /** The value of each concurrency rule's `key`, in rule order (`""` for a rule without one). */
  concurrency?: string[];
  /** The value of `throttle.key` (`""` without one). */
  throttle?: string;
  /** Seconds `priority.run` moves the run's start ahead (negative: behind). */
  priority?: number;
  /** `timeouts.finish`: the run's deadline from its first start, in ms (the claim sets it). */
  finishMs?: number;
}

/** A run as stored. Times are epoch milliseconds. */
export interface RunRecord {
  id: string;
  functionId: string;
  eventId: string;
  /** A run of a batch (`batchEvents`): its events in arrival order, `eventId` the first. (Default: one event) */
  eventIds?: string[];
  status: RunStatus;
  /** Zero-based attempt of the handler. */
  attempt: number;
  /** Incremented by every claim; commits carry it so that a stale worker's writes are rejected. */
  leaseEpoch: number;
  leaseOwner?: string;
  leaseExpiresAt?: number;
  /** When a queued, sleeping or waiting run becomes runnable; absent while it waits with no timeout. */
  wakeAt?: number;
  output?: JsonValue;
  error?: SerializedError;
  parentRunId?: string;
  parentStepKey?: string;
  /** The run this one repeats (a rerun, or a replay of its event). */
  rerunOf?: string;
  /** Flow-control keys (see {@link RunFlow}); absent when its function has none. */
  flow?: RunFlow;
  /** `timeouts`: when the run is cancelled unless it has started (before its start) or ended (after). */
  timeoutAt?: number;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
}

/** A run to create. */
export interface NewRun {
  id: string;
  functionId: string;
  /** Id of the event (in the same ingest) that starts it. */
  eventId: string;
  parentRunId?: string;
  parentStepKey?: string;
  /**
   * Create the run already claimed by this worker (status `running`, lease epoch 1, started
   * now): eager start, which saves the claim's round trip. (Default: queued)
   */
  lease?: { workerId: string; expiresAt: number };
  /** Flow-control keys to store with the run (see {@link RunFlow}). (Default: none) */
  flow?: RunFlow;
  /**
   * The run's `idempotency` key: the run is created only when no run of its function holds the
   * key within the last 24 h (`IDEMPOTENCY_WINDOW_MS`); otherwise it is left out. (Default: none)
   */
  idempotencyKey?: string;
  /** Create the run `skipped` by flow control, ended at once with this as its error (a rate limit). (Default: not skipped) */
  skipped?: SerializedError;
  /**
   * `singleton`: at most one run of the function per `key` that has not ended. `skip`: the run
   * is created `skipped` when another is open (or comes earlier in the batch); `cancel`: the open
   * ones are cancelled in the same transaction (answered in `IngestResult.cancelled`), and of a
   * batch the last run per key stands. (Default: none)
   */
  singleton?: { key: string; mode: "skip" | "cancel" };
  /**
   * `debounce`: the run starts at `wakeAt` unless another event of its function and `key` comes
   * first, which takes the pending run over (its event, and a start `periodMs` after it, capped at
   * `capAt`, the first event's time plus `timeout`). The answer names the pending run. (Default: none)
   */
  debounce?: { key: string; wakeAt: number; capAt?: number };
  /**
   * `batchEvents`: the event joins the open batch of its function and `key` (one run for up to
   * `maxSize` events), or opens one that starts at `wakeAt` (its first event's time plus
   * `timeout`) unless it fills first. Of a batch, the first event's run id, flow and deadline
   * stand; the answer names the batch's run. (Default: a run of its own)
   */
  batch?: { key: string; maxSize: number; wakeAt: number };
  /** `timeouts.start`: cancel the run unless it has started by then (epoch ms). (Default: no deadline) */
  startBy?: number;
  /**
   * Waits to open with the run, in the same transaction: its `cancelOn` entries (`kind`
   * "cancel"; a `timeoutAt` of `Infinity` never expires). (Default: none)
   */
  waits?: NewWait[];
}

/** Events and the runs they start, stored in one transaction. */
export interface IngestInput {
  /** Events with ids assigned; `key` deduplicates against events stored in the last 24 h. */
  events: StoredEvent[];
  /**
   * Runs to create for those events; runs of an event found to be a duplicate are not created,
   * nor runs whose idempotency key a run of their function holds.
   */
  runs: NewRun[];
  now: number;
}

/** One entry per ingested event, in order. */
export interface IngestResult {
  /**
   * `matchWaits` marks a new event for which open waits on its name existed: the engine matches
   * it against them, then calls `markWaitsMatched`.
   */
  events: Array<{ id: string; duplicate: boolean; matchWaits?: boolean }>;
  /**
   * Runs created (those of duplicate events are left out); `skipped` when the store created the
   * run skipped (a `singleton` with a run open), with the reason.
   */
  runs: Array<{
    id: string;
    functionId: string;
    eventId: string;
    skipped?: SerializedError;
    /** A debounced run: when it starts now; `takenOver` when an existing pending run took the event. */
    debounce?: { wakeAt: number; takenOver: boolean };
    /**
     * A batch the ingest opened (`created`) or added events to, listed once, with the first of
     * this ingest's events in it: when it starts (now or earlier when it filled up).
     */
    batch?: { wakeAt: number; created: boolean };
  }>;
  /** Runs the store cancelled for new runs of a `singleton: cancel` function, with the parents to wake. */
  cancelled?: { runs: RunRecord[]; parents: Array<{ runId: string; functionId: string }> };
}

/** A run claimed by a worker, with what its handler needs. */
export interface ClaimedRun {
  run: RunRecord;
  event: StoredEvent;
  /** Every event of a batched run, `event` first; absent for a run of one event. */
  events?: StoredEvent[];
  steps: StepRecord[];
}

/**
 * An open wait: one condition of a `step.waitForEvent` / `step.waitForAny` (`kind` "step"),
 * or one `cancelOn` entry of a run (`kind` "cancel", step key `cancel:<index>`).
 */
export interface WaitRecord {
  runId: string;
  stepKey: string;
  stepId: string;
  /** `step`: resolves the step with the event; `cancel`: cancels the run. (Default: "step") */
  kind?: "step" | "cancel";
  /** Which condition of the step (0 for `waitForEvent`); a step's conditions close together. (Default: 0) */
  alternative?: number;
  eventName: string;
  /** CEL over `event` (the run's trigger) and `async` (the candidate). */
  expression?: string;
  /**
   * `match`: a field path that must be equal in the trigger and the candidate, and the
   * trigger's value there as canonical JSON (see `matchValue`). Stores find such a wait by the
   * value, so that matching an event reads only the waits it matches. `matchValue` absent:
   * the trigger has no value there, and nothing matches.
   */
  matchPath?: string;
  matchValue?: string;
  timeoutAt: number;
  /** The run's triggering event, for evaluating `expression`. */
  triggerEvent: StoredEvent;
}

/** A wait to record (the run and its trigger are known to the store). */
export type NewWait = Omit<WaitRecord, "triggerEvent" | "runId">;

/** A step row written when a run suspends: an open sleep, wait or invoke, or a retry. */
export interface SuspendedStep {
  key: string;
  id: string;
  kind: "sleep" | "wait" | "invoke" | "run" | "send";
  status: "waiting" | "retrying";
  /** For `retrying`, the attempt that failed. */
  attempt: number;
  error?: SerializedError;
  /** Wake time: end of a sleep, a wait's or invoke's timeout, a retry's time. */
  wakeAt?: number;
}

/** What a suspending run writes, atomically. */
export interface SuspendInput {
  runId: string;
  leaseEpoch: number;
  steps: SuspendedStep[];
  waits: NewWait[];
  /** Child runs started by `step.invoke`, each with its own event. */
  invokes: IngestInput;
  /** Keys of steps this pass found still waiting: if one was resolved meanwhile, wake at once. */
  pendingKeys: string[];
  now: number;
}

/** The run a cron tick started, with the runs its `singleton: cancel` key cancelled (to announce). */
export type CronTickRun = IngestResult["runs"][number] & { cancelled?: IngestResult["cancelled"] };

/** The reason (and the error message) of a run cancelled for a new run of its `singleton: cancel` key. */
export const SINGLETON_CANCELLED = "singleton: cancelled for a new event of its key";

/** Where a finished run's parent (from `step.invoke`) stands after the child's result was recorded. */
export interface FinishResult {
  ok: boolean;
  /** The parent run made runnable by this result, with its function id: to enqueue. */
  parent?: { runId: string; functionId: string };
  /** Runs created by `followUp` (e.g. `onFailure`). */
  followUpRuns: IngestResult["runs"];
  /** Runs the store cancelled for `followUp` runs of a `singleton: cancel` function (to announce). */
  cancelled?: IngestResult["cancelled"];
}

/** Filters of {@link RunStore.listRuns}. */
export interface ListRunsFilter {
  functionId?: string;
  status?: RunStatus;
  /** Only runs started by this event. */
  eventId?: string;
  /** Only runs created at or after this time (epoch ms). */
  since?: number;
  /** Only runs created before this time (epoch ms). */
  until?: number;
  /** Most runs answered. (Default: 100) */
  limit?: number;
  /**
   * Keyset cursor: only runs older than this one in the listing's order (`createdAt`, then `id`,
   * both descending). Runs created meanwhile never shift a page, so paging sees each run once.
   */
  before?: { createdAt: number; id: string };
}

/**
 * The durable state of the engine: events, runs, steps, waits and cron ticks. Postgres (or
 * PGlite) implements it; invariants live in its constraints. Every write made on behalf of a
 * claimed run carries `leaseEpoch` and is rejected when the run was claimed again since.
 * All times are epoch milliseconds from the engine's `Clock`.
 */
export interface RunStore {
  /** Stores events (deduplicated by `key` within 24 h) and creates the runs of the new ones. */
  ingest(input: IngestInput): Promise<IngestResult>;

  /**
   * Claims a runnable run (queued/sleeping/waiting with `wakeAt <= now`) for `workerId` until
   * `now + leaseMs`, incrementing its lease epoch. In the same transaction, completes due
   * sleeps, times out due waits (output `null`) and invokes (failed, INVOKE_TIMEOUT). Answers
   * `null` when the run is not runnable (already claimed, finished, or not yet due).
   */
  claimRun(input: { runId: string; workerId: string; now: number; leaseMs: number }): Promise<ClaimedRun | null>;

  /**
   * Records a step's final result, unless the lease moved on. When the step already has a final
   * result (another worker's), that one stands and is returned.
   */
  commitStep(input: { runId: string; leaseEpoch: number; step: StepCommit; now: number }): Promise<{ ok: true; record: StepRecord } | { ok: false }>;

  /** Extends the lease while the epoch is still this worker's; false when it was lost. */
  extendLease(input: { runId: string; leaseEpoch: number; until: number }): Promise<boolean>;

  /** Writes a suspension (sleeps, waits, invokes, retries) and answers when the run wakes. */
  suspendRun(input: SuspendInput): Promise<{ ok: boolean; wakeAt?: number; childRuns: IngestResult["runs"]; cancelled?: IngestResult["cancelled"] }>;

  /** Releases a claimed run without progress (shutdown, no free slot): runnable again at `wakeAt`. */
  releaseRun(input: { runId: string; leaseEpoch: number; wakeAt: number }): Promise<boolean>;

  /** Schedules the handler's next attempt after a handler-level error. */
  retryRun(input: { runId: string; leaseEpoch: number; error: SerializedError; wakeAt: number; now: number }): Promise<boolean>;

  /**
   * Ends a run (`completed` with `output`, or `failed` with `error`). When the run was started by
   * `step.invoke`, the parent's step gets the result and the parent becomes runnable. `followUp`
   * events and runs (e.g. `onFailure`) are ingested in the same transaction, and so are `steps`:
   * step results the pass has not committed yet (they ended after its last commit), recorded
   * as {@link RunStore.commitStep} would, only if the run ends.
   */
  finishRun(input: {
    runId: string;
    leaseEpoch: number;
    status: "completed" | "failed";
    output?: JsonValue;
    error?: SerializedError;
    followUp?: IngestInput;
    steps?: StepCommit[];
    now: number;
  }): Promise<FinishResult>;

  /**
   * Cancels a run that has not ended, with the runs it started through `step.invoke` (and
   * theirs), atomically: each ends `cancelled` with `error`, its waits close, and its lease
   * epoch moves on, so a worker still executing it records nothing more. When the run was
   * invoked by a parent whose step still waits, that step fails (RUN_CANCELLED) and the parent
   * becomes runnable: `parent`, to enqueue. `cancelled` is empty when the run had ended already
   * (or does not exist).
   */
  cancelRun(input: { runId: string; error: SerializedError; now: number }): Promise<{ cancelled: RunRecord[]; parent?: { runId: string; functionId: string } }>;

  /**
   * Creates queued runs of stored events outside ingest: reruns (`rerunOf`, the run repeated)
   * and first runs (no `rerunOf`; left out when the function already has a first run of the
   * event). A rerun with `reuseStepsBefore` (a step key of the original) starts with copies of
   * the final step results the original recorded before that step, so it executes from there
   * on. Answers the runs created.
   */
  createRuns(input: {
    runs: Array<{ id: string; functionId: string; eventId: string; rerunOf?: string; reuseStepsBefore?: string; flow?: RunFlow }>;
    now: number;
  }): Promise<IngestResult["runs"]>;

  /**
   * Open waits an event of this name may resolve: those without `matchPath`, and those whose
   * (`matchPath`, `matchValue`) is one of `matchValues` (the event's fields as canonical JSON,
   * see `eventMatchValues`), so that an event reads only the keyed waits it matches. Without
   * `matchValues`, every open wait of the name. Waits of ended runs and timed-out waits are
   * left out.
   */
  findWaits(eventName: string, options?: { matchValues?: Array<[path: string, value: string]>; now?: number }): Promise<WaitRecord[]>;

  /**
   * Completes a wait with `event` if it is still open, removes it (and the step's other
   * conditions), and makes the run runnable.
   * Answers the run's function id (to queue the wake-up with), or `null` when another event
   * resolved the wait first.
   */
  resolveWait(input: { runId: string; stepKey: string; event: StoredEvent; now: number }): Promise<string | null>;

  /**
   * Resolves once the writes in flight when it was called have ended (committed or not), or
   * after `timeoutMs` (Default: 1000): a wait recorded just now then sees, in `listEvents`, every
   * event whose ingest could not see the wait. Optional: a store whose writes are serialized
   * (one connection) has nothing to wait for.
   */
  settleConcurrentWrites?(timeoutMs?: number): Promise<void>;

  /** Records that these events were matched against the open waits (see `IngestResult`). */
  markWaitsMatched(input: { eventIds: string[]; now: number }): Promise<void>;

  /**
   * Events received before `before` and never matched against waits (a crash came between
   * ingest and matching), oldest first. The reconciler matches them.
   */
  listUnmatchedEvents(input: { before: number; limit: number }): Promise<StoredEvent[]>;

  /**
   * Runs runnable by `until` (queued, sleeping or waiting with `wakeAt <= until`), oldest first,
   * with their flow keys and `fresh` when the run never started.
   */
  listDueRuns(input: { until: number; limit: number }): Promise<Array<{ id: string; functionId: string; wakeAt: number; flow?: RunFlow; fresh?: boolean }>>;

  /**
   * Runs not ended whose `timeouts` deadline passed by `now` (`started` tells which deadline:
   * finish, or start), oldest deadline first; the engine cancels them.
   */
  listTimedOut(input: { now: number; limit: number }): Promise<Array<{ id: string; functionId: string; started: boolean }>>;

  /** Makes runs whose lease expired before `now` (or, with `all`, every running run) runnable again. */
  recoverLeases(input: { now: number; all?: boolean }): Promise<Array<{ id: string; functionId: string; flow?: RunFlow }>>;

  /**
   * Records a cron tick and, when it is new, its event and run, in one transaction. Answers the
   * run, or `null` when the tick was already recorded (by this or another scheduler).
   */
  recordCronTick(input: { functionId: string; scheduledFor: number; ingest: IngestInput }): Promise<CronTickRun | null>;

  /**
   * Records runs and cron ticks written before function ids carried their app (a plain
   * `send-email`) under the qualified id (`my-app/send-email`) of the function that now owns
   * them: a run moves when its event's name is one of `events`, the names that start the
   * function. Ids already qualified are not touched. Answers how many runs moved. Idempotent,
   * and safe to run from many engines at once.
   */
  qualifyFunctionIds(ids: Array<{ plain: string; qualified: string; events: string[] }>): Promise<number>;

  getRun(runId: string): Promise<RunRecord | null>;
  /** The runs of these ids that exist, in no particular order (one query: `waitForRun`'s shared poll). */
  getRuns(runIds: string[]): Promise<RunRecord[]>;
  getEvent(eventId: string): Promise<StoredEvent | null>;
  /**
   * Events, newest received first, by name and receive time (`since` inclusive, `until`
   * exclusive, epoch ms), at most `limit` (Default: 100); `before` pages on like `listRuns`.
   */
  listEvents(filter: {
    name?: string;
    since?: number;
    until?: number;
    limit?: number;
    before?: { receivedAt: number; id: string };
  }): Promise<Array<StoredEvent & { receivedAt: number }>>;
  /** A run's steps in the order they were first recorded, with their times (`startedAt`, `endedAt`). */
  listSteps(runId: string): Promise<StepRecord[]>;
  listRunsForEvent(eventId: string): Promise<RunRecord[]>;
  listRuns(filter: ListRunsFilter): Promise<RunRecord[]>;
  /** The store's current time (database clock), in epoch milliseconds. */
  now(): Promise<number>;
  close(): Promise<void>;
}
