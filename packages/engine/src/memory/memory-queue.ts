import type { Clock } from "../ports/clock.js";
import type { InspectableQueue, QueueItem } from "../ports/queue.js";

interface Entry {
  item: QueueItem;
  version: number;
}

/**
 * The in-memory `Queue` of the embedded mode: a binary heap ordered by `availableAt`, then
 * priority, then arrival, with timers on the engine's `Clock` for delayed items. Holds one
 * entry per run; a lost queue is rebuilt from the `RunStore` by the reconciler.
 */
export function createMemoryQueue(options: { clock: Clock }): InspectableQueue {
  const { clock } = options;
  const current = new Map<string, Entry>();
  const heap: Entry[] = [];
  let version = 0;
  let waiters: Array<() => void> = [];
  let cancelTimer: (() => void) | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let closed = false;

  const before = (a: Entry, b: Entry): boolean =>
    a.item.availableAt !== b.item.availableAt
      ? a.item.availableAt < b.item.availableAt
      : (a.item.priority ?? 0) !== (b.item.priority ?? 0)
        ? (a.item.priority ?? 0) > (b.item.priority ?? 0)
        : a.version < b.version;

  function push(entry: Entry): void {
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index] as Entry, heap[parent] as Entry)) break;
      [heap[index], heap[parent]] = [heap[parent] as Entry, heap[index] as Entry];
      index = parent;
    }
  }

  function pop(): Entry | undefined {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = index * 2 + 1;
        const right = left + 1;
        let best = index;
        if (left < heap.length && before(heap[left] as Entry, heap[best] as Entry)) best = left;
        if (right < heap.length && before(heap[right] as Entry, heap[best] as Entry)) best = right;
        if (best === index) break;
        [heap[index], heap[best]] = [heap[best] as Entry, heap[index] as Entry];
        index = best;
      }
    }
    return top;
  }

  /** The earliest live entry, dropping entries superseded by a later enqueue. */
  function peek(): Entry | undefined {
    while (heap.length > 0) {
      const top = heap[0] as Entry;
      if (current.get(top.item.runId) === top) return top;
      pop();
    }
    return undefined;
  }

  function wake(): void {
    const pending = waiters;
    waiters = [];
    for (const resolve of pending) resolve();
  }

  function armTimer(at: number): void {
    if (at >= timerAt) return;
    cancelTimer?.();
    timerAt = at;
    cancelTimer = clock.setTimer(() => {
      timerAt = Number.POSITIVE_INFINITY;
      cancelTimer = undefined;
      wake();
    }, at - clock.now());
  }

  async function dequeueMany(signal: AbortSignal, max: number): Promise<QueueItem[]> {
    while (!signal.aborted && !closed) {
      const taken: QueueItem[] = [];
      for (let top = peek(); top && top.item.availableAt <= clock.now() && taken.length < max; top = peek()) {
        pop();
        current.delete(top.item.runId);
        taken.push(top.item);
      }
      if (taken.length > 0) return taken;
      const top = peek();
      if (top) armTimer(top.item.availableAt);
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
        waiters.push(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    return [];
  }

  return {
    async enqueue(items) {
      for (const item of items) {
        const existing = current.get(item.runId);
        if (existing && existing.item.availableAt <= item.availableAt) continue;
        const entry = { item: { ...item }, version: version++ };
        current.set(item.runId, entry);
        push(entry);
      }
      wake();
    },

    async dequeue(signal) {
      return (await dequeueMany(signal, 1))[0] ?? null;
    },

    dequeueMany,

    async size() {
      return current.size;
    },

    async nextAvailableAt() {
      return peek()?.item.availableAt ?? null;
    },

    async close() {
      closed = true;
      cancelTimer?.();
      wake();
    },
  };
}
