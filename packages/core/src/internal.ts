/**
 * @module @stepwise/core/internal
 * Pieces shared with the engine and `serve()`: the executor and helpers. Not public API:
 * may change in any release. (Deliberately not tagged as internal for the compiler, whose
 * `stripInternal` would erase it from the declarations the engine compiles against.)
 */

export { BACKOFF_BASE_MS, BACKOFF_MAX_MS, backoffDelay } from "./executor/backoff.js";
export type { ExecuteFunctionOptions } from "./executor/execute-function.js";
export { executeFunction } from "./executor/execute-function.js";
export type {
  DeferredStep,
  ExecutionResult,
  ExecutorHooks,
  StepCommit,
  StepKind,
  StepProgress,
  StepRecord,
  SuspendOp,
  WaitCondition,
} from "./executor/types.js";
export { LeaseLostError, recordOf } from "./executor/types.js";
export type { CompiledExpression } from "./helpers/expression.js";
export { compileExpression, EXPRESSION_CACHE_SIZE, expressionCacheSize, matchesExpression } from "./helpers/expression.js";
export { toJsonValue } from "./helpers/json.js";
export { stepKey } from "./helpers/step-key.js";
