/**
 * @module @stepwise/engine
 *
 * The Stepwise orchestrator. It talks only to ports (`RunStore`, `Queue`, `Clock`); the CLI
 * and tests wire concrete adapters.
 *
 * @example
 * import { createEngine, createMemoryQueue, createSystemClock } from "@stepwise/engine";
 * const clock = createSystemClock();
 * const engine = createEngine({ store, queue: createMemoryQueue({ clock }), clock, clients: [stepwise] });
 * await engine.start();
 *
 * Every export of this file is public API.
 */

export type { CancelManyFilter } from "./cancel-many.js";
export type { Engine, EngineWorkload } from "./create-engine.js";
export { createEngine } from "./create-engine.js";
export { DUE_RUN_GRACE_MS, UNMATCHED_EVENT_GRACE_MS } from "./ingest/reconciler.js";
export type { LifecycleEvent, LifecycleListener } from "./lifecycle.js";
export { Lifecycle } from "./lifecycle.js";
export { createMemoryBus } from "./memory/memory-bus.js";
export { createMemoryQueue } from "./memory/memory-queue.js";
export type { MemoryRealtimeOptions } from "./memory/memory-realtime.js";
export { createMemoryRealtime } from "./memory/memory-realtime.js";
export type { EngineOptions, ResolvedEngineOptions } from "./options.js";
export { resolveEngineOptions } from "./options.js";
export type { Bus, Unsubscribe } from "./ports/bus.js";
export type { CancelTimer, Clock, SystemClockOptions } from "./ports/clock.js";
export { createSystemClock, measureClockOffset, syncClockOffset } from "./ports/clock.js";
export type { ApiKeyRecord, KeyScope, KeyStore } from "./ports/key-store.js";
export { KEY_SCOPES } from "./ports/key-store.js";
export type { ConcurrencySlot, DequeueOptions, InspectableQueue, Queue, QueueItem, RateLimitCheck, ThrottleRule } from "./ports/queue.js";
export { DEFAULT_SLOT_TTL_MS } from "./ports/queue.js";
export type { Realtime, RealtimeMessage, RealtimeSubscriber, SubscribeOptions } from "./ports/realtime.js";
export { compareMessageIds, parseMessageId, REALTIME_DEFAULTS } from "./ports/realtime.js";
export type {
  ClaimedRun,
  CronTickRun,
  FinishResult,
  IngestInput,
  IngestResult,
  ListRunsFilter,
  NewRun,
  NewWait,
  RunFlow,
  RunRecord,
  RunStore,
  StoredEvent,
  SuspendedStep,
  SuspendInput,
  WaitRecord,
} from "./ports/run-store.js";
export { SINGLETON_CANCELLED } from "./ports/run-store.js";
export { newEventId, newRunId, Router } from "./router.js";
export type { CancelResult } from "./run-actions.js";
export { RUN_CANCELLED_CHANNEL } from "./run-actions.js";
export type { RunWaiters } from "./run-waiters.js";
export { createRunWaiters, RUN_ENDED_CHANNEL, toRunInfo } from "./run-waiters.js";
export { startCronScheduler } from "./scheduler/cron-scheduler.js";
export type { Dispatcher } from "./worker/dispatcher.js";
export { createDispatcher } from "./worker/dispatcher.js";
export { FAILURE_FUNCTION_SUFFIX } from "./worker/process-run.js";
