/** A concurrency slot a run must hold while a pass executes: at most `limit` holders per `key`. */
export interface ConcurrencySlot {
  /** Which slots: runs with the same key share them (e.g. `<function id>#0:user-1`). */
  key: string;
  /** Most holders at once. */
  limit: number;
}

/** The pace of {@link QueueItem.throttle}. */
export interface ThrottleRule {
  /** Which items share the pace (e.g. `<function id>:user-1`). */
  key: string;
  /** Starts per `periodMs`. */
  limit: number;
  periodMs: number;
  /** Starts allowed at once beyond the pace after a quiet spell. */
  burst: number;
}

/** One event against a `rateLimit` (see {@link Queue.rateLimit}). */
export interface RateLimitCheck {
  /** Which events share the limit (e.g. `<function id>:user-1`). */
  key: string;
  /** Events allowed per `periodMs`: a burst of `limit`, refilled evenly over the period. */
  limit: number;
  periodMs: number;
}

/** A run waiting to be worked on. */
export interface QueueItem {
  runId: string;
  functionId: string;
  /** Epoch milliseconds from which the item may be dequeued. */
  availableAt: number;
  /** Higher runs first among available items. (Default: 0) */
  priority?: number;
  /**
   * Slots the run needs (its function's concurrency rules, at most 2): the queue hands the
   * item out only with a slot of every key taken for it, and holds it, without polling, until
   * slots free. (Default: none)
   */
  concurrency?: ConcurrencySlot[];
  /**
   * Paces the run's start (GCRA): items of one `key` are handed out at most one per
   * `periodMs / limit`, with `burst` more at once after a quiet spell; an item that comes too
   * early is rescheduled to its time, never dropped. (Default: none)
   */
  throttle?: ThrottleRule;
  /**
   * Set by `dequeue` on an item with `concurrency`: the holder of the slots taken for it. The
   * worker renews them while its pass executes ({@link Queue.renewSlots}) and gives them back
   * when it ends ({@link Queue.releaseSlots}); slots not renewed expire, so a crashed worker
   * never keeps one.
   */
  slotToken?: string;
}

/** Lifetime of a concurrency slot without renewal when `dequeueMany` is not told (ms): the engine's default lease. */
export const DEFAULT_SLOT_TTL_MS = 30_000;

/** Options of {@link Queue.dequeueMany}. */
export interface DequeueOptions {
  /** How long the slots taken for dequeued items last without renewal, in ms. (Default: {@link DEFAULT_SLOT_TTL_MS}) */
  slotTtlMs?: number;
}

/**
 * Which runs to work on next. Derived state: anything lost here is re-enqueued from the
 * `RunStore` by the reconciler, so an implementation may drop items on restart.
 * Enqueueing a run already queued keeps one item, with the earlier `availableAt`.
 */
export interface Queue {
  /** Adds items (see above). An item's `slotToken` is dropped: a token belongs to the dequeue that took it. */
  enqueue(items: QueueItem[]): Promise<void>;
  /**
   * Resolves with the next available item (removing it), waiting until one is available;
   * resolves `null` once `signal` aborts.
   */
  dequeue(signal: AbortSignal): Promise<QueueItem | null>;
  /**
   * Like {@link Queue.dequeue}, for up to `max` items at once: resolves with 1 to `max`
   * available items in queue order (removing them), waiting until one is available; resolves
   * `[]` once `signal` aborts. A worker with many free slots takes a burst in one round trip,
   * and the claims of the burst reach the store together.
   */
  dequeueMany(signal: AbortSignal, max: number, options?: DequeueOptions): Promise<QueueItem[]>;
  /**
   * Gives back the slots of dequeued items (their pass ended, or they were not run): runs held
   * for those slots become available, as many as there are free slots. Items without a
   * `slotToken` are ignored.
   */
  releaseSlots(items: QueueItem[]): Promise<void>;
  /**
   * Takes the slots of items that start at once, outside the queue (eager start): each gets a
   * slot of every key of its `concurrency` for `ttlMs`, or none, when every key has a free slot
   * and no queued run waits for one. Queued runs come first: while any item is due, none is
   * taken (the runs go to the queue, in line). Answers the items taken, with their
   * `slotToken`; give their slots back with {@link Queue.releaseSlots} as for dequeued ones.
   */
  acquireSlots(items: QueueItem[], ttlMs: number): Promise<QueueItem[]>;
  /** Extends the slots of dequeued items until `until` (epoch ms); a slot already expired stays lost. */
  renewSlots(items: QueueItem[], until: number): Promise<void>;
  /** Slots of `key` held now, not counting expired ones (for tests, metrics and the dashboard). */
  slotsHeld(key: string): Promise<number>;
  /**
   * Counts events against their rate limits, in order, and answers for each whether it is
   * within its limit (GCRA: up to `limit` at once, then one per `periodMs / limit`). An event
   * over its limit is not counted.
   */
  rateLimit(checks: RateLimitCheck[], now: number): Promise<boolean[]>;
  /** Items held, available, delayed or waiting for a slot. */
  size(): Promise<number>;
  close(): Promise<void>;
}

/** A `Queue` that can tell when its next item becomes available (used by `engine.idle()`). */
export interface InspectableQueue extends Queue {
  /** `availableAt` of the earliest item, or `null` when empty. */
  nextAvailableAt(): Promise<number | null>;
}
