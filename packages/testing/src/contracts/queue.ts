import type { Clock, InspectableQueue, Queue, QueueItem } from "@stepwise/engine";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../fake-clock.js";

/** What a queue contract run needs: a fresh queue on the given clock. */
export type QueueFactory = (clock: Clock) => Promise<{ queue: Queue; close(): Promise<void> }>;

/**
 * The contract every `Queue` adapter passes (in memory and on Redis): ordering by time then
 * priority, one item per run, delays on the engine's clock, abortable waits, and concurrency
 * slots as expiring leases that gate what is handed out.
 */
export function queueContract(name: string, makeQueue: QueueFactory): void {
  describe(`Queue contract: ${name}`, () => {
    let clock: FakeClock;
    let queue: Queue;
    let close: () => Promise<void>;
    let abort: AbortController;

    beforeEach(async () => {
      clock = new FakeClock();
      ({ queue, close } = await makeQueue(clock));
      abort = new AbortController();
    });
    afterEach(async () => {
      abort.abort();
      await close();
    });

    const item = (runId: string, offsetMs = 0, priority = 0) => ({ runId, functionId: "fn", availableAt: clock.now() + offsetMs, priority });

    it("answers available items by time, then priority, then arrival", async () => {
      await queue.enqueue([item("late", 10), item("low"), item("high", 0, 5), item("low-2")]);
      await clock.advance(10);
      const order: string[] = [];
      for (let index = 0; index < 4; index++) order.push((await queue.dequeue(abort.signal))?.runId as string);
      expect(order).toEqual(["high", "low", "low-2", "late"]);
      expect(await queue.size()).toBe(0);
    });

    it("keeps one item per run, at the earlier time", async () => {
      await queue.enqueue([item("a", 1000)]);
      await queue.enqueue([item("a", 0), item("a", 5000)]);
      expect(await queue.size()).toBe(1);
      expect((await queue.dequeue(abort.signal))?.runId).toBe("a");
      expect(await queue.size()).toBe(0);
    });

    it("holds a delayed item until the clock reaches it", async () => {
      await queue.enqueue([item("later", 60_000)]);
      let got: string | undefined;
      const waiting = queue.dequeue(abort.signal).then((value) => {
        got = value?.runId;
      });
      await clock.advance(59_999);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(got).toBeUndefined();
      await clock.advance(1);
      await waiting;
      expect(got).toBe("later");
    });

    it("takes up to max available items at once, in queue order, leaving delayed ones", async () => {
      await queue.enqueue([item("b"), item("a", 0, 1), item("c"), item("later", 1000), item("d")]);
      expect((await queue.dequeueMany(abort.signal, 3)).map((taken) => taken.runId)).toEqual(["a", "b", "c"]);
      expect((await queue.dequeueMany(abort.signal, 10)).map((taken) => taken.runId)).toEqual(["d"]);
      expect(await queue.size()).toBe(1);
      const waiting = queue.dequeueMany(abort.signal, 10);
      await clock.advance(1000);
      expect((await waiting).map((taken) => taken.runId)).toEqual(["later"]);
      const aborted = queue.dequeueMany(abort.signal, 10);
      abort.abort();
      expect(await aborted).toEqual([]);
    });

    const limited = (runId: string, ...slots: Array<[string, number]>) => ({ ...item(runId), concurrency: slots.map(([key, limit]) => ({ key, limit })) });
    const ids = (items: QueueItem[]) => items.map((taken) => taken.runId);

    it("hands out an item with concurrency only with its slots taken, and holds the rest until one is released", async () => {
      await queue.enqueue(["a", "b", "c", "d"].map((runId) => limited(runId, ["k", 2])));
      const first = await queue.dequeueMany(abort.signal, 10, { slotTtlMs: 60_000 });
      expect(ids(first)).toEqual(["a", "b"]);
      expect(first.every((taken) => typeof taken.slotToken === "string" && taken.slotToken !== "")).toBe(true);
      expect(await queue.slotsHeld("k")).toBe(2);
      // The other two wait in the queue, counted, not handed out.
      expect(await queue.size()).toBe(2);
      const waiting = queue.dequeueMany(abort.signal, 10, { slotTtlMs: 60_000 });
      await queue.releaseSlots([first[0] as QueueItem]);
      const next = await waiting;
      expect(ids(next)).toEqual(["c"]);
      expect(await queue.slotsHeld("k")).toBe(2);
      await queue.releaseSlots([...first, ...next]);
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["d"]);
      expect(await queue.size()).toBe(0);
    });

    it("keeps keys apart, and needs a slot of every key an item names", async () => {
      await queue.enqueue([limited("u1-a", ["user:1", 1]), limited("u1-b", ["user:1", 1]), limited("u2-a", ["user:2", 1])]);
      const taken = await queue.dequeueMany(abort.signal, 10);
      expect(ids(taken).sort()).toEqual(["u1-a", "u2-a"]);
      await queue.enqueue([limited("both", ["user:2", 1], ["total", 5])]);
      await queue.releaseSlots(taken.filter((entry) => entry.runId === "u1-a"));
      // user:2 is still held by u2-a, so "both" waits even though "total" has room.
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["u1-b"]);
      await queue.releaseSlots(taken.filter((entry) => entry.runId === "u2-a"));
      const both = await queue.dequeueMany(abort.signal, 10);
      expect(ids(both)).toEqual(["both"]);
      expect(await queue.slotsHeld("total")).toBe(1);
      expect(await queue.slotsHeld("user:2")).toBe(1);
    });

    it("takes slots for runs starting at once: all of a run's keys or none, never ahead of a run waiting for one", async () => {
      const got = await queue.acquireSlots([limited("a", ["k", 2]), limited("b", ["k", 2], ["j", 1]), limited("c", ["k", 2]), limited("d", ["j", 1])], 60_000);
      // c finds k full; d finds j taken by b; a run without concurrency needs no slot.
      expect(ids(got)).toEqual(["a", "b"]);
      expect(got.every((taken) => typeof taken.slotToken === "string" && taken.slotToken !== "")).toBe(true);
      expect(await queue.slotsHeld("k")).toBe(2);
      expect(await queue.slotsHeld("j")).toBe(1);
      expect(await queue.acquireSlots([item("free")], 60_000)).toEqual([]);
      // A run due in the queue comes first: none is taken while one is, even with slots free.
      await queue.enqueue([limited("queued", ["k", 2])]);
      await queue.releaseSlots(got.filter((entry) => entry.runId === "a"));
      expect(ids(await queue.acquireSlots([limited("late", ["k", 2]), limited("other", ["m", 1])], 60_000))).toEqual([]);
      expect(ids(await queue.dequeueMany(abort.signal, 10, { slotTtlMs: 60_000 }))).toEqual(["queued"]);
      expect(await queue.slotsHeld("k")).toBe(2);
      // Slots taken this way are released (and expire) like dequeued ones.
      await queue.releaseSlots(got.filter((entry) => entry.runId === "b"));
      expect(await queue.slotsHeld("j")).toBe(0);
      expect(ids(await queue.acquireSlots([limited("e", ["j", 1])], 1000))).toEqual(["e"]);
      await clock.advance(1000);
      expect(await queue.slotsHeld("j")).toBe(0);
    });

    it("frees a slot whose lease expired (a crashed worker), and keeps one that was renewed", async () => {
      await queue.enqueue([limited("crashed", ["k", 1]), limited("kept", ["j", 1]), limited("after-crash", ["k", 1]), limited("after-kept", ["j", 1])]);
      const taken = await queue.dequeueMany(abort.signal, 10, { slotTtlMs: 1000 });
      expect(ids(taken).sort()).toEqual(["crashed", "kept"]);
      await queue.renewSlots(
        taken.filter((entry) => entry.runId === "kept"),
        clock.now() + 5000,
      );
      const waiting = queue.dequeueMany(abort.signal, 10, { slotTtlMs: 1000 });
      await clock.advance(1000);
      expect(ids(await waiting)).toEqual(["after-crash"]);
      expect(await queue.slotsHeld("k")).toBe(1);
      expect(await queue.slotsHeld("j")).toBe(1);
      await clock.advance(4000);
      expect(ids(await queue.dequeueMany(abort.signal, 10, { slotTtlMs: 1000 }))).toEqual(["after-kept"]);
    });

    it("keeps one item for a run waiting for a slot when it is enqueued again", async () => {
      await queue.enqueue([limited("holder", ["k", 1]), limited("waiter", ["k", 1])]);
      const [holder] = await queue.dequeueMany(abort.signal, 10);
      expect(await queue.size()).toBe(1);
      await queue.enqueue([limited("waiter", ["k", 1])]);
      expect(await queue.size()).toBe(1);
      await queue.releaseSlots([holder as QueueItem]);
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["waiter"]);
      expect(await queue.size()).toBe(0);
    });

    const paced = (runId: string, key: string, burst = 0) => ({ ...item(runId), throttle: { key, limit: 2, periodMs: 1000, burst } });

    it("paces the items of a throttle key (one per period / limit), delaying and never dropping them", async () => {
      await queue.enqueue(["p1", "p2", "p3", "p4", "p5"].map((runId) => paced(runId, "t")));
      await queue.enqueue([paced("other", "u")]);
      // One of "t" now and the one of "u": its own pace.
      expect(ids(await queue.dequeueMany(abort.signal, 10)).sort()).toEqual(["other", "p1"]);
      expect(await queue.size()).toBe(4);
      const seen: string[][] = [];
      for (let step = 0; step < 4; step++) {
        await clock.advance(499);
        expect(await (queue as Partial<InspectableQueue>).nextAvailableAt?.()).toBe(clock.now() + 1);
        await clock.advance(1);
        seen.push(ids(await queue.dequeueMany(abort.signal, 10)));
      }
      expect(seen).toEqual([["p2"], ["p3"], ["p4"], ["p5"]]);
      expect(await queue.size()).toBe(0);
    });

    it("lets a throttle's burst start at once after a quiet spell, then keeps the pace", async () => {
      await queue.enqueue(["b1", "b2", "b3", "b4"].map((runId) => paced(runId, "t", 2)));
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["b1", "b2", "b3"]);
      await clock.advance(500);
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["b4"]);
      // Quiet for a period: the burst is back.
      await clock.advance(1500);
      await queue.enqueue(["c1", "c2", "c3", "c4"].map((runId) => paced(runId, "t", 2)));
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["c1", "c2", "c3"]);
    });

    it("keeps queue order among items waiting for a slot: an earlier time (a priority's advance) goes first", async () => {
      await queue.enqueue([limited("holder", ["k", 1])]);
      const [holder] = await queue.dequeueMany(abort.signal, 10);
      // "routine" waits for the slot (the dequeue that hands out "free" finds it first).
      await queue.enqueue([limited("routine", ["k", 1]), item("free", 1)]);
      await clock.advance(1);
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["free"]);
      // Arrives later, but 60 s ahead in the queue (as `priority: { run: "60" }` queues it).
      await queue.enqueue([{ ...limited("urgent", ["k", 1]), availableAt: clock.now() - 60_000 }]);
      await queue.releaseSlots([holder as QueueItem]);
      const [next] = await queue.dequeueMany(abort.signal, 10);
      expect(next?.runId).toBe("urgent");
      await queue.releaseSlots([next as QueueItem]);
      expect(ids(await queue.dequeueMany(abort.signal, 10))).toEqual(["routine"]);
    });

    it("counts events against rate limits: a burst of the limit, refilled evenly, keys apart", async () => {
      const check = (key: string) => ({ key, limit: 2, periodMs: 1000 });
      expect(await queue.rateLimit([check("a"), check("a"), check("a"), check("b")], clock.now())).toEqual([true, true, false, true]);
      await clock.advance(499);
      expect(await queue.rateLimit([check("a")], clock.now())).toEqual([false]);
      await clock.advance(1);
      expect(await queue.rateLimit([check("a"), check("a")], clock.now())).toEqual([true, false]);
      await clock.advance(1000);
      expect(await queue.rateLimit([check("a"), check("a"), check("a")], clock.now())).toEqual([true, true, false]);
      expect(await queue.rateLimit([], clock.now())).toEqual([]);
    });

    it("wakes a waiting dequeue when an item arrives, and resolves null on abort", async () => {
      const waiting = queue.dequeue(abort.signal);
      await queue.enqueue([item("now")]);
      expect((await waiting)?.runId).toBe("now");
      const aborted = queue.dequeue(abort.signal);
      abort.abort();
      expect(await aborted).toBeNull();
    });
  });
}
