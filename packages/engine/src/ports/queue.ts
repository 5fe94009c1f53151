/** A run waiting to be worked on. */
export interface QueueItem {
  runId: string;
  functionId: string;
  /** Epoch milliseconds from which the item may be dequeued. */
  availableAt: number;
  /** Higher runs first among available items. (Default: 0) */
  priority?: number;
}

/**
 * Which runs to work on next. Derived state: anything lost here is re-enqueued from the
 * `RunStore` by the reconciler, so an implementation may drop items on restart.
 * Enqueueing a run already queued keeps one item, with the earlier `availableAt`.
 */
export interface Queue {
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
  dequeueMany(signal: AbortSignal, max: number): Promise<QueueItem[]>;
  /** Items held, available or not. */
  size(): Promise<number>;
  close(): Promise<void>;
}

/** A `Queue` that can tell when its next item becomes available (used by `engine.idle()`). */
export interface InspectableQueue extends Queue {
  /** `availableAt` of the earliest item, or `null` when empty. */
  nextAvailableAt(): Promise<number | null>;
}
