import type { JsonValue } from "@stepwise/core";

/** A message on a realtime channel, as subscribers receive it. */
export interface RealtimeMessage {
  /**
   * The message's place in its channel, `<ms>-<n>`: strictly increasing per channel, so a
   * subscriber that resumes after an id (SSE `Last-Event-ID`) gets exactly what followed it.
   */
  id: string;
  channel: string;
  topic: string;
  data: JsonValue;
  /** When it was published (epoch ms). */
  ts: number;
}

/** What a subscription delivers besides messages. */
export interface RealtimeSubscriber {
  onMessage(message: RealtimeMessage): void;
  /**
   * Messages after the resume point were dropped by the channel's bounds (length or age) before
   * this subscriber came back; delivery goes on from the oldest message still held. (Redis
   * records no id of what it trimmed: there, a resume from the very last message dropped is
   * reported as a gap too.)
   */
  onGap?(info: { after: string; firstAvailable?: string }): void;
}

/** Options of {@link Realtime.subscribe}. */
export interface SubscribeOptions {
  /**
   * Resume after this message id (exclusive): every message the channel still holds that came
   * after it is delivered first, in order, then live ones. (Default: live messages only)
   */
  after?: string;
  /** Only these topics. (Default: all) */
  topics?: string[];
}

/**
 * Realtime channels: ordered, bounded message logs that any process can publish to and any
 * process can follow and resume. Production uses Redis Streams (a worker publishes, a server
 * process streams to browsers); the embedded mode keeps the same logs in memory. Unlike the
 * `Bus`, a subscriber that reconnects loses nothing still within the bounds.
 */
export interface Realtime {
  /** Appends a message to `channel`; answers it with its id. */
  publish(input: { channel: string; topic: string; data: JsonValue }): Promise<RealtimeMessage>;
  /** Follows `channel`, from `after` on; answers the unsubscribe function. */
  subscribe(channel: string, subscriber: RealtimeSubscriber, options?: SubscribeOptions): Promise<() => void>;
  /** Subscriptions open in this process (for metrics). */
  readonly subscriberCount: number;
  close(): Promise<void>;
}

/** Bounds of a realtime channel, by default: the newest 10,000 messages of at most 24 hours. */
export const REALTIME_DEFAULTS = { maxLength: 10_000, maxAgeMs: 24 * 60 * 60 * 1000 } as const;

/** Parses a message id `<ms>-<n>`; `undefined` when it is not one. */
export function parseMessageId(id: string): [number, number] | undefined {
  const match = /^(\d{1,16})-(\d{1,16})$/.exec(id);
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2])];
}

/** Orders message ids: negative when `a` came first. Both must parse (see {@link parseMessageId}). */
export function compareMessageIds(a: string, b: string): number {
  const [aMs, aSeq] = parseMessageId(a) ?? [0, 0];
  const [bMs, bSeq] = parseMessageId(b) ?? [0, 0];
  return aMs === bMs ? aSeq - bSeq : aMs - bMs;
}
