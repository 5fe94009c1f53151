import { ErrorCode, StepwiseError } from "@stepwise/core";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The wire form of every error answer: `{ error: { code, message } }` (and the request id on a 5xx). */
export interface ErrorBody {
  error: { code: string; message: string; requestId?: string };
}

/** Codes whose status is not the one their category gives. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  [ErrorCode.FunctionNotFound]: 404,
  [ErrorCode.RunNotFound]: 404,
  [ErrorCode.EventNotFound]: 404,
  [ErrorCode.StepNotFound]: 404,
  [ErrorCode.RunAlreadyEnded]: 409,
  [ErrorCode.DuplicateRun]: 409,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.InvalidSignature]: 401,
  [ErrorCode.WaitTimeout]: 408,
  [ErrorCode.InvokeTimeout]: 408,
  [ErrorCode.EventTooLarge]: 413,
  [ErrorCode.BodyTooLarge]: 413,
  [ErrorCode.UnsupportedMediaType]: 415,
};

/** Status by error category: `user` is the caller's to fix, `third-party` a provider failing, `system` ours. */
const STATUS_BY_CATEGORY: Record<StepwiseError["category"], ContentfulStatusCode> = {
  user: 400,
  "third-party": 502,
  system: 500,
};

/**
 * Maps anything thrown to an HTTP status and the wire error body, in one place (the engine's
 * retry policy reads the same category). Never a stack: an error that is not a `StepwiseError`
 * answers 500 INTERNAL with no detail, and is logged by the caller.
 */
export function toErrorResponse(error: unknown): { status: ContentfulStatusCode; body: ErrorBody } {
  if (StepwiseError.isInstance(error)) {
    const status = STATUS_BY_CODE[error.code] ?? STATUS_BY_CATEGORY[error.category];
    return { status, body: { error: { code: error.code, message: error.message } } };
  }
  return { status: 500, body: { error: { code: ErrorCode.Internal, message: "internal error" } } };
}

/** A user-category error with `code`: a 4xx. */
export function requestError(code: ErrorCode, message: string, details?: Record<string, unknown>): StepwiseError {
  return new StepwiseError({ code, category: "user", message, details });
}
