import type { Clock } from "@stepwise/engine";
import { describe, expect, it } from "vitest";

/**
 * The contract every `Clock` passes: time never goes backwards, timers fire once after their
 * delay, and a cancelled timer never fires. `advance` moves the clock (real or fake) by `ms`.
 */
export function clockContract(name: string, makeClock: () => { clock: Clock; advance(ms: number): Promise<void> }): void {
  describe(`Clock contract: ${name}`, () => {
    it("never goes backwards", async () => {
      const { clock, advance } = makeClock();
      const first = clock.now();
      await advance(5);
      expect(clock.now()).toBeGreaterThanOrEqual(first + 5);
    });

    it("fires a timer once, not before its delay, and never after cancel", async () => {
      const { clock, advance } = makeClock();
      const fired: number[] = [];
      const start = clock.now();
      clock.setTimer(() => fired.push(clock.now() - start), 30);
      const cancel = clock.setTimer(() => fired.push(-1), 20);
      cancel();
      await advance(10);
      expect(fired).toEqual([]);
      await advance(40);
      expect(fired).toHaveLength(1);
      expect(fired[0]).toBeGreaterThanOrEqual(30);
    });
  });
}
