import { type Duration, parseDuration } from "@stepwise/core";
import type { CancelTimer, Clock } from "@stepwise/engine";

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

/**
 * A `Clock` whose time moves only when told. `advance()` fires due timers in time order,
 * letting the work each one starts reach its next `await` before firing the next.
 *
 * @example
 * const clock = new FakeClock();
 * await clock.advance("7d"); // fires sleeps, timeouts and cron ticks due within 7 days
 */
export class FakeClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private seq = 0;
  private settleHook: (() => Promise<void>) | undefined;

  /** @param start Epoch milliseconds to start at. (Default: 2030-01-01T00:00:00Z) */
  constructor(start: number | Date = Date.UTC(2030, 0, 1)) {
    this.current = typeof start === "number" ? start : start.getTime();
  }

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, ms: number): CancelTimer {
    const timer: Timer = { at: this.current + Math.max(0, ms), seq: this.seq++, callback };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  }

  /**
   * Awaits `hook` after each fired timer, before time moves on: the test engine passes
   * `engine.idle`, so the work a timer starts runs at the timer's own time.
   */
  onSettle(hook: (() => Promise<void>) | undefined): void {
    this.settleHook = hook;
  }

  /**
   * Moves time forward by `duration`, firing every timer that falls due on the way: all timers
   * of one instant together, then the settle hook, then the next instant.
   */
  async advance(duration: Duration): Promise<void> {
    const target = this.current + parseDuration(duration, "FakeClock.advance");
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= target);
      if (due.length === 0) break;
      const at = Math.min(...due.map((timer) => timer.at));
      const batch = due.filter((timer) => timer.at === at).sort((a, b) => a.seq - b.seq);
      this.timers = this.timers.filter((timer) => !batch.includes(timer));
      this.current = Math.max(this.current, at);
      for (const timer of batch) timer.callback();
      await settle();
      await this.settleHook?.();
    }
    this.current = target;
  }

  /** Moves time to `date` (never backwards), firing due timers. */
  async advanceTo(date: Date | number): Promise<void> {
    const at = typeof date === "number" ? date : date.getTime();
    await this.advance(Math.max(0, at - this.current));
  }

  /** Number of armed timers. */
  get pendingTimers(): number {
    return this.timers.length;
  }
}

/** Lets promise chains and I/O callbacks started by a timer run before the next fires. */
async function settle(): Promise<void> {
  for (let index = 0; index < 3; index++) await new Promise((resolve) => setImmediate(resolve));
}
