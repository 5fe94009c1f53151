/**
 * @module @stepwise/core
 *
 * The Stepwise SDK: define durable functions made of checkpointed steps, and send events.
 *
 * @example
 * import { Stepwise } from "@stepwise/core";
 * export const stepwise = new Stepwise({ id: "my-app" });
 * export const onboarding = stepwise.createFunction(
 *   { id: "user-onboarding", retries: 3 },
 *   { event: "user.created" },
 *   async ({ event, step }) => {
 *     await step.run("send-welcome", () => mail.send(event.data.email));
 *     await step.sleep("wait-a-day", "1d");
 *   },
 * );
 * await stepwise.send({ name: "user.created", data: { email: "ada@example.com" } });
 *
 * Every export of this file is public API.
 */

export type { ApiClientOptions, ListEventsQuery, ListRunsQuery, StepwiseApi } from "./api/api-client.js";
export { createApiClient } from "./api/api-client.js";
export type { ErrorBody, EventInfo, FunctionInfo, StepInfo } from "./api/wire.js";
export {
  cancelManyResultSchema,
  cancelResultSchema,
  errorBodySchema,
  eventDetailSchema,
  eventInfoSchema,
  eventPageSchema,
  functionInfoSchema,
  runDetailSchema,
  runPageSchema,
  sendResultSchema,
  stepInfoSchema,
} from "./api/wire.js";
export type { HttpTransportOptions } from "./client/http-transport.js";
export { createHttpTransport, DEFAULT_BASE_URL } from "./client/http-transport.js";
export type { AnyStepwise, ClientInvokeOptions, SendPayload, StepwiseOptions } from "./client/stepwise.js";
export { resultOf, Stepwise } from "./client/stepwise.js";
export type { RunInfo, RunStatus, StepwiseTransport, WaitOptions } from "./client/transport.js";
export { isTerminalStatus, runInfoSchema, runStatusSchema } from "./client/transport.js";
export { ErrorCode } from "./errors/error-code.js";
export { NonRetriableError } from "./errors/non-retriable-error.js";
export { RetryAfterError } from "./errors/retry-after-error.js";
export type { RecordedError, SerializedError } from "./errors/serialize-error.js";
export { deserializeError, parseSerializedError, serializedErrorSchema, serializeError } from "./errors/serialize-error.js";
export { StepError } from "./errors/step-error.js";
export type { ErrorCategory, JsonObject, StepwiseErrorOptions } from "./errors/stepwise-error.js";
export { StepwiseError } from "./errors/stepwise-error.js";
export type { EventPayload, SendEventResult, StepwiseEvent } from "./events/event.js";
export { EVENT_DEDUPE_WINDOW_MS, eventPayloadSchema, MAX_EVENT_BYTES, MAX_EVENT_TS, MAX_EVENTS_PER_SEND, parseEvents, storableText } from "./events/event.js";
export type {
  ResolvedBatchEvents,
  ResolvedCancelOn,
  ResolvedConcurrency,
  ResolvedDebounce,
  ResolvedFlowConfig,
  ResolvedRateLimit,
  ResolvedThrottle,
} from "./functions/flow-config.js";
export {
  IDEMPOTENCY_WINDOW_MS,
  MAX_BATCH_SIZE,
  MAX_CONCURRENCY_RULES,
  MAX_PRIORITY_SECONDS,
  MIN_FLOW_PERIOD_MS,
} from "./functions/flow-config.js";
export type { AnyStepwiseFunction } from "./functions/stepwise-function.js";
export { qualifyFunctionId, StepwiseFunction, splitFunctionId } from "./functions/stepwise-function.js";
export type { CronTrigger, EventTrigger, Trigger } from "./functions/triggers.js";
export { CRON_EVENT_NAME, FAILURE_EVENT_NAME, INVOKE_EVENT_NAME, isCronTrigger, isEventTrigger } from "./functions/triggers.js";
export type {
  ConcurrencyRule,
  EventDataOf,
  EventOf,
  EventSchemas,
  FailureEvent,
  FailureHandler,
  FunctionConfig,
  Handler,
  HandlerContext,
  InvokeOptions,
  OutputOf,
  StepRunContext,
  StepTools,
  TriggerEvent,
  WaitCondition,
  WaitForAnyOptions,
  WaitForEventOptions,
} from "./functions/types.js";
export type { ResolvedFunctionConfig } from "./functions/validate-config.js";
export { DEFAULT_RETRIES, MAX_RETRIES, MAX_TRIGGERS } from "./functions/validate-config.js";
export type { Duration } from "./helpers/duration.js";
export { parseDuration } from "./helpers/duration.js";
export type { Jsonify, JsonValue, StepOutput } from "./helpers/json.js";
export type { Logger } from "./helpers/logger.js";
export { consoleLogger, silentLogger } from "./helpers/logger.js";
export type { FunctionLifecycleEvent, PublishInput, RealtimeMessageInfo, RunLifecycleEvent, RunsCreatedEvent } from "./realtime/realtime-schemas.js";
export {
  channelNameSchema,
  functionChannel,
  functionLifecycleEventSchema,
  LIFECYCLE_TOPIC,
  lifecycleEventSchema,
  publishInputSchema,
  realtimeMessageSchema,
  runChannel,
  runsCreatedSchema,
} from "./realtime/realtime-schemas.js";
export type { WebhookRequest, WebhookVerdict, WebhookVerifier } from "./webhooks/verifiers.js";
export { githubSignature, standardWebhookSignature, stripeSignature, WEBHOOK_TOLERANCE_MS } from "./webhooks/verifiers.js";
export type { WebhookInput, WebhookOptions } from "./webhooks/webhook.js";
export { StepwiseWebhook } from "./webhooks/webhook.js";
