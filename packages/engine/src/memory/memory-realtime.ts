import type { Clock } from "../ports/clock.js";
import { compareMessageIds, REALTIME_DEFAULTS, type Realtime, type RealtimeMessage, type RealtimeSubscriber } from "../ports/realtime.js";

/** Options of {@link createMemoryRealtime}. */
export interface MemoryRealtimeOptions {
  clock: Clock;
  /** Messages kept per channel (`maxLength / 8` more may be kept, as `MAXLEN ~` does on Redis). (Default: 10,000) */
  maxLength?: number;
  /** Age past which messages are dropped (ms). (Default: 24 h) */
  maxAgeMs?: number;
  /**
   * Messages kept across all channels: past it, the channels published to least recently
   * (with no subscriber) are dropped whole, so a channel per run cannot grow memory without
   * bound. (Default: 100,000)
   */
  maxMessages?: number;
}

interface Channel {
  messages: RealtimeMessage[];
  /** Id of the newest message dropped by the bounds, if any: a resume before it has a gap. */
  maxDeleted?: string;
  subscribers: Set<{ subscriber: RealtimeSubscriber; topics?: Set<string> }>;
}

/**
 * The embedded `Realtime`: each channel's log in memory, bounded like the Redis one, with ids
 * in the same `<ms>-<n>` form. Delivery is synchronous, in publish order.
 */
export function createMemoryRealtime(options: MemoryRealtimeOptions): Realtime {
  const maxLength = options.maxLength ?? REALTIME_DEFAULTS.maxLength;
  const maxAgeMs = options.maxAgeMs ?? REALTIME_DEFAULTS.maxAgeMs;
  const maxMessages = options.maxMessages ?? 100_000;
  // In the order they were last published to: the first ones are evicted first.
  const channels = new Map<string, Channel>();
  let total = 0;
  let lastMs = 0;
  let lastSeq = 0;
  let subscriberCount = 0;

  const channelOf = (name: string): Channel => {
    let channel = channels.get(name);
    if (!channel) {
      channel = { messages: [], subscribers: new Set() };
      channels.set(name, channel);
    }
    return channel;
  };

  // Past `maxLength`, a channel keeps up to this many more before it is cut back, as Redis's
  // `MAXLEN ~` does: cutting one message per publish moved the whole log each time (a busy
  // function's channel is full, and every run publishes to it).
  const slack = Math.max(16, maxLength >> 3);

  /** Drops what is past the bounds, remembering the newest id dropped. */
  const trim = (channel: Channel, now: number) => {
    const { length } = channel.messages;
    let drop = length > maxLength + slack ? length - maxLength : 0;
    while (drop < channel.messages.length && (channel.messages[drop] as RealtimeMessage).ts < now - maxAgeMs) drop++;
    if (drop === 0) return;
    channel.maxDeleted = (channel.messages[drop - 1] as RealtimeMessage).id;
    channel.messages.splice(0, drop);
    total -= drop;
  };

  const evict = () => {
    for (const [name, channel] of channels) {
      if (total <= maxMessages) return;
      if (channel.subscribers.size > 0) continue;
      total -= channel.messages.length;
      channels.delete(name);
    }
  };

  const deliver = (entry: { subscriber: RealtimeSubscriber; topics?: Set<string> }, message: RealtimeMessage) => {
    if (entry.topics && !entry.topics.has(message.topic)) return;
    try {
      entry.subscriber.onMessage(message);
    } catch {
      // One failing subscriber must not starve the others.
    }
  };

  return {
    async publish({ channel: name, topic, data }) {
      const now = options.clock.now();
      // Ids only grow, even if the clock steps back.
      if (now > lastMs) {
        lastMs = now;
        lastSeq = 0;
      } else lastSeq++;
      const message: RealtimeMessage = { id: `${lastMs}-${lastSeq}`, channel: name, topic, data, ts: now };
      const channel = channelOf(name);
      // Last published to, last to be evicted.
      channels.delete(name);
      channels.set(name, channel);
      channel.messages.push(message);
      total++;
      trim(channel, now);
      if (total > maxMessages) evict();
      for (const entry of channel.subscribers) deliver(entry, message);
      return message;
    },

    async subscribe(name, subscriber, subscribeOptions = {}) {
      const channel = channelOf(name);
      trim(channel, options.clock.now());
      const entry = { subscriber, topics: subscribeOptions.topics && new Set(subscribeOptions.topics) };
      const { after } = subscribeOptions;
      if (after !== undefined) {
        if (channel.maxDeleted !== undefined && compareMessageIds(after, channel.maxDeleted) < 0) {
          subscriber.onGap?.({ after, firstAvailable: channel.messages[0]?.id });
        }
        for (const message of channel.messages) if (compareMessageIds(message.id, after) > 0) deliver(entry, message);
      }
      channel.subscribers.add(entry);
      subscriberCount++;
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        subscriberCount--;
        channel.subscribers.delete(entry);
      };
    },

    get subscriberCount() {
      return subscriberCount;
    },

    async close() {
      channels.clear();
      total = 0;
    },
  };
}
