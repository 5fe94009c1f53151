import { ErrorCode } from "@stepwise/core";
import type { Context } from "hono";
import type { z } from "zod";
import { requestError } from "./http-status.js";

/** `application/json`, or a `+json` type such as `application/vnd.api+json`, with any parameters. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Reads a route's JSON body: only with a JSON `Content-Type` (415 otherwise: a web page can post
 * `text/plain` to any origin without a CORS preflight, so accepting it would let any page send
 * events), at most `limitBytes` (413 naming the limit, checked on `Content-Length` and again while
 * reading, for a chunked body), and parsed (400 INVALID_JSON).
 */
export async function readJson(context: Context, limitBytes: number): Promise<unknown> {
  const type = context.req.header("content-type") ?? "";
  if (!JSON_TYPE.test(type)) {
    throw requestError(
      ErrorCode.UnsupportedMediaType,
      `send the body as JSON with Content-Type: application/json${type ? ` (got ${JSON.stringify(type.slice(0, 100))})` : " (none given)"}`,
    );
  }
  const bytes = await readBody(context, limitBytes);
  if (bytes.byteLength === 0) throw requestError(ErrorCode.InvalidJson, "the request body is empty; send a JSON value");
  return parseJson(bytes);
}

/**
 * {@link readJson} for a route whose body may be left out (`POST /v1/runs/:id/cancel` with no
 * options): no `Content-Type` and no body answers `undefined`; anything else is read as JSON.
 */
export async function readOptionalJson(context: Context, limitBytes: number): Promise<unknown> {
  const length = context.req.header("content-length");
  const empty = length === "0" || (length === undefined && context.req.raw.body === null);
  if (empty && context.req.header("content-type") === undefined) return undefined;
  return readJson(context, limitBytes);
}

/**
 * A request's raw body, at most `limitBytes` (413 naming the limit, checked on `Content-Length`
 * and again while reading, for a chunked body). Webhooks verify these bytes before parsing them.
 */
export async function readBody(context: Context, limitBytes: number): Promise<Uint8Array> {
  const tooLarge = () => requestError(ErrorCode.BodyTooLarge, `the request body is over this route's limit of ${limitBytes} bytes`, { limit: limitBytes });
  const declared = context.req.header("content-length");
  const length = Number(declared);
  if (Number.isFinite(length) && length > limitBytes) throw tooLarge();
  // A declared length within the limit: the HTTP parser delivers no more than it, so the
  // server's own body read does (3× faster than reading the web stream chunk by chunk).
  if (declared !== undefined && Number.isSafeInteger(length)) return new Uint8Array(await context.req.arrayBuffer());
  const body = context.req.raw.body;
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limitBytes) {
      await reader.cancel().catch(() => undefined);
      // The rest of the body stays unread on the connection: say it closes, so that a keep-alive
      // client does not send its next request on a socket the server is about to drop.
      context.header("connection", "close");
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Checks a parsed body against its schema: 400 INVALID_REQUEST naming the field, and what the route takes (`shape`). */
export function checkBody<T>(schema: z.ZodType<T>, body: unknown, shape: string): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.length ? `.${issue.path.join(".")}` : "";
  const message =
    issue?.code === "unrecognized_keys" ? `unknown option(s) ${issue.keys.map((key) => JSON.stringify(key)).join(", ")}` : (issue?.message ?? "invalid");
  throw requestError(ErrorCode.InvalidRequest, `body${field}: ${message}; send ${shape}`);
}

// One decoder for every request: a decode without `stream` keeps no state between calls.
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes UTF-8 (invalid UTF-8 is refused, not turned into U+FFFD and stored altered) and parses JSON; 400 INVALID_JSON otherwise. */
export function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw requestError(ErrorCode.InvalidJson, "the request body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw requestError(ErrorCode.InvalidJson, "the request body is not valid JSON");
  }
}
