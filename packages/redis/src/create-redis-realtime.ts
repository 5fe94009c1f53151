import type { JsonValue } from "@stepwise/core";
import {
  type Clock,
  compareMessageIds,
  parseMessageId,
  REALTIME_DEFAULTS,
  type Realtime,
  type RealtimeMessage,
  type RealtimeSubscriber,
} from "@stepwise/engine";
import type { Redis } from "ioredis";
import { closeRedis } from "./close-redis.js";
import { rethrowUnavailable } from "./redis-unavailable-error.js";

/** Options of {@link createRedisRealtime}. */
export interface RedisRealtimeOptions {
  /** The client that publishes and reads history; following channels takes one more connection (`redis.duplicate()`). */
  redis: Redis;
  /** The engine's clock (message times). */
  clock: Clock;
  /** Streams are the keys `<prefix>:rt:<channel>`. (Default: "stepwise") */
  prefix?: string;
  /** Messages kept per channel (`XADD … MAXLEN ~`, so a little more may be kept). (Default: 10,000) */
  maxLength?: number;
  /**
   * Messages older than this are trimmed (`XTRIM MINID ~`, on about one publish in 16 to a
   * channel), and an idle channel's key expires after it (ms). (Default: 24 h)
   */
  maxAgeMs?: number;
  /** Longest a follow read blocks before it looks at its channel list again (ms). (Default: 5000) */
  blockMs?: number;
  /** Whether `close()` also quits `redis`. (Default: false) */
  ownsConnection?: boolean;
}

interface Follower {
  subscriber: RealtimeSubscriber;
  topics?: Set<string>;
  /** The newest message id this follower has been given (or skipped, by topic). */
  last: string;
  /** While it catches up on history: live messages wait here, in order. */
  buffer?: RealtimeMessage[];
}

interface Followed {
  /** The newest id the follow loop has read from this channel's stream. */
  cursor: string;
  followers: Set<Follower>;
}

/** Most messages one publishing pipeline carries. */
const PUBLISH_BATCH = 256;

/** A channel is trimmed by age on about one flush in this many. */
const TRIM_BY_AGE_ONE_IN = 16;

/** A stream entry as ioredis answers it: the id, then field/value pairs. */
type StreamEntry = [id: string, fields: string[]];

/**
 * The production `Realtime` on Redis Streams: a channel is a stream, trimmed to `maxLength`
 * messages and `maxAgeMs` of age, so any process can resume what any other published. Messages
 * published in one turn of the event loop go out in one pipeline. One blocking `XREAD` per
 * process follows every channel its subscribers watch, and fans each message out in memory,
 * so a thousand browsers on one run cost one read.
 *
 * @example
 * const realtime = createRedisRealtime({ redis: await connectRedis(), clock });
 * await realtime.subscribe("run:run_1", { onMessage: (message) => console.log(message) }, { after: lastEventId });
 */
export function createRedisRealtime(options: RedisRealtimeOptions): Realtime {
  const { redis, clock } = options;
  const prefix = `${options.prefix ?? "stepwise"}:rt:`;
  const maxLength = options.maxLength ?? REALTIME_DEFAULTS.maxLength;
  const maxAgeMs = options.maxAgeMs ?? REALTIME_DEFAULTS.maxAgeMs;
  const blockMs = options.blockMs ?? 5000;
  const followed = new Map<string, Followed>();
  let followerCount = 0;
  let reader: Redis | undefined;
  let readerId: number | undefined;
  let loop: Promise<void> | undefined;
  let closed = false;

  // Publishing: one pipeline per turn of the event loop.
  const pending: Array<{ channel: string; fields: string; ts: number; resolve: (id: string) => void; reject: (error: unknown) => void }> = [];
  const flush = async () => {
    // At most PUBLISH_BATCH per pipeline: a burst (a thousand runs starting at once) goes out
    // in pieces, without one huge command buffer that the process then keeps.
    const batch = pending.splice(0, PUBLISH_BATCH);
    if (pending.length > 0) queueMicrotask(() => void flush());
    const pipeline = redis.pipeline();
    const minId = `${Math.max(0, clock.now() - maxAgeMs)}-0`;
    for (const item of batch) pipeline.xadd(prefix + item.channel, "MAXLEN", "~", maxLength, "*", "m", item.fields);
    for (const channel of new Set(batch.map((item) => item.channel))) {
      // An idle channel's key expires after the age bound. Trimming a busy channel by age is
      // done on one flush in TRIM_BY_AGE_ONE_IN (the length bound holds on every XADD), so that a
      // publish costs two commands, not three, with nothing remembered per channel here.
      pipeline.pexpire(prefix + channel, maxAgeMs);
      if (Math.random() * TRIM_BY_AGE_ONE_IN < 1) pipeline.xtrim(prefix + channel, "MINID", "~", minId);
    }
    try {
      const results = (await pipeline.exec()) ?? [];
      batch.forEach((item, index) => {
        const [error, id] = results[index] ?? [new Error("no answer from Redis")];
        if (error) item.reject(error);
        else item.resolve(String(id));
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  };

  const toMessage = (channel: string, [id, fields]: StreamEntry): RealtimeMessage | undefined => {
    const raw = fields[fields.indexOf("m") + 1];
    if (raw === undefined) return undefined;
    try {
      const body = JSON.parse(raw) as { topic: string; data: JsonValue; ts: number };
      return { id, channel, topic: body.topic, data: body.data, ts: body.ts };
    } catch {
      return undefined;
    }
  };

  const deliver = (follower: Follower, message: RealtimeMessage) => {
    if (follower.buffer) {
      follower.buffer.push(message);
      return;
    }
    if (compareMessageIds(message.id, follower.last) <= 0) return;
    follower.last = message.id;
    if (follower.topics && !follower.topics.has(message.topic)) return;
    try {
      follower.subscriber.onMessage(message);
    } catch {
      // One failing subscriber must not starve the others.
    }
  };

  async function connectReader(): Promise<Redis> {
    if (reader) return reader;
    const connection = redis.duplicate();
    connection.on("error", () => {});
    // A reconnected connection has a new id: UNBLOCK needs the current one.
    connection.on("ready", () => {
      void connection.client("ID").then(
        (id) => (readerId = Number(id)),
        () => undefined,
      );
    });
    reader = connection;
    readerId = Number(await connection.client("ID"));
    return connection;
  }

  /** Wakes the follow read so it picks up a channel just added. */
  const interrupt = () => {
    if (readerId !== undefined) void redis.call("CLIENT", "UNBLOCK", String(readerId)).catch(() => undefined);
  };

  async function follow(): Promise<void> {
    const connection = await connectReader();
    while (!closed && followed.size > 0) {
      const channels = [...followed.keys()];
      // The follow each cursor came from: a channel unfollowed and followed again while this read
      // was out (a browser reconnecting) has a new follow with its own, earlier cursor, and what
      // this read brings from the old cursor on must not skip the new follow past the messages
      // between the two.
      const readFrom = new Map(channels.map((channel) => [channel, followed.get(channel) as Followed]));
      let answer: Array<[key: string, entries: StreamEntry[]]> | null;
      try {
        answer = (await connection.xread(
          "COUNT",
          1000,
          "BLOCK",
          blockMs,
          "STREAMS",
          ...channels.map((channel) => prefix + channel),
          ...channels.map((channel) => (followed.get(channel) as Followed).cursor),
        )) as Array<[string, StreamEntry[]]> | null;
      } catch {
        // Redis away: followers keep their place; read again once it is back.
        if (closed) return;
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const [key, entries] of answer ?? []) {
        const channel = key.slice(prefix.length);
        const state = followed.get(channel);
        if (!state || state !== readFrom.get(channel)) continue;
        for (const entry of entries) {
          state.cursor = entry[0];
          const message = toMessage(channel, entry);
          if (message) for (const follower of [...state.followers]) deliver(follower, message);
        }
      }
    }
  }

  const ensureLoop = () => {
    loop ??= follow().finally(() => {
      loop = undefined;
      // A subscription added while the loop was ending.
      if (!closed && followed.size > 0) ensureLoop();
    });
  };

  async function range(channel: string, after: string, until: string): Promise<RealtimeMessage[]> {
    const entries = (await redis.xrange(prefix + channel, `(${after}`, until)) as StreamEntry[];
    return entries.flatMap((entry) => toMessage(channel, entry) ?? []);
  }

  return {
    publish({ channel, topic, data }) {
      if (closed) return Promise.reject(new Error("the Redis realtime is closed"));
      const ts = clock.now();
      return new Promise<RealtimeMessage>((resolve, reject) => {
        if (pending.length === 0) queueMicrotask(() => void flush());
        pending.push({
          channel,
          ts,
          fields: JSON.stringify({ topic, data, ts }),
          resolve: (id) => resolve({ id, channel, topic, data, ts }),
          reject: (error) => {
            try {
              rethrowUnavailable(redis, error);
            } catch (unavailable) {
              reject(unavailable);
            }
          },
        });
      });
    },

    async subscribe(channel, subscriber, subscribeOptions = {}) {
      if (closed) throw new Error("the Redis realtime is closed");
      const key = prefix + channel;
      let start = subscribeOptions.after;
      try {
        if (start === undefined) {
          // Live only: from the stream's current end.
          const [newest] = (await redis.xrevrange(key, "+", "-", "COUNT", 1)) as StreamEntry[];
          start = newest?.[0] ?? "0-0";
        } else {
          if (!parseMessageId(start)) throw new TypeError(`"${start}" is not a message id (<ms>-<n>)`);
          const info = (await redis.call("XINFO", "STREAM", key).catch(() => null)) as unknown[] | null;
          if (info) {
            const field = (name: string) => info[info.indexOf(name) + 1];
            const first = field("first-entry") as StreamEntry | null;
            // Trimming records no "last deleted" id: when messages were dropped and the resume
            // point is older than the oldest kept, some of the dropped ones may have followed it.
            const dropped = Number(field("entries-added")) > Number(field("length"));
            if (dropped && first && compareMessageIds(start, first[0]) < 0) subscriber.onGap?.({ after: start, firstAvailable: first[0] });
          }
        }
      } catch (error) {
        if (error instanceof TypeError) throw error;
        rethrowUnavailable(redis, error);
      }
      const follower: Follower = { subscriber, topics: subscribeOptions.topics && new Set(subscribeOptions.topics), last: start as string };
      let state = followed.get(channel);
      let catchUpUntil: string | undefined;
      if (!state) {
        state = { cursor: start as string, followers: new Set() };
        followed.set(channel, state);
        interrupt();
      } else if (compareMessageIds(state.cursor, start as string) > 0) {
        // The loop is past the resume point: fetch what lies between, holding live messages meanwhile.
        catchUpUntil = state.cursor;
        follower.buffer = [];
      }
      state.followers.add(follower);
      followerCount++;
      ensureLoop();
      if (catchUpUntil !== undefined) {
        const held = follower.buffer ?? [];
        try {
          const history = await range(channel, start as string, catchUpUntil);
          follower.buffer = undefined;
          for (const message of [...history, ...held]) deliver(follower, message);
        } catch (error) {
          follower.buffer = undefined;
          state.followers.delete(follower);
          followerCount--;
          rethrowUnavailable(redis, error);
        }
      }
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        followerCount--;
        const current = followed.get(channel);
        current?.followers.delete(follower);
        if (current && current.followers.size === 0) followed.delete(channel);
      };
    },

    get subscriberCount() {
      return followerCount;
    },

    async close() {
      if (closed) return;
      if (pending.length > 0) await flush();
      closed = true;
      followed.clear();
      interrupt();
      reader?.disconnect();
      await loop?.catch(() => undefined);
      if (options.ownsConnection) await closeRedis(redis);
    },
  };
}
