import { ErrorCode } from "@stepwise/core";
import { z } from "zod";
import { requestError } from "./http-status.js";
import { epochParam, idParam } from "./params.js";

/** What a page cursor holds: the last item's sort key (its time, creation or receipt, then its id). */
export interface Cursor {
  at: number;
  id: string;
}

const cursorSchema = z.tuple([epochParam, idParam]);

/** An opaque cursor for the item after which the next page starts (base64url JSON). */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.at, cursor.id])).toString("base64url");
}

/** Reads a cursor from a client; a 400 naming `cursor` when it is not one this server made. */
export function decodeCursor(text: string): Cursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw requestError(ErrorCode.InvalidRequest, "cursor: not a cursor this API answered (pass nextCursor as it came)");
  }
  const parsed = cursorSchema.safeParse(value);
  if (!parsed.success) throw requestError(ErrorCode.InvalidRequest, "cursor: not a cursor this API answered (pass nextCursor as it came)");
  const [at, id] = parsed.data;
  return { at, id };
}
