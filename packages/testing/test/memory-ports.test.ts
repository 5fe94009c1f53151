import { createMemoryBus, createMemoryQueue, createSystemClock } from "@stepwise/engine";
import { busContract } from "../src/contracts/bus.js";
import { clockContract } from "../src/contracts/clock.js";
import { queueContract } from "../src/contracts/queue.js";
import { FakeClock } from "../src/fake-clock.js";

queueContract("in-memory", async (clock) => {
  const queue = createMemoryQueue({ clock });
  return { queue, close: () => queue.close() };
});

clockContract("FakeClock", () => {
  const clock = new FakeClock();
  return { clock, advance: (ms) => clock.advance(ms) };
});

clockContract("system clock", () => ({
  clock: createSystemClock(),
  advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms + 5)),
}));

busContract("in-memory", async () => {
  const bus = createMemoryBus();
  return { bus, close: () => bus.close() };
});
