import { ErrorCode, isTerminalStatus, type RunInfo, runInfoSchema, StepwiseError, splitFunctionId, type WaitOptions } from "@stepwise/core";
import type { Lifecycle } from "./lifecycle.js";
import type { Bus, Unsubscribe } from "./ports/bus.js";
import type { RunRecord, RunStore } from "./ports/run-store.js";

/**
 * Bus channel on which every engine announces the runs it ended: each message is an array of
 * {@link RunInfo}, the runs one engine ended in one turn of its event loop.
 */
export const RUN_ENDED_CHANNEL = "run-ended";

/** How often a waiter re-reads the store when no notice arrives, by default (ms). */
export const RUN_WAIT_POLL_MS = 1000;

/** Runs read by one query of the shared poll. */
const POLL_BATCH = 1000;

/** Longest delay `setTimeout` keeps; a longer one fires at once (Node clamps it to 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Waiters for runs to end, in this process and, through the bus, in others. */
export interface RunWaiters {
  waitForRun(runId: string, options?: WaitOptions): Promise<RunInfo>;
  /** A run ended in this process: wake local waiters and tell other processes. */
  runEnded(run: RunInfo): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Resolves `waitForRun` calls as soon as a run ends: at once for runs this engine ends, through
 * the bus for runs another process ends, and by reading the store (on subscribe, then every
 * second) so that a lost notice only delays the answer.
 *
 * The bus subscription opens with the first `waitForRun` and stays until `stop()`: a worker
 * process, which never waits, does not receive (and parse) the notice of every run that ends
 * anywhere, so adding workers adds no work to each of them.
 */
export function createRunWaiters(options: { store: RunStore; bus?: Bus; lifecycle: Lifecycle; pollMs?: number }): RunWaiters {
  const { store, bus, lifecycle } = options;
  const pollMs = options.pollMs ?? RUN_WAIT_POLL_MS;
  const waiters = new Map<string, Set<(run: RunInfo) => void>>();
  let running = false;
  let subscription: Promise<Unsubscribe | undefined> | undefined;

  const wake = (run: RunInfo) => {
    for (const resolve of waiters.get(run.id) ?? []) resolve(run);
    waiters.delete(run.id);
  };

  // One poll for every waiter of this process: a lost notice delays an answer by at most
  // `pollMs`, and a thousand waiters (SSE clients, long-polls) cost one query per turn, not a
  // thousand.
  let pollTimer: NodeJS.Timeout | undefined;
  const schedulePoll = () => {
    if (pollTimer || waiters.size === 0) return;
    pollTimer = setTimeout(() => void pollAll(), pollMs);
  };
  const pollAll = async () => {
    try {
      const ids = [...waiters.keys()];
      for (let start = 0; start < ids.length; start += POLL_BATCH) {
        for (const run of await store.getRuns(ids.slice(start, start + POLL_BATCH))) {
          if (isTerminalStatus(run.status)) wake(toRunInfo(run));
        }
      }
    } catch (error) {
      lifecycle.emit({ type: "engine-error", error, context: `reading ${waiters.size} waited runs` });
    } finally {
      pollTimer = undefined;
      schedulePoll();
    }
  };

  /** Subscribes to run-ended notices once; settles when they flow (or could not be subscribed). */
  const listen = (): Promise<unknown> => {
    if (!bus || !running) return Promise.resolve();
    subscription ??= bus
      .subscribe(RUN_ENDED_CHANNEL, (message) => {
        for (const notice of Array.isArray(message) ? message : [message]) {
          // Most notices are for runs nobody here waits for: look at the id before validating.
          const id = (notice as { id?: unknown } | null)?.id;
          if (typeof id !== "string" || !waiters.has(id)) continue;
          const parsed = runInfoSchema.safeParse(notice);
          if (parsed.success) wake(parsed.data);
        }
      })
      .catch((error: unknown) => {
        // Waiters still learn of the end by reading the store; the next waiter tries again.
        lifecycle.emit({ type: "engine-error", error, context: "subscribing to run-ended notices" });
        subscription = undefined;
        return undefined;
      });
    return subscription;
  };

  // Runs ended in this turn of the event loop, announced together: runs that end together (a
  // group-committed batch) cost one message, not one each, and waiting elsewhere adds no delay.
  let unannounced: RunInfo[] = [];
  const announce = () => {
    const runs = unannounced;
    unannounced = [];
    if (runs.length === 0) return;
    bus
      ?.publish(RUN_ENDED_CHANNEL, runs)
      .catch((error: unknown) => lifecycle.emit({ type: "engine-error", error, context: `announcing the end of ${runs.map((run) => run.id).join(", ")}` }));
  };

  return {
    async start() {
      running = true;
    },

    async stop() {
      announce();
      running = false;
      clearTimeout(pollTimer);
      pollTimer = undefined;
      const unsubscribe = await subscription;
      subscription = undefined;
      await unsubscribe?.();
    },

    runEnded(run) {
      wake(run);
      if (!bus) return;
      unannounced.push(run);
      if (unannounced.length === 1) setImmediate(announce);
    },

    waitForRun(runId, waitOptions = {}) {
      return new Promise<RunInfo>((resolve, reject) => {
        const { signal } = waitOptions;
        let cancelTimeout: (() => void) | undefined;
        const set = waiters.get(runId) ?? new Set();
        waiters.set(runId, set);
        const done = (error: Error | undefined, run?: RunInfo) => {
          set.delete(onEnd);
          if (set.size === 0 && waiters.get(runId) === set) waiters.delete(runId);
          cancelTimeout?.();
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else resolve(run as RunInfo);
        };
        const onEnd = (run: RunInfo) => done(undefined, run);
        // The caller went away (an HTTP client disconnected): stop reading the store for it.
        const onAbort = () =>
          done(new StepwiseError({ code: ErrorCode.WaitAborted, category: "user", message: `the wait for run ${runId} was aborted`, details: { runId } }));
        if (signal?.aborted) {
          onAbort();
          return;
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        set.add(onEnd);
        if (waitOptions.timeoutMs !== undefined) {
          const message = `run ${runId} did not end within ${waitOptions.timeoutMs} ms`;
          cancelTimeout = setLongTimeout(() => done(new StepwiseError({ code: ErrorCode.WaitTimeout, message, details: { runId } })), waitOptions.timeoutMs);
        }
        // The run may have ended before we subscribed: read the store once; from then on the
        // shared poll reads every waited run in one query.
        const check = async () => {
          try {
            const run = await store.getRun(runId);
            if (!run) {
              done(new StepwiseError({ code: ErrorCode.RunNotFound, category: "user", message: `no run with id "${runId}"`, details: { runId } }));
              return;
            }
            if (isTerminalStatus(run.status)) {
              done(undefined, toRunInfo(run));
              return;
            }
          } catch (error) {
            lifecycle.emit({ type: "engine-error", error, context: `waiting for run ${runId}` });
          }
          if (set.has(onEnd)) schedulePoll();
        };
        // Subscribed first, then read: a run that ends in between is caught by one or the other.
        void listen().then(check);
      });
    },
  };
}

/**
 * `setTimeout` for any delay: past 2^31-1 ms Node fires a timer at once, so a long delay is
 * waited for in chunks. Answers the cancel function.
 */
function setLongTimeout(callback: () => void, ms: number): () => void {
  const due = Date.now() + ms;
  let handle: NodeJS.Timeout;
  const arm = () => {
    const left = due - Date.now();
    if (left <= 0) return callback();
    handle = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  handle = setTimeout(arm, Math.min(Math.max(0, ms), MAX_TIMER_MS));
  return () => clearTimeout(handle);
}

/** The API view of a stored run. */
export function toRunInfo(run: RunRecord): RunInfo {
  // Recorded under the qualified id; the API shows the function's own id and its app apart.
  const { appId, functionId } = splitFunctionId(run.functionId);
  return {
    id: run.id,
    functionId,
    ...(appId !== undefined && { appId }),
    eventId: run.eventId,
    ...(run.eventIds !== undefined && { eventIds: run.eventIds }),
    status: run.status,
    attempt: run.attempt,
    output: run.output,
    error: run.error,
    ...(run.rerunOf !== undefined && { rerunOf: run.rerunOf }),
    createdAt: run.createdAt,
    endedAt: run.endedAt,
  };
}
