import type { Bus } from "../ports/bus.js";

/** The in-process `Bus` of the embedded mode: synchronous fan-out to local subscribers. */
export function createMemoryBus(): Bus {
  const channels = new Map<string, Set<(message: unknown) => void>>();
  return {
    async publish(channel, message) {
      for (const handler of channels.get(channel) ?? []) {
        try {
          handler(message);
        } catch {
          // One failing subscriber must not starve the others.
        }
      }
    },
    async subscribe(channel, handler) {
      const set = channels.get(channel) ?? new Set();
      set.add(handler);
      channels.set(channel, set);
      return async () => {
        set.delete(handler);
      };
    },
    async close() {
      channels.clear();
    },
  };
}
