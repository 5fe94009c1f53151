import { z } from "zod";
import { ErrorCode } from "./error-code.js";
import { NonRetriableError } from "./non-retriable-error.js";
import { StepError } from "./step-error.js";
import { StepwiseError } from "./stepwise-error.js";

/** An error as stored in Postgres and sent over the wire: no class, no functions. */
export const serializedErrorSchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  stack: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  /** True when no further attempt should be made. */
  nonRetriable: z.boolean().optional(),
});
/** An error as stored and sent: see {@link serializedErrorSchema}. */
export type SerializedError = z.infer<typeof serializedErrorSchema>;

/** Turns anything thrown into a {@link SerializedError}. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const out: SerializedError = { name: error.name, message: error.message };
    if (error.stack) out.stack = error.stack;
    if (StepwiseError.isInstance(error)) {
      out.code = error.code;
      if (Object.keys(error.details).length > 0) out.details = error.details;
      if (error.category === "user") out.nonRetriable = true;
    }
    if (NonRetriableError.isInstance(error)) out.nonRetriable = true;
    // A step's last error, thrown into the handler: its code says so, wherever it is read.
    if (StepError.isInstance(error)) {
      out.code = ErrorCode.StepFailed;
      out.details = { stepId: error.stepId };
    }
    return out;
  }
  let message: string;
  try {
    message = typeof error === "string" ? error : JSON.stringify(error);
  } catch {
    message = String(error);
  }
  return { name: "Error", message: message ?? String(error) };
}

/** Parses a stored error, tolerating rows written by older versions. */
export function parseSerializedError(value: unknown): SerializedError {
  const parsed = serializedErrorSchema.safeParse(value);
  return parsed.success ? parsed.data : { name: "Error", message: String(value) };
}

/**
 * An `Error` rebuilt from a {@link SerializedError} (what `onFailure` receives): the recorded
 * name, message and stack, with the machine-readable `code`, `details` and `nonRetriable` flag
 * when the original carried them.
 */
export interface RecordedError extends Error {
  code?: string;
  details?: Record<string, unknown>;
  nonRetriable?: boolean;
}

/** Rebuilds a throwable `Error` from a {@link SerializedError}, keeping its `code` and `details`. */
export function deserializeError(error: SerializedError): RecordedError {
  const out: RecordedError = new Error(error.message);
  out.name = error.name;
  if (error.stack) out.stack = error.stack;
  if (error.code !== undefined) out.code = error.code;
  if (error.details !== undefined) out.details = error.details;
  if (error.nonRetriable !== undefined) out.nonRetriable = error.nonRetriable;
  return out;
}
