import type { Bus } from "@stepwise/engine";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** The contract every `Bus` passes (in-memory now, Redis pub/sub later). */
export function busContract(name: string, makeBus: () => Promise<{ bus: Bus; close(): Promise<void> }>): void {
  describe(`Bus contract: ${name}`, () => {
    let bus: Bus;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ bus, close } = await makeBus());
    });
    afterEach(() => close());

    it("delivers JSON messages to every subscriber of the channel, and only of that channel", async () => {
      const a: unknown[] = [];
      const b: unknown[] = [];
      const other: unknown[] = [];
      await bus.subscribe("runs", (message) => a.push(message));
      await bus.subscribe("runs", (message) => b.push(message));
      await bus.subscribe("elsewhere", (message) => other.push(message));
      await bus.publish("runs", { runId: "r1", status: "completed" });
      await vi.waitFor(() => expect(a).toHaveLength(1));
      await vi.waitFor(() => expect(b).toHaveLength(1));
      expect(a[0]).toEqual({ runId: "r1", status: "completed" });
      expect(other).toEqual([]);
    });

    it("stops delivering after unsubscribe", async () => {
      const seen: unknown[] = [];
      const unsubscribe = await bus.subscribe("c", (message) => seen.push(message));
      await bus.publish("c", 1);
      await vi.waitFor(() => expect(seen).toEqual([1]));
      await unsubscribe();
      await bus.publish("c", 2);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(seen).toEqual([1]);
    });
  });
}
