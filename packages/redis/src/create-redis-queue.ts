import { createHash } from "node:crypto";
import { type Clock, DEFAULT_SLOT_TTL_MS, type InspectableQueue, type QueueItem } from "@stepwise/engine";
import type { Redis } from "ioredis";
import { closeRedis } from "./close-redis.js";
import { gatherPerTurn } from "./gather-per-turn.js";
import { encodePriority, queueKeys } from "./queue-keys.js";
import { type DequeueAttempt, defineQueueScripts, type SlotLease } from "./queue-scripts.js";
import { isConnectionError, rethrowUnavailable } from "./redis-unavailable-error.js";

/** Options of {@link createRedisQueue}. */
export interface RedisQueueOptions {
  /**
   * The client for commands and scripts. The queue defines its Lua commands on it and opens one
   * more connection (`redis.duplicate()`) to listen for enqueue notices. It is left open by
   * `close()` unless `ownsConnection` is set. A client from {@link connectRedis} fits a
   * long-running worker: its commands wait out a Redis restart instead of failing.
   */
  redis: Redis;
  /** The engine's clock: every "is it due yet" decision uses its `now()`, never Redis `TIME`. */
  clock: Clock;
  /** Namespace of the keys; it becomes the hash tag `{prefix}`, so no braces. (Default: "stepwise") */
  prefix?: string;
  /**
   * Milliseconds between checks made by a waiting `dequeue` when nothing wakes it: the safety
   * net for a notice lost while the listening connection was down. (Default: 1000)
   */
  pollIntervalMs?: number;
  /** Whether `close()` also quits `redis`. (Default: false) */
  ownsConnection?: boolean;
}

/** Enqueue batches go to Redis in chunks of this many items, each chunk one script call. */
const ENQUEUE_CHUNK = 500;

const STOPPED = Symbol("stopped");

/** Fires once when a `dequeue` must give up: its signal aborted or the queue closed. */
interface StopWatch {
  readonly stopped: boolean;
  add(callback: () => void): void;
  remove(callback: () => void): void;
  dispose(): void;
}

/**
 * The engine's `Queue` on Redis, for many worker processes on many machines.
 *
 * One item per run, ordered by `availableAt`, then higher priority, then arrival, like the
 * in-memory queue. Enqueue and dequeue are each one Lua script, so two workers never take the
 * same item. A waiting `dequeue` wakes on a pub/sub notice from whichever process enqueued,
 * on a timer on the engine's clock for the earliest delayed item, and on a poll every
 * `pollIntervalMs` as a safety net. The queue is derived state (see the package README): what
 * a `FLUSHALL` loses, the engine's reconciler enqueues again from Postgres.
 *
 * @example
 * const redis = await connectRedis();
 * const queue = createRedisQueue({ redis, clock: createSystemClock() });
 * await queue.enqueue([{ runId: "run_1", functionId: "send-email", availableAt: Date.now() }]);
 * const item = await queue.dequeue(AbortSignal.timeout(5000));
 */
export function createRedisQueue(options: RedisQueueOptions): InspectableQueue {
  const { redis, clock } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const keys = queueKeys(options.prefix ?? "stepwise");
  const scripts = defineQueueScripts(redis, keys);

  let closed = false;
  let closing: Promise<void> | undefined;
  const closeListeners = new Set<() => void>();
  // Waiting dequeues, oldest first. A notice wakes one of them, not all: of the waiters of one
  // process only one would win the item anyway. A waiter that takes an item while another is
  // due wakes the next one (`more`), so a burst drains without a notice per item.
  let sleepers: Array<() => void> = [];
  // Set when a wake-up found nobody asleep: a waiter whose script call was in flight then
  // may have looked before the change, so it looks again instead of going to sleep.
  let missedWake = false;
  let cancelTimer: (() => void) | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let subscriber: Redis | undefined;
  let subscribed: Promise<void> | undefined;
  let poll: NodeJS.Timeout | undefined;
  // Until one command succeeded, a connection error is a configuration error (wrong URL,
  // server down at start) and is thrown; afterwards a waiting dequeue rides it out.
  let reachedRedis = false;
  const putBacks = new Set<Promise<unknown>>();

  function wakeOne(): void {
    const sleeper = sleepers.shift();
    if (sleeper) sleeper();
    else missedWake = true;
  }

  function armTimer(at: number): void {
    if (at >= timerAt || closed) return;
    cancelTimer?.();
    timerAt = at;
    cancelTimer = clock.setTimer(
      () => {
        timerAt = Number.POSITIVE_INFINITY;
        cancelTimer = undefined;
        wakeOne();
      },
      // From the clock's now, not from the now the script saw: the clock may have moved since.
      Math.max(0, at - clock.now()),
    );
  }

  /** Subscribes to enqueue notices on a connection of our own, once, at the first dequeue. */
  function ensureSubscribed(): Promise<void> {
    if (subscribed) return subscribed;
    subscribed = (async () => {
      const connection = redis.duplicate();
      subscriber = connection;
      // It reconnects on its own; the poll covers what is missed meanwhile, and the wake on
      // "ready" looks at once for what was enqueued while it was down.
      connection.on("error", () => {});
      connection.on("ready", wakeOne);
      connection.on("message", wakeOne);
      await connection.subscribe(keys.notifyChannel);
      if (closed) return;
      poll = setInterval(() => {
        if (sleepers.length > 0) wakeOne();
      }, pollIntervalMs);
      poll.unref();
    })();
    subscribed.catch(() => {
      if (closed) return;
      // Let the next dequeue try again with a fresh connection.
      if (subscriber) void closeRedis(subscriber);
      subscriber = undefined;
      subscribed = undefined;
    });
    return subscribed;
  }

  function watchStop(signal: AbortSignal): StopWatch {
    const callbacks = new Set<() => void>();
    const fire = () => {
      const pending = [...callbacks];
      callbacks.clear();
      for (const callback of pending) callback();
    };
    signal.addEventListener("abort", fire, { once: true });
    closeListeners.add(fire);
    return {
      get stopped() {
        return closed || signal.aborted;
      },
      add(callback) {
        if (closed || signal.aborted) callback();
        else callbacks.add(callback);
      },
      remove: (callback) => callbacks.delete(callback),
      dispose() {
        signal.removeEventListener("abort", fire);
        closeListeners.delete(fire);
      },
    };
  }

  /** `promise`, or {@link STOPPED} as soon as `stop` fires, whichever comes first. */
  function raceStop<TValue>(promise: Promise<TValue>, stop: StopWatch): Promise<TValue | typeof STOPPED> {
    return new Promise((resolve, reject) => {
      const onStop = () => resolve(STOPPED);
      stop.add(onStop);
      promise.then(
        (value) => {
          stop.remove(onStop);
          resolve(value);
        },
        (error: unknown) => {
          stop.remove(onStop);
          reject(error);
        },
      );
    });
  }

  /** Resolves `true` when woken (notice, timer, poll, chained waiter), `false` when stopped. */
  function sleep(stop: StopWatch): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        stop.remove(onStop);
        resolve(true);
      };
      const onStop = () => {
        sleepers = sleepers.filter((sleeper) => sleeper !== wake);
        resolve(false);
      };
      sleepers.push(wake);
      stop.add(onStop);
    });
  }

  function delay(ms: number, stop: StopWatch): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stop.remove(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stop.add(done);
    });
  }

  /**
   * An item taken by a script call whose dequeue had already given up goes back, so that an
   * abort at the wrong moment does not leave the run to the reconciler.
   */
  function putBackLate(attempt: Promise<DequeueAttempt>): void {
    const task = attempt
      .then(async (result) => {
        if (result.kind !== "items") return;
        const items = takenItems(result);
        await releaseSlots(leasesOf(items));
        await enqueueItems(items);
      })
      .catch(() => undefined);
    putBacks.add(task);
    void task.finally(() => putBacks.delete(task));
  }

  async function sendItems(items: QueueItem[]): Promise<void> {
    for (let start = 0; start < items.length; start += ENQUEUE_CHUNK) {
      const entries = items
        .slice(start, start + ENQUEUE_CHUNK)
        // A token belongs to one dequeue: an item given back is queued without it.
        .map(({ slotToken: _token, ...item }) => [item.runId, String(item.availableAt), encodePriority(item.priority), JSON.stringify(item)] as const);
      try {
        await scripts.enqueue(clock.now(), entries);
        reachedRedis = true;
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    }
  }

  // Under load (an Event API taking events one per request) a script call per enqueue costs
  // Redis more than the items do: a call's own overhead is some 60 µs of Redis's one thread.
  // So the enqueues made in one turn of the event loop (the ingests one store commit answered)
  // go out as one call.
  const sendGathered = gatherPerTurn<QueueItem>(sendItems);

  function enqueueItems(items: QueueItem[]): Promise<void> {
    for (const item of items) {
      if (!Number.isFinite(item.availableAt)) return Promise.reject(new TypeError(`QueueItem.availableAt must be a finite number (run ${item.runId})`));
    }
    return sendGathered(items);
  }

  /** The items a dequeue took, each with the token of the slots taken for it (if any). */
  function takenItems(result: Extract<DequeueAttempt, { kind: "items" }>): QueueItem[] {
    return result.json.map((json, index) => {
      const item = JSON.parse(json) as QueueItem;
      const token = result.tokens[index];
      return token ? { ...item, slotToken: token } : item;
    });
  }

  /** The slot leases of dequeued items: `[key, token]` per slot. */
  const leasesOf = (items: QueueItem[]): SlotLease[] =>
    items.flatMap((item) => (item.slotToken === undefined ? [] : (item.concurrency ?? []).map((slot) => [slot.key, item.slotToken as string] as const)));

  // Passes that end together give their slots back in one call (as enqueues do).
  const releaseSlots = gatherPerTurn<SlotLease>(async (leases) => {
    try {
      await scripts.release(clock.now(), leases);
    } catch (error) {
      rethrowUnavailable(redis, error);
    }
  });

  const queue: InspectableQueue = {
    enqueue: enqueueItems,

    releaseSlots: (items) => releaseSlots(leasesOf(items)),

    async acquireSlots(items, ttlMs) {
      const wanted = items.filter((item) => (item.concurrency?.length ?? 0) > 0);
      if (wanted.length === 0) return [];
      let tokens: string[];
      try {
        tokens = await scripts.acquire(
          clock.now(),
          ttlMs,
          wanted.map((item) => [item.runId, item.concurrency ?? []] as const),
        );
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
      return wanted.flatMap((item, index) => (tokens[index] ? [{ ...item, slotToken: tokens[index] }] : []));
    },

    async renewSlots(items, until) {
      const leases = leasesOf(items);
      if (leases.length === 0) return;
      try {
        await scripts.renew(until, leases);
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    },

    async rateLimit(checks, now) {
      if (checks.length === 0) return [];
      try {
        return await scripts.rateLimit(
          now,
          checks.map((check) => [check.key, check.limit, check.periodMs] as const),
        );
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    },

    async slotsHeld(key) {
      try {
        return await redis.zcount(`${keys.base}slot:${createHash("sha1").update(key).digest("hex")}`, `(${clock.now()}`, "+inf");
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    },

    async dequeue(signal) {
      return (await queue.dequeueMany(signal, 1))[0] ?? null;
    },

    async dequeueMany(signal, max, dequeueOptions = {}) {
      if (closed || signal.aborted) return [];
      const slotTtlMs = dequeueOptions.slotTtlMs ?? DEFAULT_SLOT_TTL_MS;
      const stop = watchStop(signal);
      try {
        try {
          if ((await raceStop(ensureSubscribed(), stop)) === STOPPED) return [];
          reachedRedis = true;
        } catch (error) {
          rethrowUnavailable(redis, error);
        }
        while (!stop.stopped) {
          missedWake = false;
          const attempt = scripts.dequeue(clock.now(), max, slotTtlMs);
          let result: Awaited<typeof attempt> | typeof STOPPED;
          try {
            result = await raceStop(attempt, stop);
          } catch (error) {
            if (!isConnectionError(error)) throw error;
            if (!reachedRedis) rethrowUnavailable(redis, error);
            await delay(pollIntervalMs, stop);
            continue;
          }
          if (result === STOPPED) {
            putBackLate(attempt);
            return [];
          }
          reachedRedis = true;
          if (result.kind === "items") {
            if (result.more) wakeOne();
            return takenItems(result);
          }
          if (result.kind === "later") armTimer(result.availableAt);
          if (missedWake) continue;
          // Woken and stopped at once: the wake-up was meant for someone who will look, so
          // hand it to the next waiter rather than leave an item to the poll.
          if ((await sleep(stop)) && stop.stopped) wakeOne();
        }
        return [];
      } finally {
        stop.dispose();
      }
    },

    async size() {
      try {
        const [scheduled, waiting] = await Promise.all([redis.zcard(keys.schedule), redis.hlen(keys.blockedRuns)]);
        return scheduled + waiting;
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    },

    async nextAvailableAt() {
      try {
        // The head of the schedule, or the earliest lease end that frees a slot for waiting items.
        // RESP2 answers [member, score]; RESP3 answers [[member, score]].
        const heads = await Promise.all([keys.schedule, keys.sweeps].map((key) => redis.zrange(key, 0, "0", "WITHSCORES") as Promise<unknown[]>));
        const scores = heads.map((head) => head.flat()[1]).filter((score) => score !== undefined);
        return scores.length === 0 ? null : Math.min(...scores.map(Number));
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    },

    close() {
      closing ??= (async () => {
        closed = true;
        for (const fire of [...closeListeners]) fire();
        cancelTimer?.();
        cancelTimer = undefined;
        clearInterval(poll);
        if (subscriber) await closeRedis(subscriber);
        if (options.ownsConnection) {
          // Put-backs first: they need the connection.
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([Promise.allSettled(putBacks), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
          clearTimeout(timer);
          await closeRedis(redis);
        }
      })();
      return closing;
    },
  };
  return queue;
}
