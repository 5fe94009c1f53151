import { createSystemClock, type RealtimeMessage } from "@stepwise/engine";
import { expect, it } from "vitest";
import { createRedisRealtime } from "../src/index.js";
import { createTestRedis } from "../src/testing.js";

// A browser reconnects with Last-Event-ID while the follow read of its server process is still
// blocked on the cursor it had read up to, past what the browser saw; a worker publishes just
// then. Found by the cross-process SSE test: the stale read's reply moved the new follow past
// the messages between the two cursors, which were never delivered.
it("delivers every message after the resume point when a channel is followed again while the follow read is out", async () => {
  const clock = createSystemClock();
  const main = await createTestRedis();
  const other = await createTestRedis();
  const publisher = createRedisRealtime({ redis: other.redis, clock, prefix: main.prefix });
  const channel = "feed:resubscribe";
  // The UNBLOCK that wakes the follow read is held back until another message has been
  // published: the blocked read then answers with it first (the order the race needs).
  let beforeUnblock: (() => Promise<void>) | undefined;
  const call = main.redis.call.bind(main.redis) as (...args: unknown[]) => Promise<unknown>;
  (main.redis as unknown as { call: (...args: unknown[]) => Promise<unknown> }).call = async (...args: unknown[]) => {
    if (args[0] === "CLIENT" && args[1] === "UNBLOCK" && beforeUnblock) {
      const hook = beforeUnblock;
      beforeUnblock = undefined;
      await hook();
    }
    return call(...args);
  };
  // Replies of the follow read (on the connection the realtime duplicates for it), counted.
  let followReplies = 0;
  const duplicate = main.redis.duplicate.bind(main.redis);
  main.redis.duplicate = ((...args: Parameters<typeof duplicate>) => {
    const connection = duplicate(...args);
    const xread = connection.xread.bind(connection) as (...xreadArgs: unknown[]) => Promise<unknown>;
    (connection as unknown as { xread: (...xreadArgs: unknown[]) => Promise<unknown> }).xread = async (...xreadArgs: unknown[]) => {
      const reply = await xread(...xreadArgs);
      followReplies++;
      return reply;
    };
    return connection;
  }) as typeof main.redis.duplicate;
  const realtime = createRedisRealtime({ redis: main.redis, clock, prefix: main.prefix, blockMs: 10_000 });
  try {
    const first: number[] = [];
    const ids: string[] = [];
    const stopFirst = await realtime.subscribe(channel, { onMessage: (message: RealtimeMessage) => first.push((message.data as { n: number }).n) });
    for (let n = 1; n <= 10; n++) ids.push((await publisher.publish({ channel, topic: "tick", data: { n } })).id);
    await expect.poll(() => first.length).toBe(10);
    // The browser had seen 1..5 only when it was cut off.
    stopFirst();
    const second: number[] = [];
    beforeUnblock = async () => {
      const before = followReplies;
      await publisher.publish({ channel, topic: "tick", data: { n: 11 } });
      // The blocked read has answered (with 11) before the UNBLOCK goes out: the order the race needs.
      await expect.poll(() => followReplies).toBeGreaterThan(before);
    };
    await realtime.subscribe(channel, { onMessage: (message: RealtimeMessage) => second.push((message.data as { n: number }).n) }, { after: ids[4] });
    await expect.poll(() => second.length).toBeGreaterThanOrEqual(6);
    await publisher.publish({ channel, topic: "tick", data: { n: 12 } });
    await expect.poll(() => second.includes(12)).toBe(true);
    expect(second).toEqual([6, 7, 8, 9, 10, 11, 12]);
  } finally {
    await realtime.close();
    await publisher.close();
    await other.close();
    await main.close();
  }
});
