import { ErrorCode, MAX_EVENT_TS } from "@stepwise/core";
import type { Context } from "hono";
import { z } from "zod";
import { requestError } from "./http-status.js";

/**
 * Ids and names in paths, queries and cursors (runs, events, functions): Postgres `text` cannot
 * hold NUL, so one with a control character (`/v1/runs/%00`) is answered 400 here instead of
 * failing in the store.
 */
export const idParam = z
  .string()
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters");

/** A time in a query or cursor: epoch milliseconds, 0 up to the latest event time Postgres and `Date` both hold. */
export const epochParam = z.number().int().min(0).max(MAX_EVENT_TS, `must be at most ${MAX_EVENT_TS} (the end of the year 9999)`);

/** A time in a query: epoch milliseconds or an ISO 8601 date (optional). */
export const timeQuery = z
  .string()
  .transform((text, context) => {
    // Digits are epoch ms; anything else must look like an ISO date: Date.parse alone reads
    // "-1", " 1" or "foo 2" as dates in 2001.
    const value = /^\d+$/.test(text) ? Number(text) : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
    if (!epochParam.safeParse(value).success) {
      context.addIssue({ code: "custom", message: "must be epoch milliseconds or an ISO 8601 date, e.g. 2030-01-01T00:00:00Z" });
      return z.NEVER;
    }
    return value;
  })
  .optional();

/** Items per page when `limit` is not given. */
export const DEFAULT_PAGE = 50;
/** Most items per page. */
export const MAX_PAGE = 500;

/** A 400 for a query that failed its schema: an unknown parameter is named with the ones the route takes. */
export function queryError(error: z.ZodError, known: string) {
  const issue = error.issues[0];
  if (issue?.code === "unrecognized_keys")
    return requestError(ErrorCode.InvalidRequest, `${issue.keys.map((key) => JSON.stringify(key)).join(", ")}: not a query parameter here; use ${known}`);
  return requestError(ErrorCode.InvalidRequest, `${issue?.path.join(".") || "query"}: ${issue?.message ?? "invalid"}`);
}

/** A path parameter, validated (see {@link idParam}). */
export function pathId(context: Context, what: string): string {
  const parsed = idParam.safeParse(context.req.param("id"));
  if (!parsed.success) throw requestError(ErrorCode.InvalidRequest, `${what}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}
