import { createHmac } from "node:crypto";
import { MAX_EVENT_BYTES } from "@stepwise/core";
import type { ApiKeyRecord, KeyStore } from "@stepwise/engine";
import type { SeededRandom } from "@stepwise/testing";

// The malformed requests of fuzz.test.ts: a seeded generator per kind, each with what it expects.

// Limits lowered from the defaults (16 MiB, 1 MiB), so that "over the limit" costs a megabyte a
// request instead of sixteen; the per-event limit (512 KiB) stays reachable under the body limit.
export const EVENT_BODY_BYTES = 1024 * 1024;
export const MAX_BODY_BYTES = 64 * 1024;
export const WEBHOOK_SECRET = "fuzz-webhook-secret";

export const DEEP = 10_000;

export type Rng = SeededRandom;

/** A 4xx with this status (and code, where given) and the error shape; or a 200 whose events are stored as sent and each start a run. */
export type Expectation = { status: number; code?: string } | { accepted: true };

export interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent with Transfer-Encoding: chunked, in this many 64 KiB chunks (no Content-Length for the server to refuse on). */
  chunks?: number;
  expect: Expectation;
}

/** The ids and keys the requests aim at: real ones, so a malformed body meets a run that exists. */
export interface Targets {
  eventKey: string;
  adminKey: string;
  readKey: string;
  /** Runs asleep for a day (the fake clock never gets there): a valid cancel would end them, so none is sent. */
  liveRunIds: string[];
  endedRunIds: string[];
}

export const JSON_TYPE = { "content-type": "application/json" };
export const text = (value: string) => Buffer.from(value, "utf8");
export const json = (value: unknown) => text(JSON.stringify(value));
export const deepArrays = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
export const deepObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

/** Every strict prefix of a JSON object or array is invalid JSON (the closing bracket is its last byte). */
export function truncated(rng: Rng, valid: Buffer): Buffer {
  return valid.subarray(0, rng.int(valid.length));
}

/** Byte sequences a fatal UTF-8 decoder refuses: a stray byte, an overlong NUL, a CESU-8 surrogate, a cut-off sequence, an out-of-range lead. */
export const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xf4, 0x90, 0x80, 0x80]];

export function invalidUtf8(rng: Rng, valid: Buffer): Buffer {
  const at = 1 + rng.int(valid.length - 1);
  return Buffer.concat([valid.subarray(0, at), Buffer.from(rng.pick(INVALID_UTF8)), valid.subarray(at)]);
}

/** JSON numbers that parse to ±Infinity. */
export const OVERFLOWING = ["1e999", "-1e400", `1${"0".repeat(400)}`, "123456789e999999"];
/** JSON escapes that decode to what Postgres cannot store: NUL and lone surrogates. */
export const UNSTORABLE = ["\\u0000", "\\ud800", "\\udfff", "a\\udbffb", "x\\u0000y"];
export const WRONG_TYPES = [
  undefined,
  "text/plain",
  "text/plain;charset=UTF-8",
  "text/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=fuzz",
  "application/xml",
  "application/jsonx",
  "json",
  "application/octet-stream",
];

export function withType(type: string | undefined): Record<string, string> {
  return type === undefined ? {} : { "content-type": type };
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

export const oversizedBodies = new Map<number, Buffer>();
/**
 * A body of `bytes` bytes that is JSON but for its length. Made once per size: the client runs in
 * the server's process, and a fresh megabyte per request would be the client's RSS, not the server's.
 */
export function oversized(bytes: number): Buffer {
  const prefix = '{"name":"fuzz/event","data":{"blob":"';
  let body = oversizedBodies.get(bytes);
  if (!body) {
    body = text(`${prefix}${"x".repeat(Math.max(0, bytes - prefix.length - 3))}"}}`);
    oversizedBodies.set(bytes, body);
  }
  return body;
}

/** Keys in memory: the key store is not what this file tests, and a second database in the process would blur its RSS. */
export function memoryKeyStore(): KeyStore {
  const keys = new Map<string, ApiKeyRecord & { secretHash: Uint8Array }>();
  return {
    async createKey({ id, name, scope, secretHash, now }) {
      keys.set(id, { id, name, scope, secretHash, createdAt: now });
    },
    async findKey(id) {
      return keys.get(id) ?? null;
    },
    async listKeys() {
      return [...keys.values()].map(({ secretHash: _secretHash, ...record }) => record);
    },
    async revokeKey({ id, now }) {
      const key = keys.get(id);
      if (!key || key.revokedAt !== undefined) return false;
      key.revokedAt = now;
      return true;
    },
    async countActiveKeys() {
      return [...keys.values()].filter((key) => key.revokedAt === undefined).length;
    },
  };
}

/** Path ids the server must refuse (control characters, too long) → 400, and ids that are well formed but name nothing → 404. */
export const BAD_IDS = ["%00", "run_%00", "%01%1b[2J", "x".repeat(300), "%7f", "a%0Ab"];
export const UNKNOWN_IDS = ["run_nope", "%E2%80%AE", "..%2f..", "%C0%80", "%ED%A0%80", "%F0%9F%98%80", "' OR 1=1 --", "%25", "evt_01AAAAAAAAAAAAAAAAAAAAAAAA"];

/** Query strings the list routes refuse: unknown parameters (strict), values out of range, and cursors this API never answered. */
export function badListQuery(rng: Rng, route: "runs" | "events"): string {
  const unknown = ["__proto__=1", "constructor=1", "prototype=x", "statuss=completed", "limit[]=1", "functionId=receiver", "page=2", "offset=10", "toString=1"];
  const values =
    route === "runs"
      ? ["status=bogus", "status=%00", "function=%00", `function=${"f".repeat(300)}`, "event=%01", "status=COMPLETED"]
      : ["name=%00", `name=${"n".repeat(300)}`, "name=%1b"];
  const common = [
    "limit=0",
    "limit=501",
    "limit=abc",
    "limit=1e999",
    "limit=-1",
    "limit=1.5",
    `limit=${"9".repeat(400)}`,
    "since=abc",
    "since=1e999",
    // Date.parse reads these as dates in 2001: "epoch milliseconds or an ISO 8601 date" they are not.
    "since=-1",
    "since=%2B1",
    "until=foo%202",
    "since=%201",
    "until=12%20",
    "until=99999999999999999",
    "since=275760-09-13",
    "until=%00",
  ];
  const cursor = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
  const cursors = [
    "!!!!",
    "%00",
    "x".repeat(601),
    cursor("not json"),
    cursor({ at: 0, id: "x" }),
    cursor([0]),
    cursor([-1, "run_x"]),
    cursor([1.5, "run_x"]),
    cursor([8640000000000001, "run_x"]),
    cursor([0, ""]),
    cursor([0, "run_\u0000"]),
    cursor([0, "x".repeat(300)]),
    cursor(["0", "run_x"]),
    cursor([0, 1]),
    cursor(null),
    Buffer.from([0xff, 0xfe, 0x00]).toString("base64url"),
  ];
  switch (rng.int(3)) {
    case 0:
      return rng.pick(unknown);
    case 1:
      return rng.pick([...values, ...common]);
    default:
      return `cursor=${rng.pick(cursors)}`;
  }
}

export const oversizedBatch = json(Array.from({ length: 5001 }, () => ({ name: "fuzz/event" })));

/** Generators of one malformed request each, by kind; every kind states what it expects. */
export function kinds(targets: Targets): Array<(rng: Rng) => FuzzRequest> {
  const eventPath = () => `/e/${targets.eventKey}`;
  const admin = bearer(targets.adminKey);
  const anyRun = (rng: Rng) => rng.pick([...targets.liveRunIds, ...targets.endedRunIds]);
  const validEvent = (rng: Rng) => json({ name: "fuzz/event", data: { n: rng.int(1000), text: "héllo ✓ 😀" } });
  const event = (kind: string, body: Buffer, expect: Expectation, headers: Record<string, string> = JSON_TYPE): FuzzRequest => ({
    kind: `event/${kind}`,
    method: "POST",
    path: eventPath(),
    headers,
    body,
    expect,
  });
  const invalidEvent = { status: 400, code: "INVALID_EVENT_PAYLOAD" };
  const invalidJson = { status: 400, code: "INVALID_JSON" };
  const invalidRequest = { status: 400, code: "INVALID_REQUEST" };
  const tooLarge = { status: 413, code: "BODY_TOO_LARGE" };
  const wrongType = { status: 415, code: "UNSUPPORTED_MEDIA_TYPE" };

  /** POST routes of the REST API that read a JSON body: a path, and a valid body to corrupt. */
  const bodyRoutes = (rng: Rng) =>
    rng.pick([
      { route: "invoke", path: `/v1/functions/${rng.pick(["receiver", "napper"])}/invoke`, valid: json({ data: { n: 1 }, timeoutMs: 1000 }) },
      { route: "cancel", path: `/v1/runs/${anyRun(rng)}/cancel`, valid: json({ reason: "fuzz" }) },
      { route: "rerun", path: `/v1/runs/${anyRun(rng)}/rerun`, valid: json({ fromStep: "count" }) },
    ]);
  const rest = (kind: string, method: string, path: string, expect: Expectation, body?: Buffer, headers: Record<string, string> = JSON_TYPE): FuzzRequest => ({
    kind: `rest/${kind}`,
    method,
    path,
    headers: { ...admin, ...(body === undefined ? {} : headers) },
    ...(body !== undefined && { body }),
    expect,
  });
  const signed = (body: Buffer, extra: Record<string, string> = {}) => ({
    "x-hub-signature-256": `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`,
    "x-github-delivery": `d-${createHmac("sha1", "delivery").update(body).digest("hex").slice(0, 12)}`,
    ...extra,
  });
  const webhook = (kind: string, body: Buffer, expect: Expectation, headers: Record<string, string>, id = "github"): FuzzRequest => ({
    kind: `webhook/${kind}`,
    method: "POST",
    path: `/webhooks/${id}`,
    headers,
    body,
    expect,
  });

  return [
    // ---- Event API: POST /e/:eventKey
    (rng) => event("truncated-json", truncated(rng, validEvent(rng)), invalidJson),
    (rng) => event("invalid-utf8", invalidUtf8(rng, validEvent(rng)), invalidJson),
    (rng) => {
      const depth = DEEP + rng.int(400);
      const body = rng.pick([
        `{"name":"fuzz/event","data":{"a":${deepArrays(depth)}}}`,
        `{"name":"fuzz/event","data":${deepObjects(depth)}}`,
        deepArrays(depth),
        `[{"name":"fuzz/event"},{"name":"fuzz/event","data":{"list":${deepArrays(depth)}}}]`,
      ]);
      return event("nesting-10000", text(body), invalidEvent);
    },
    (rng) => {
      const body = rng.pick([
        '{"name":"fuzz/event","data":{"__proto__":{"polluted":true}}}',
        '{"name":"fuzz/event","data":{"a":{"b":{"__proto__":1}}}}',
        '{"name":"fuzz/event","data":{"list":[{"__proto__":[]}]}}',
        '{"name":"fuzz/event","__proto__":{"name":"x"}}',
        '[{"name":"fuzz/event"},{"name":"fuzz/event","data":{"__proto__":null}}]',
        '{"__proto__":{"name":"fuzz/event"}}',
      ]);
      return event("proto-key", text(body), invalidEvent);
    },
    // `constructor` and friends are ordinary keys in data: stored as sent (only `__proto__` is refused).
    (rng) => {
      const key = rng.pick(["constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"]);
      const value = rng.pick<unknown>([{ prototype: { polluted: true } }, "kept", [1, 2], null, 7]);
      const data = rng.int(2) ? { [key]: value } : { nested: { [key]: value }, n: rng.int(100) };
      return event("constructor-key", json({ name: "fuzz/event", data }), { accepted: true });
    },
    (rng) => event("constructor-top-level", text(`{"name":"fuzz/event","${rng.pick(["constructor", "prototype"])}":{}}`), invalidEvent),
    (rng) => {
      const number = rng.pick(OVERFLOWING);
      const body = rng.pick([
        `{"name":"fuzz/event","data":{"n":${number}}}`,
        `{"name":"fuzz/event","data":{"list":[1,${number}]}}`,
        `{"name":"fuzz/event","ts":${number}}`,
        `{"name":"fuzz/event","ts":8640000000000001}`,
        `{"name":"fuzz/event","ts":-1}`,
      ]);
      return event("huge-number", text(body), invalidEvent);
    },
    // Finite however large: stored as JSON has it (a double), and the run starts.
    (rng) =>
      event(
        "huge-finite-number",
        text(
          `{"name":"fuzz/event","data":{"n":${rng.pick(["123456789012345678901234567890", "1.7976931348623157e308", "5e-324", "-1e300", "9007199254740993"])}}}`,
        ),
        { accepted: true },
      ),
    (rng) => {
      const bad = rng.pick(UNSTORABLE);
      const body = rng.pick([
        `{"name":"fuzz/event${bad}"}`,
        `{"name":"fuzz/event","id":"id-${bad}"}`,
        `{"name":"fuzz/event","data":{"note":"${bad}"}}`,
        `{"name":"fuzz/event","data":{"${bad}":1}}`,
        `{"name":"fuzz/event","data":{"list":[1,{"inner":["${bad}"]}]}}`,
      ]);
      return event("unstorable-text", text(body), invalidEvent);
    },
    (rng) => event("over-limit", oversized(EVENT_BODY_BYTES + rng.pick([1, 4096, 65536])), tooLarge),
    (rng) => ({ ...event("over-limit-chunked", Buffer.alloc(0), tooLarge), chunks: Math.ceil(EVENT_BODY_BYTES / 65536) + 1 + rng.int(16) }),
    (rng) => event("event-too-large", oversized(MAX_EVENT_BYTES + rng.pick([100, 1000])), { status: 413, code: "EVENT_TOO_LARGE" }),
    (rng) => event("wrong-content-type", validEvent(rng), wrongType, withType(rng.pick(WRONG_TYPES))),
    (rng) => {
      const body = rng.pick([
        "null",
        "42",
        '"fuzz/event"',
        "true",
        "[]",
        "[null]",
        "{}",
        '{"name":5}',
        '{"name":""}',
        `{"name":"${"x".repeat(300)}"}`,
        '{"data":{}}',
        '{"name":"fuzz/event","data":[1]}',
        '{"name":"fuzz/event","data":"x"}',
        '{"name":"fuzz/event","data":null}',
        '{"name":"fuzz/event","id":7}',
        '{"name":"fuzz/event","id":""}',
        '{"name":"fuzz/event","extra":true}',
        '{"name":"fuzz/event","ts":"2024-01-01"}',
        '{"name":"fuzz/event","ts":1.5}',
      ]);
      return event("wrong-shape", text(body), invalidEvent);
    },
    () => event("batch-over-5000", oversizedBatch, invalidEvent),
    (rng) => {
      const path = rng.pick(["/e/dev", "/e/sw_event_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/e/%00", `/e/${"k".repeat(2000)}`]);
      // A path key that is no key, or a read key (which may not send events).
      if (rng.int(4) === 0) return { ...event("bad-key", validEvent(rng), { status: 403, code: "FORBIDDEN" }), path: `/e/${targets.readKey}` };
      return { ...event("bad-key", validEvent(rng), { status: 401, code: "UNAUTHORIZED" }), path };
    },

    // ---- REST API bodies: invoke, cancel, rerun
    (rng) => {
      const { route, path, valid } = bodyRoutes(rng);
      return rest(`${route}/truncated-json`, "POST", path, invalidJson, truncated(rng, valid));
    },
    (rng) => {
      const { route, path, valid } = bodyRoutes(rng);
      return rest(`${route}/invalid-utf8`, "POST", path, invalidJson, invalidUtf8(rng, valid));
    },
    (rng) => {
      const { route, path, valid } = bodyRoutes(rng);
      return rest(`${route}/wrong-content-type`, "POST", path, wrongType, valid, withType(rng.pick(WRONG_TYPES)));
    },
    (rng) => {
      const { route, path } = bodyRoutes(rng);
      return rest(`${route}/over-limit`, "POST", path, tooLarge, oversized(MAX_BODY_BYTES + rng.pick([1, 4096])));
    },
    (rng) => {
      const { route, path } = bodyRoutes(rng);
      return { ...rest(`${route}/over-limit-chunked`, "POST", path, tooLarge, Buffer.alloc(0)), chunks: 2 + rng.int(4) };
    },
    (rng) => {
      const { route, path } = bodyRoutes(rng);
      // Bodies are strict objects: a deep body is an unknown option; a deep value where a string or object goes is refused by type.
      const depth = DEEP + rng.int(400);
      const body = rng.pick([deepArrays(depth), deepObjects(depth), `{"__proto__":${deepObjects(depth)}}`]);
      return rest(`${route}/nesting-10000`, "POST", path, invalidRequest, text(body));
    },
    (rng) => {
      const { route, path } = bodyRoutes(rng);
      // Not `null`: cancel and rerun read a `null` body as no body, which would cancel a live run.
      const body = rng.pick(['{"__proto__":{"timeoutMs":1}}', '{"constructor":{}}', '{"prototype":1}', '{"unknown":1}', "[]", "7", '"x"', "true"]);
      return rest(`${route}/proto-or-unknown-key`, "POST", path, invalidRequest, text(body));
    },
    (rng) => {
      const function_ = rng.pick(["receiver", "napper"]);
      const body = rng.pick([
        `{"data":{"a":${deepArrays(DEEP + rng.int(400))}}}`,
        `{"data":${deepObjects(DEEP)}}`,
        '{"data":{"__proto__":{"x":1}}}',
        '{"data":{"a":{"__proto__":1}}}',
        `{"data":{"n":${rng.pick(OVERFLOWING)}}}`,
        `{"data":{"note":"${rng.pick(UNSTORABLE)}"}}`,
        `{"data":{"${rng.pick(UNSTORABLE)}":1}}`,
      ]);
      return rest("invoke/invalid-data", "POST", `/v1/functions/${function_}/invoke`, invalidEvent, text(body));
    },
    (rng) => {
      const body = rng.pick([
        `{"timeoutMs":${rng.pick(OVERFLOWING)}}`,
        '{"timeoutMs":0}',
        '{"timeoutMs":-5}',
        '{"timeoutMs":1.5}',
        '{"timeoutMs":"10"}',
        '{"timeoutMs":300001}',
        '{"timeoutMs":1e12}',
        '{"data":[1]}',
        '{"data":"x"}',
        '{"data":null}',
      ]);
      return rest("invoke/bad-option", "POST", `/v1/functions/${rng.pick(["receiver", "napper"])}/invoke`, invalidRequest, text(body));
    },
    (rng) =>
      rest(
        "invoke/unknown-function",
        "POST",
        `/v1/functions/${rng.pick(UNKNOWN_IDS)}/invoke`,
        { status: 404, code: "FUNCTION_NOT_FOUND" },
        text('{"data":{}}'),
      ),
    (rng) => {
      const body = rng.pick([
        '{"reason":""}',
        `{"reason":"${"r".repeat(1001)}"}`,
        '{"reason":5}',
        '{"reason":null}',
        '{"reason":["x"]}',
        `{"reason":${rng.pick(OVERFLOWING)}}`,
      ]);
      return rest("cancel/bad-reason", "POST", `/v1/runs/${anyRun(rng)}/cancel`, invalidRequest, text(body));
    },
    // A reason Postgres cannot store, for a run that has not ended (an ended one answers 409 before
    // the reason is stored): refused as the caller's mistake, like every other unstorable text.
    (rng) =>
      rest(
        "cancel/unstorable-reason",
        "POST",
        `/v1/runs/${rng.pick(targets.liveRunIds)}/cancel`,
        { status: 400 },
        text(`{"reason":"why ${rng.pick(UNSTORABLE)}"}`),
      ),
    // `null` is a body, and not the object (or no body) these routes take. Aimed at ended runs only:
    // read as no body, it would cancel a live run.
    (rng) => {
      const route = rng.pick(["cancel", "rerun"]);
      return rest(`${route}/null-body`, "POST", `/v1/runs/${rng.pick(targets.endedRunIds)}/${route}`, invalidRequest, text("null"));
    },
    (rng) => {
      const body = rng.pick([
        '{"fromStep":""}',
        '{"fromStep":"\\u0000"}',
        '{"fromStep":"a\\u001bb"}',
        '{"fromStep":5}',
        `{"fromStep":"${"s".repeat(300)}"}`,
        '{"fromStep":null}',
      ]);
      return rest("rerun/bad-from-step", "POST", `/v1/runs/${anyRun(rng)}/rerun`, invalidRequest, text(body));
    },
    (rng) =>
      rest(
        "rerun/unknown-step",
        "POST",
        `/v1/runs/${anyRun(rng)}/rerun`,
        { status: 404, code: "STEP_NOT_FOUND" },
        json({ fromStep: rng.pick(["nope", "count-2", "😀"]) }),
      ),
    (rng) => {
      const route = rng.pick(["cancel", "rerun"]);
      return rest(`${route}/bad-run-id`, "POST", `/v1/runs/${rng.pick(BAD_IDS)}/${route}`, invalidRequest, text("{}"));
    },
    (rng) => {
      const route = rng.pick(["cancel", "rerun"]);
      return rest(`${route}/unknown-run`, "POST", `/v1/runs/${rng.pick(UNKNOWN_IDS)}/${route}`, { status: 404, code: "RUN_NOT_FOUND" }, text("{}"));
    },

    // ---- REST API reads: lists, one run, one event, waits
    (rng) => rest("list-runs/bad-query", "GET", `/v1/runs?${badListQuery(rng, "runs")}`, invalidRequest),
    (rng) => rest("list-events/bad-query", "GET", `/v1/events?${badListQuery(rng, "events")}`, invalidRequest),
    (rng) => {
      const path = rng.pick(["/v1/runs/", "/v1/events/", "/v1/events/:id/runs", "/v1/runs/:id/wait", "/v1/functions/"]);
      const id = rng.pick(BAD_IDS);
      return rest("read/bad-id", "GET", path.includes(":id") ? path.replace(":id", id) : `${path}${id}`, invalidRequest);
    },
    (rng) => rest("get-run/unknown", "GET", `/v1/runs/${rng.pick(UNKNOWN_IDS)}`, { status: 404, code: "RUN_NOT_FOUND" }),
    (rng) => rest("get-event/unknown", "GET", `/v1/events/${rng.pick(UNKNOWN_IDS)}`, { status: 404, code: "EVENT_NOT_FOUND" }),
    (rng) => {
      const query = rng.pick([
        "timeout=abc",
        "timeout=0",
        "timeout=-1",
        "timeout=1.5",
        "timeout=1e999",
        "timeout=300001",
        `timeout=${"9".repeat(400)}`,
        "timeout=5&extra=1",
        "__proto__=1",
        "constructor=1",
        "timeoutMs=5",
      ]);
      return rest("wait/bad-query", "GET", `/v1/runs/${anyRun(rng)}/wait?${query}`, invalidRequest);
    },
    (rng) => {
      const path = rng.pick(["/v1/events/%00/replay", `/v1/events/${"e".repeat(300)}/replay`]);
      if (rng.int(2)) return rest("replay/unknown-event", "POST", `/v1/events/${rng.pick(UNKNOWN_IDS)}/replay`, { status: 404, code: "EVENT_NOT_FOUND" });
      return rest("replay/bad-id", "POST", path, invalidRequest);
    },

    // ---- Keys and routes
    (rng) => {
      const path = rng.pick(["/v1/runs", "/v1/events", `/v1/runs/${anyRun(rng)}`, "/v1/functions"]);
      const headers = rng.pick<Record<string, string>>([
        {},
        { authorization: "Bearer" },
        { authorization: "Bearer sw_admin_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
        { authorization: `Bearer ${"k".repeat(4000)}` },
        { authorization: `Basic ${Buffer.from("admin:admin").toString("base64")}` },
        { authorization: `Bearer ${targets.adminKey}x` },
      ]);
      return { kind: "auth/no-valid-key", method: "GET", path, headers, expect: { status: 401, code: "UNAUTHORIZED" } };
    },
    (rng) => {
      // Scopes: an event key cannot read, a read key cannot invoke, cancel or rerun.
      if (rng.int(2))
        return { kind: "auth/weak-key", method: "GET", path: "/v1/runs", headers: bearer(targets.eventKey), expect: { status: 403, code: "FORBIDDEN" } };
      const path = rng.pick(["/v1/functions/receiver/invoke", `/v1/runs/${rng.pick(targets.liveRunIds)}/cancel`, `/v1/runs/${anyRun(rng)}/rerun`]);
      return {
        kind: "auth/weak-key",
        method: "POST",
        path,
        headers: { ...bearer(targets.readKey), ...JSON_TYPE },
        body: text("{}"),
        expect: { status: 403, code: "FORBIDDEN" },
      };
    },
    (rng) => {
      const [method, path] = rng.pick([
        ["PUT", "/e/dev"],
        ["GET", `/e/${targets.eventKey}`],
        ["DELETE", `/v1/runs/${anyRun(rng)}`],
        ["PATCH", "/v1/runs"],
        ["GET", "/v1/nope"],
        ["POST", "/v1/runs"],
        ["GET", `/v1/runs/${anyRun(rng)}/steps/x`],
        ["POST", "/v1/functions/receiver"],
      ] as const);
      return {
        kind: "route/unknown",
        method,
        path,
        headers: { ...admin, ...JSON_TYPE },
        ...(method !== "GET" && { body: text("{}") }),
        expect: { status: 404, code: "NOT_FOUND" },
      };
    },

    // ---- Webhooks: POST /webhooks/:id (the signature is the credential)
    (rng) => {
      const body = json({ ref: "refs/heads/main" });
      const headers = rng.pick<Record<string, string>>([
        {},
        { "x-hub-signature-256": "" },
        { "x-hub-signature-256": "sha256=zz" },
        { "x-hub-signature-256": `sha256=${"0".repeat(64)}` },
        { "x-hub-signature-256": signed(text("other"))["x-hub-signature-256"] },
      ]);
      return webhook("bad-signature", body, { status: 401, code: "INVALID_SIGNATURE" }, headers);
    },
    (rng) => webhook("unknown", json({}), { status: 404, code: "NOT_FOUND" }, {}, rng.pick(["nope", "%00", "x".repeat(300), "GitHub"])),
    (rng) => {
      const valid = json({ ref: "refs/heads/main", commits: [{ id: "a" }] });
      const body = rng.pick([() => truncated(rng, valid), () => invalidUtf8(rng, valid), () => Buffer.alloc(0)])();
      return webhook("malformed-json", body, invalidJson, signed(body));
    },
    (rng) => {
      // Verified and parsed; the transform makes it the event's data, which the engine refuses.
      const body = text(
        rng.pick([
          deepObjects(DEEP + rng.int(400)),
          `{"list":${deepArrays(DEEP)}}`,
          '{"__proto__":{"polluted":true}}',
          '{"note":"\\u0000"}',
          `{"n":${rng.pick(OVERFLOWING)}}`,
          "[1,2]",
          "null",
          "42",
        ]),
      );
      return webhook("invalid-event", body, invalidEvent, signed(body));
    },
    () => {
      const body = json({ ref: "refs/heads/main" });
      return webhook("delivery-id-too-long", body, invalidEvent, signed(body, { "x-github-delivery": "d".repeat(400) }));
    },
    (rng) => {
      const body = oversized(MAX_BODY_BYTES + rng.pick([1, 4096]));
      return webhook("over-limit", body, tooLarge, signed(body));
    },
  ];
}
