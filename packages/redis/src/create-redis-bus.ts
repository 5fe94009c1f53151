import type { Bus } from "@stepwise/engine";
import type { Redis } from "ioredis";
import { closeRedis } from "./close-redis.js";
import { rethrowUnavailable } from "./redis-unavailable-error.js";

/** Options of {@link createRedisBus}. */
export interface RedisBusOptions {
  /**
   * The client that publishes. Subscriptions need a connection of their own (a subscribed
   * connection can run no other command): the bus opens it with `redis.duplicate()` at the
   * first `subscribe` and ends it on `close()`. `redis` itself is left open unless
   * `ownsConnection` is set.
   */
  redis: Redis;
  /** Channels are named `<prefix>:bus:<channel>`. (Default: "stepwise") */
  prefix?: string;
  /** Whether `close()` also quits `redis`. (Default: false) */
  ownsConnection?: boolean;
  /**
   * Called when a handler throws (or its promise rejects) or a message is not JSON. Such an
   * error never reaches the subscriber connection. (Default: ignore it)
   */
  onHandlerError?: (error: unknown, channel: string) => void;
}

type Handler = (message: unknown) => void;

/**
 * The engine's `Bus` on Redis pub/sub: JSON messages fanned out to every process subscribed to
 * the channel. Best effort and at most once, as the port says: a message published while a
 * subscriber is disconnected is not delivered to it.
 *
 * @example
 * const bus = createRedisBus({ redis: await connectRedis() });
 * const unsubscribe = await bus.subscribe("runs", (message) => console.log(message));
 * await bus.publish("runs", { runId: "run_1", status: "completed" });
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  const { redis } = options;
  const channelPrefix = `${options.prefix ?? "stepwise"}:bus:`;
  // Keyed by the full Redis channel name.
  const handlers = new Map<string, Set<Handler>>();
  const subscribedChannels = new Set<string>();
  let subscriber: Redis | undefined;
  // SUBSCRIBE and UNSUBSCRIBE go out one at a time, each bringing the server in line with the
  // handlers wanted at that moment, so that a quick unsubscribe/subscribe pair cannot leave a
  // channel unsubscribed while it has handlers.
  let changes: Promise<void> = Promise.resolve();
  let closed = false;
  let closing: Promise<void> | undefined;

  function report(error: unknown, channel: string): void {
    try {
      options.onHandlerError?.(error, channel);
    } catch {
      // An error reporter that throws must not break delivery either.
    }
  }

  function deliver(fullChannel: string, raw: string): void {
    const set = handlers.get(fullChannel);
    if (!set || set.size === 0) return;
    const channel = fullChannel.slice(channelPrefix.length);
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch (error) {
      report(error, channel);
      return;
    }
    for (const handler of [...set]) {
      try {
        const result: unknown = handler(message);
        // A handler declared `async` returns a promise: its rejection must not go unhandled
        // (it would end the process).
        if (result instanceof Promise) result.catch((error: unknown) => report(error, channel));
      } catch (error) {
        report(error, channel);
      }
    }
  }

  function connection(): Redis {
    if (!subscriber) {
      subscriber = redis.duplicate();
      // It reconnects and resubscribes on its own (ioredis `autoResubscribe`).
      subscriber.on("error", () => {});
      subscriber.on("message", deliver);
    }
    return subscriber;
  }

  function sync(fullChannel: string): Promise<void> {
    const change = changes.then(async () => {
      if (closed) return;
      const wanted = (handlers.get(fullChannel)?.size ?? 0) > 0;
      if (wanted && !subscribedChannels.has(fullChannel)) {
        await connection().subscribe(fullChannel);
        subscribedChannels.add(fullChannel);
      } else if (!wanted && subscribedChannels.has(fullChannel)) {
        subscribedChannels.delete(fullChannel);
        handlers.delete(fullChannel);
        await connection().unsubscribe(fullChannel);
      }
    });
    changes = change.catch(() => {});
    return change;
  }

  return {
    async publish(channel, message) {
      try {
        await redis.publish(channelPrefix + channel, JSON.stringify(message) ?? "null");
      } catch (error) {
        rethrowUnavailable(redis, error);
      }
    },

    async subscribe(channel, handler) {
      if (closed) throw new Error("the Redis bus is closed");
      const fullChannel = channelPrefix + channel;
      // A wrapper per call, so that subscribing one function twice gives two subscriptions.
      const entry: Handler = (message) => handler(message);
      const set = handlers.get(fullChannel) ?? new Set<Handler>();
      set.add(entry);
      handlers.set(fullChannel, set);
      const unsubscribe = async () => {
        set.delete(entry);
        await sync(fullChannel).catch(() => {});
      };
      try {
        await sync(fullChannel);
      } catch (error) {
        set.delete(entry);
        rethrowUnavailable(connection(), error);
      }
      return unsubscribe;
    },

    close() {
      closing ??= (async () => {
        closed = true;
        handlers.clear();
        subscribedChannels.clear();
        if (subscriber) await closeRedis(subscriber);
        if (options.ownsConnection) await closeRedis(redis);
      })();
      return closing;
    },
  };
}
