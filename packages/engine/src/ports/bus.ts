/** Stops a subscription. */
export type Unsubscribe = () => Promise<void>;

/**
 * Fan-out of small JSON messages between processes: run-ended notices (so `waitForRun` in one
 * process hears about a run another finished), queue wake-ups, and later realtime streams.
 * Delivery is best effort and at most once; nothing durable depends on it (the store is the truth).
 */
export interface Bus {
  publish(channel: string, message: unknown): Promise<void>;
  /** Calls `handler` for each message published on `channel` after the subscription is active. */
  subscribe(channel: string, handler: (message: unknown) => void): Promise<Unsubscribe>;
  close(): Promise<void>;
}
