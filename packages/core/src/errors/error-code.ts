/**
 * Machine-readable codes carried by every {@link StepwiseError}. The wire format
 * (`{ error: { code, message } }`) and the dashboard use these strings.
 */
export const ErrorCode = {
  /** An event is malformed: no name, not an object, data not an object, bad `ts`. */
  InvalidEventPayload: "INVALID_EVENT_PAYLOAD",
  /** An event's JSON encoding is over {@link MAX_EVENT_BYTES}. */
  EventTooLarge: "EVENT_TOO_LARGE",
  /** A function configuration is invalid; the message names the option. */
  InvalidFunctionConfig: "INVALID_FUNCTION_CONFIG",
  /** No function with that id is registered. */
  FunctionNotFound: "FUNCTION_NOT_FOUND",
  /** No run with that id exists. */
  RunNotFound: "RUN_NOT_FOUND",
  /** A step's (or a handler's) output cannot be stored as JSON. */
  OutputNotSerializable: "OUTPUT_NOT_SERIALIZABLE",
  /** A step failed after its last attempt (see {@link StepError}). */
  StepFailed: "STEP_FAILED",
  /** The run failed: its handler threw after the last attempt. */
  RunFailed: "RUN_FAILED",
  /** No stored event has this id. */
  EventNotFound: "EVENT_NOT_FOUND",
  /** The run has no step with this key or id. */
  StepNotFound: "STEP_NOT_FOUND",
  /** The run had already completed or failed: it cannot be cancelled. */
  RunAlreadyEnded: "RUN_ALREADY_ENDED",
  /** The run was cancelled. */
  RunCancelled: "RUN_CANCELLED",
  /** An event was over its function's `rateLimit`: the run was skipped. */
  RateLimited: "RATE_LIMITED",
  /** The run was skipped by flow control (`rateLimit`, `singleton: skip`); its error says which. */
  RunSkipped: "RUN_SKIPPED",
  /** No run was started: a run of the function holds the same idempotency key (within 24 h). */
  DuplicateRun: "DUPLICATE_RUN",
  /** `step.invoke` or `stepwise.invoke` did not get a result within its timeout. */
  InvokeTimeout: "INVOKE_TIMEOUT",
  /** Waiting for a run's result took longer than the caller allowed. */
  WaitTimeout: "WAIT_TIMEOUT",
  /** The caller stopped waiting for a run's result (its signal aborted, e.g. an HTTP client left). */
  WaitAborted: "WAIT_ABORTED",
  /** An expression (CEL) does not parse or does not evaluate. */
  InvalidExpression: "INVALID_EXPRESSION",
  /** A duration string such as `"7d"` cannot be parsed. */
  InvalidDuration: "INVALID_DURATION",
  /** A step tool was called with bad arguments (missing id, bad options). */
  InvalidStepOptions: "INVALID_STEP_OPTIONS",
  /** The request body is not JSON. */
  InvalidJson: "INVALID_JSON",
  /** A request's path, query or body is malformed (the message names the part). */
  InvalidRequest: "INVALID_REQUEST",
  /** A request body is not `application/json` where JSON is read. */
  UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  /** A request body is over the route's limit (the message names it). */
  BodyTooLarge: "BODY_TOO_LARGE",
  /** No route answers this method and path. */
  NotFound: "NOT_FOUND",
  /** The request carries no valid key (missing, malformed, unknown or revoked). */
  Unauthorized: "UNAUTHORIZED",
  /** The request's key (or, in dev, its origin) may not do this. */
  Forbidden: "FORBIDDEN",
  /** A webhook request's signature is missing, stale or does not match its body (the message says which). */
  InvalidSignature: "INVALID_SIGNATURE",
  /** An error thrown by user code, carried as is. */
  UserError: "USER_ERROR",
  /** The client cannot reach a Stepwise server. */
  TransportError: "TRANSPORT_ERROR",
  /** Something went wrong inside Stepwise. */
  Internal: "INTERNAL",
} as const;
/** One of the {@link ErrorCode} strings. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
