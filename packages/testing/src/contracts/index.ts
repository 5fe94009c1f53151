/**
 * @module @stepwise/testing/contracts
 *
 * One contract suite per engine port. Every adapter (PGlite, Postgres, Redis, ...) runs the
 * suite of the port it implements, from its own test file, with a factory for fresh instances.
 *
 * @example
 * import { runStoreContract } from "@stepwise/testing/contracts";
 * runStoreContract("my store", async () => ({ store: await makeStore(), close: async () => {} }));
 *
 * Every export of this file is public API.
 */

export { busContract } from "./bus.js";
export { clockContract } from "./clock.js";
export type { QueueFactory } from "./queue.js";
export { queueContract } from "./queue.js";
export type { RealtimeFactory } from "./realtime.js";
export { realtimeContract } from "./realtime.js";
export { runStoreContract } from "./run-store.js";
export { runStoreActionsContract } from "./run-store-actions.js";
export { runStoreFlowContract } from "./run-store-flow.js";
