import type { Clock, Queue } from "@stepwise/engine";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../fake-clock.js";

/** What a queue contract run needs: a fresh queue on the given clock. */
export type QueueFactory = (clock: Clock) => Promise<{ queue: Queue; close(): Promise<void> }>;

/**
 * The contract every `Queue` adapter passes (in-memory now, Redis later): ordering by time then
 * priority, one item per run, delays on the engine's clock, abortable waits.
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
