/**
 * @module @stepwise/testing
 *
 * Test kit for Stepwise functions and adapters: an engine on a fresh embedded database with a
 * fake clock, and one contract suite per port that every adapter must pass.
 *
 * @example
 * import { createTestEngine } from "@stepwise/testing";
 * await using engine = await createTestEngine({ clients: [stepwise] });
 *
 * Every export of this file is public API.
 */

export type { TestEngine, TestEngineOptions } from "./create-test-engine.js";
export { createTestEngine } from "./create-test-engine.js";
export { FakeClock } from "./fake-clock.js";
