import type { Clock } from "../ports/clock.js";
import { type ConcurrencySlot, DEFAULT_SLOT_TTL_MS, type DequeueOptions, type InspectableQueue, type QueueItem, type ThrottleRule } from "../ports/queue.js";

interface Entry {
  item: QueueItem;
  version: number;
}

/** Throttle keys kept before those whose pace is behind them (equal to a fresh key's) are dropped. */
const MAX_IDLE_PACES = 10_000;

/**
 * The in-memory `Queue` of the embedded mode: a binary heap ordered by `availableAt`, then
 * priority, then arrival, with timers on the engine's `Clock` for delayed items. Holds one
 * entry per run; a lost queue is rebuilt from the `RunStore` by the reconciler.
 *
 * Concurrency slots live here too, as expiring leases per key (one process owns the embedded
 * queue, so its memory is the one place they can be counted; a crash takes them along with the
 * runs holding them). An item whose slots are full leaves the heap for the key's waiting list
 * and comes back when a holder releases its slot or its lease expires: no polling.
 */
export function createMemoryQueue(options: { clock: Clock }): InspectableQueue {
  const { clock } = options;
  const current = new Map<string, Entry>();
  const heap: Entry[] = [];
  // Per slot key: holder token → lease end; the entries waiting for a slot, in queue order;
  // and the timer that sweeps expired leases while entries wait.
  const holders = new Map<string, Map<string, number>>();
  const blocked = new Map<string, Entry[]>();
  const blockedRuns = new Map<string, string>();
  const sweeps = new Map<string, () => void>();
  // Per throttle key: its theoretical arrival time (GCRA), the earliest an on-pace start is due.
  const paces = new Map<string, number>();
  // Per rate-limit key: its theoretical arrival time (GCRA, a burst of `limit`).
  const limits = new Map<string, number>();
  let tokens = 0;
  let version = 0;
  let waiters: Array<() => void> = [];
  let wakes = 0;
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
    // Each wake starts with another waiter: with several workers on one queue (apps sharing
    // it), the same one going first every time would take every due item, each time.
    const first = wakes++ % Math.max(1, pending.length);
    for (let index = 0; index < pending.length; index++) (pending[(first + index) % pending.length] as () => void)();
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

  /** How many live leases `key` has, expired ones dropped (and the key forgotten once it has none). */
  function heldCount(key: string, now: number): number {
    const held = holders.get(key);
    if (!held) return 0;
    for (const [token, until] of held) if (until <= now) held.delete(token);
    if (held.size === 0) holders.delete(key);
    return held.size;
  }

  /** Gives `token` a lease of `key` until `until`. */
  function hold(key: string, token: string, until: number): void {
    let held = holders.get(key);
    if (!held) {
      held = new Map();
      holders.set(key, held);
    }
    held.set(token, until);
  }

  /** Gives `item` a lease of each of `slots` until `until`, under a new token; answers it with the token. */
  function holdSlots(item: QueueItem, slots: ConcurrencySlot[], until: number): QueueItem {
    const token = `${item.runId}:${++tokens}`;
    for (const slot of slots) hold(slot.key, token, until);
    return { ...item, slotToken: token };
  }

  /** Holds `entry` until a slot of `key` frees; sweeps the key when its earliest lease ends. */
  function block(key: string, entry: Entry): void {
    const waiting = blocked.get(key) ?? [];
    // In queue order: an entry that arrives later may still come first (a priority's advance).
    let at = waiting.length;
    while (at > 0 && before(entry, waiting[at - 1] as Entry)) at--;
    waiting.splice(at, 0, entry);
    blocked.set(key, waiting);
    blockedRuns.set(entry.item.runId, key);
    armSweep(key);
  }

  function armSweep(key: string): void {
    if (sweeps.has(key)) return;
    const held = holders.get(key);
    if (!held || held.size === 0) return;
    const earliest = Math.min(...held.values());
    sweeps.set(
      key,
      clock.setTimer(
        () => {
          sweeps.delete(key);
          unblock(key);
        },
        Math.max(0, earliest - clock.now()),
      ),
    );
  }

  /** Moves entries waiting on `key` back to the heap, as many as the key has free slots. */
  function unblock(key: string): void {
    const waiting = blocked.get(key);
    if (!waiting || waiting.length === 0) return;
    const limit = waiting[0]?.item.concurrency?.find((slot) => slot.key === key)?.limit ?? 1;
    const free = limit - heldCount(key, clock.now());
    for (const entry of waiting.splice(0, Math.max(0, free))) {
      blockedRuns.delete(entry.item.runId);
      const moved = { item: entry.item, version: entry.version };
      current.set(entry.item.runId, moved);
      push(moved);
    }
    if (waiting.length === 0) {
      blocked.delete(key);
      sweeps.get(key)?.();
      sweeps.delete(key);
    } else armSweep(key);
    if (free > 0) wake();
  }

  /**
   * A GCRA key's theoretical arrival time (`now` for a key unseen or idle). Keys whose time is
   * behind them equal unseen ones, so they are dropped once the map grows past its bound.
   */
  function nextArrival(arrivals: Map<string, number>, key: string, now: number): number {
    if (arrivals.size >= MAX_IDLE_PACES) for (const [other, at] of arrivals) if (at <= now) arrivals.delete(other);
    return Math.max(arrivals.get(key) ?? now, now);
  }

  /**
   * GCRA: books a start of `rule` and answers its time, `now` when on pace. Starts are one per
   * `periodMs / limit`; `burst` more may start at once after a quiet spell.
   */
  function pace(rule: ThrottleRule, now: number): number {
    const interval = rule.periodMs / rule.limit;
    const arrival = nextArrival(paces, rule.key, now);
    paces.set(rule.key, arrival + interval);
    return Math.max(now, arrival - rule.burst * interval);
  }

  async function dequeueMany(signal: AbortSignal, max: number, dequeueOptions: DequeueOptions = {}): Promise<QueueItem[]> {
    const ttl = dequeueOptions.slotTtlMs ?? DEFAULT_SLOT_TTL_MS;
    while (!signal.aborted && !closed) {
      const taken: QueueItem[] = [];
      const now = clock.now();
      for (let top = peek(); top && top.item.availableAt <= now && taken.length < max; top = peek()) {
        pop();
        current.delete(top.item.runId);
        const slots = top.item.concurrency;
        const full = slots?.find((slot) => heldCount(slot.key, now) >= slot.limit);
        if (full) {
          block(full.key, top);
          continue;
        }
        const startAt = top.item.throttle ? pace(top.item.throttle, now) : now;
        if (startAt > now) {
          // Too early for its throttle: its start is booked at the time its pace gives it, and
          // it waits in the queue until then (once: the booking is its turn).
          const { throttle: _paced, ...rest } = top.item;
          const later = { item: { ...rest, availableAt: startAt }, version: top.version };
          current.set(top.item.runId, later);
          push(later);
          continue;
        }
        if (!slots || slots.length === 0) {
          taken.push(top.item);
          continue;
        }
        taken.push(holdSlots(top.item, slots, now + ttl));
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
        // Queued already, waiting for a slot: it comes back when one frees.
        if (blockedRuns.has(item.runId)) continue;
        const existing = current.get(item.runId);
        if (existing && existing.item.availableAt <= item.availableAt) continue;
        // A token belongs to one dequeue: an item given back is queued without it.
        const { slotToken: _token, ...queued } = item;
        const entry = { item: queued, version: version++ };
        current.set(item.runId, entry);
        push(entry);
      }
      wake();
    },

    async dequeue(signal) {
      return (await dequeueMany(signal, 1))[0] ?? null;
    },

    dequeueMany,

    async releaseSlots(items) {
      for (const item of items) {
        if (item.slotToken === undefined) continue;
        for (const slot of item.concurrency ?? []) {
          holders.get(slot.key)?.delete(item.slotToken);
          heldCount(slot.key, clock.now());
          unblock(slot.key);
        }
      }
    },

    async acquireSlots(items, ttlMs) {
      const now = clock.now();
      const taken: QueueItem[] = [];
      // Queued runs come first: while one is due (a freed slot moves its waiters back), none is taken.
      const top = peek();
      if (top && top.item.availableAt <= now) return taken;
      for (const item of items) {
        const slots = item.concurrency ?? [];
        // Runs waiting for a slot of a key come first.
        if (slots.length === 0 || slots.some((slot) => heldCount(slot.key, now) >= slot.limit || (blocked.get(slot.key)?.length ?? 0) > 0)) continue;
        taken.push(holdSlots(item, slots, now + ttlMs));
      }
      return taken;
    },

    async renewSlots(items, until) {
      for (const item of items) {
        if (item.slotToken === undefined) continue;
        for (const slot of item.concurrency ?? []) {
          const held = holders.get(slot.key);
          if (held?.has(item.slotToken)) held.set(item.slotToken, until);
        }
      }
    },

    async rateLimit(checks, now) {
      return checks.map((check) => {
        const interval = check.periodMs / check.limit;
        const arrival = nextArrival(limits, check.key, now);
        // Over the limit: more than the period's worth of events already booked ahead.
        if (arrival - now > check.periodMs - interval) return false;
        limits.set(check.key, arrival + interval);
        return true;
      });
    },

    async slotsHeld(key) {
      return heldCount(key, clock.now());
    },

    async size() {
      return current.size + blockedRuns.size;
    },

    async nextAvailableAt() {
      return peek()?.item.availableAt ?? null;
    },

    async close() {
      closed = true;
      cancelTimer?.();
      for (const cancel of sweeps.values()) cancel();
      sweeps.clear();
      wake();
    },
  };
}
