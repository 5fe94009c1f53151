import type { CancelTimer, Clock } from "@stepwise/engine";

/**
 * A clock that moves only when told, for tests of this package (the `FakeClock` of
 * `@stepwise/testing` would make redis and testing depend on each other).
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: Array<{ at: number; callback: () => void }> = [];

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, ms: number): CancelTimer {
    const timer = { at: this.current + Math.max(0, ms), callback };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  }

  /** The due times of the timers set and not yet fired or cancelled, earliest first. */
  pendingTimers(): number[] {
    return this.timers.map((timer) => timer.at).sort((a, b) => a - b);
  }

  /** Moves time forward, firing the timers that fall due. */
  advance(ms: number): void {
    this.current += ms;
    const due = this.timers.filter((timer) => timer.at <= this.current);
    this.timers = this.timers.filter((timer) => timer.at > this.current);
    for (const timer of due) timer.callback();
  }
}
