/** Cancels a timer. */
export type CancelTimer = () => void;

/**
 * Time, as the engine sees it. Production uses the system clock corrected to the database's
 * clock; tests use `FakeClock` from `@stepwise/testing` to fire sleeps, timeouts and cron
 * ticks without waiting.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `callback` once `ms` have passed on this clock. */
  setTimer(callback: () => void, ms: number): CancelTimer;
}

/** Options of {@link createSystemClock}. */
export interface SystemClockOptions {
  /** Milliseconds to add to the machine's clock, e.g. the database clock's lead. (Default: 0) */
  offsetMs?: number;
}

/** The machine's clock, shifted by `offsetMs` (see `syncClockOffset`). */
export function createSystemClock(options: SystemClockOptions = {}): Clock & { offsetMs: number } {
  const clock = {
    offsetMs: options.offsetMs ?? 0,
    now: () => Date.now() + clock.offsetMs,
    setTimer(callback: () => void, ms: number): CancelTimer {
      const due = clock.now() + Math.max(0, ms);
      let handle: NodeJS.Timeout;
      const arm = (delay: number) => {
        // Node may fire a timer up to ~1 ms before Date.now() reaches its due time, and caps
        // delays at 2^31-1 ms: re-arm until the clock really is at or past the due time.
        handle = setTimeout(() => (clock.now() >= due ? callback() : arm(due - clock.now())), Math.min(Math.max(1, delay), 2 ** 31 - 1));
        handle.unref?.();
      };
      arm(ms);
      return () => clearTimeout(handle);
    },
  };
  return clock;
}

/** Reads of the database clock per measurement; the one with the shortest round trip is kept. */
const CLOCK_SAMPLES = 3;

/**
 * Measures how far the database clock is ahead of this machine's, so that wake times are
 * compared against the database clock.
 *
 * The database read its clock somewhere inside the round trip, which also holds the wait for a
 * pool connection (a cold or busy pool: 3 to 25 ms measured, all of it before the read). The
 * estimate takes the read as happening at the end of the round trip: it can only come out
 * behind the database clock, never ahead, so a timer fires late by at most one round trip and
 * never early. Of {@link CLOCK_SAMPLES} reads, the shortest round trip is kept (the first one
 * warms the connection).
 */
export async function measureClockOffset(databaseNow: () => Promise<number>): Promise<number> {
  let best: { rtt: number; offset: number } | undefined;
  for (let sample = 0; sample < CLOCK_SAMPLES; sample++) {
    const before = Date.now();
    const remote = await databaseNow();
    const after = Date.now();
    if (!best || after - before < best.rtt) best = { rtt: after - before, offset: remote - after };
  }
  return (best as { offset: number }).offset;
}

/**
 * Keeps `clock.offsetMs` equal to the database clock's lead over this machine: measured now and
 * every `intervalMs` (Default: 60000), so wake times compare against the database clock even as
 * the machine's clock drifts. Returns a function that stops it.
 */
export function syncClockOffset(clock: { offsetMs: number }, databaseNow: () => Promise<number>, intervalMs = 60_000): () => void {
  let stopped = false;
  const measure = () =>
    measureClockOffset(databaseNow)
      .then((offset) => {
        if (!stopped) clock.offsetMs = offset;
      })
      .catch(() => {
        // Keep the last offset; the next round tries again.
      });
  void measure();
  const handle = setInterval(measure, intervalMs);
  handle.unref?.();
  return () => {
    stopped = true;
    clearInterval(handle);
  };
}
