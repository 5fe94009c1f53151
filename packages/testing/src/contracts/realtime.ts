import type { Realtime, RealtimeMessage } from "@stepwise/engine";
import { compareMessageIds } from "@stepwise/engine";
import { afterEach, describe, expect, it } from "vitest";

/** Makes a fresh realtime, bounded to `maxLength` messages per channel, and disposes of it. */
export type RealtimeFactory = (options: { maxLength: number }) => Promise<{ realtime: Realtime; close(): Promise<void> }>;

/**
 * What every `Realtime` must do: ids increasing per channel, live delivery in order, resume
 * after an id with no gap and no duplicate (also while messages keep coming, and for a second
 * subscriber joining a channel already followed), topic filters, and a reported gap when the
 * bounds dropped messages a resume needed.
 */
export function realtimeContract(name: string, make: RealtimeFactory): void {
  describe(`Realtime contract: ${name}`, () => {
    let dispose: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await dispose?.();
      dispose = undefined;
    });
    const open = async (maxLength = 1000) => {
      const made = await make({ maxLength });
      dispose = made.close;
      return made.realtime;
    };
    const collector = () => {
      const got: RealtimeMessage[] = [];
      const gaps: unknown[] = [];
      return { got, gaps, subscriber: { onMessage: (message: RealtimeMessage) => got.push(message), onGap: (gap: unknown) => gaps.push(gap) } };
    };
    const numbers = (messages: RealtimeMessage[]) => messages.map((message) => message.data);

    it("delivers live messages in order, with increasing ids, to every subscriber of the channel only", async () => {
      const realtime = await open();
      const a = collector();
      const b = collector();
      const other = collector();
      const stops = [
        await realtime.subscribe("c1", a.subscriber),
        await realtime.subscribe("c1", b.subscriber),
        await realtime.subscribe("c2", other.subscriber),
      ];
      expect(realtime.subscriberCount).toBe(3);
      const published = await Promise.all(Array.from({ length: 50 }, (_, n) => realtime.publish({ channel: "c1", topic: "t", data: n })));
      await expect.poll(() => a.got.length).toBe(50);
      await expect.poll(() => b.got.length).toBe(50);
      expect(numbers(a.got)).toEqual(Array.from({ length: 50 }, (_, n) => n));
      expect(a.got.map((message) => message.id)).toEqual(published.map((message) => message.id));
      for (let index = 1; index < published.length; index++) expect(compareMessageIds(published[index - 1]!.id, published[index]!.id)).toBeLessThan(0);
      expect(other.got).toEqual([]);
      for (const stop of stops) stop();
      expect(realtime.subscriberCount).toBe(0);
    });

    it("resumes after an id with exactly what followed, while more keep coming, and filters by topic", async () => {
      const realtime = await open();
      const first: RealtimeMessage[] = [];
      for (let n = 0; n < 20; n++) first.push(await realtime.publish({ channel: "r", topic: n % 2 === 0 ? "even" : "odd", data: n }));
      // A follower keeps the channel followed, so the next one joins an existing follow (catch-up path).
      const follower = collector();
      const stopFollower = await realtime.subscribe("r", follower.subscriber, { after: "0-0" });
      const resumed = collector();
      const publishing = (async () => {
        for (let n = 20; n < 40; n++) await realtime.publish({ channel: "r", topic: n % 2 === 0 ? "even" : "odd", data: n });
      })();
      const stopResumed = await realtime.subscribe("r", resumed.subscriber, { after: first[9]!.id });
      const evens = collector();
      const stopEvens = await realtime.subscribe("r", evens.subscriber, { after: "0-0", topics: ["even"] });
      await publishing;
      await expect.poll(() => resumed.got.length).toBe(30);
      expect(numbers(resumed.got)).toEqual(Array.from({ length: 30 }, (_, n) => n + 10));
      await expect.poll(() => follower.got.length).toBe(40);
      await expect.poll(() => evens.got.length).toBe(20);
      expect(numbers(evens.got)).toEqual(Array.from({ length: 20 }, (_, n) => n * 2));
      expect(resumed.gaps).toEqual([]);
      stopFollower();
      stopResumed();
      stopEvens();
    });

    it("reports a gap when the bounds dropped messages a resume needed, then goes on from the oldest kept", async () => {
      const realtime = await open(10);
      const published: RealtimeMessage[] = [];
      for (let n = 0; n < 500; n++) published.push(await realtime.publish({ channel: "g", topic: "t", data: n }));
      const late = collector();
      const stop = await realtime.subscribe("g", late.subscriber, { after: published[0]!.id });
      await expect.poll(() => late.got.length).toBeGreaterThan(0);
      expect(late.gaps).toHaveLength(1);
      // What is delivered is a suffix of what was published, in order, ending with the last.
      expect(numbers(late.got).at(-1)).toBe(499);
      const firstKept = late.got[0]!.data as number;
      expect(numbers(late.got)).toEqual(Array.from({ length: 500 - firstKept }, (_, n) => n + firstKept));
      stop();
    });
  });
}
