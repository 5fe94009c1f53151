/**
 * @module @stepwise/testing
 *
 * Test kit for Stepwise functions and adapters: an engine on a fresh embedded database with a
 * fake clock, one contract suite per port that every adapter must pass, a server-sent events
 * reader, and a seeded generator for replayable fault and fuzz tests.
 *
 * @example
 * import { createTestEngine } from "@stepwise/testing";
 * await using engine = await createTestEngine({ clients: [stepwise] });
 *
 * Every export of this file is public API.
 */

export type { Backend } from "./backends.js";
export { BACKENDS, createBackendEngine } from "./backends.js";
export type { TestEngine, TestEngineOptions } from "./create-test-engine.js";
export { createTestEngine } from "./create-test-engine.js";
export { FakeClock } from "./fake-clock.js";
export type { SseEvent } from "./read-sse.js";
export { collectSse, readSse } from "./read-sse.js";
export type { SeededRandom } from "./seeded-random.js";
export { seededRandom } from "./seeded-random.js";
