import { describe, expect, it } from "vitest";
import { MAX_EVENT_BYTES, MAX_EVENT_TS, MAX_EVENTS_PER_SEND, parseEvents } from "./event.js";

describe("parseEvents", () => {
  it("accepts one event or a list", () => {
    expect(parseEvents({ name: "a" })).toEqual([{ name: "a" }]);
    expect(parseEvents([{ name: "a", data: { x: 1 }, id: "k", ts: 5 }])).toEqual([{ name: "a", data: { x: 1 }, id: "k", ts: 5 }]);
  });

  it.each([
    [{}, 'event.name: an event needs a name, e.g. { name: "user.created" }'],
    [{ name: "" }, "event.name: name must be a non-empty string"],
    [{ name: "a", data: [1] }, "event.data:"],
    [[], "no events given"],
    [Array.from({ length: MAX_EVENTS_PER_SEND + 1 }, () => ({ name: "a" })), "at most 5000"],
    [{ name: "a", data: { blob: "x".repeat(MAX_EVENT_BYTES) } }, "the limit is 524288 bytes"],
    // What Postgres cannot store, refused here with the field named (a 500 from the store before).
    [{ name: "a\u0000b" }, "event.name: must not contain a NUL character"],
    [{ name: "a", id: "k\uD800" }, "event.id: must not contain a lone UTF-16 surrogate"],
    [{ name: "a", data: { note: "x\u0000" } }, "event.data.note is a NUL character"],
    [{ name: "a", data: { ["k\uDFFF"]: 1 } }, 'event.data["k\\udfff"] is a key holding a lone UTF-16 surrogate'],
    [[{ name: "ok" }, { name: "a", data: { list: [1, "\uD83D"] } }], "events[1].data.list[1] is a lone UTF-16 surrogate"],
    [{ name: "a", ts: 8640000000000001 }, "ts must be epoch milliseconds up to"],
    [{ name: "a", ts: Number.MAX_SAFE_INTEGER }, "ts must be epoch milliseconds up to"],
    [{ name: "a", ts: 1.5 }, "ts must be whole epoch milliseconds"],
    [JSON.parse('{"name":"a","data":{"__proto__":{"admin":true}}}'), 'event.data.__proto__ is the key "__proto__"'],
    [{ name: "a", user: { id: 1 } }, 'event: "user" is not an event field'],
    [{ name: "a", data: { total: 10n } }, "event.data.total is a bigint"],
  ])("rejects %#", (input, message) => {
    expect(() => parseEvents(input)).toThrow(message);
  });

  it("refuses data nested past the depth limit with a message, however deep, instead of overflowing the stack", () => {
    let data: Record<string, unknown> = {};
    for (let level = 0; level < 5000; level++) data = { data };
    expect(() => parseEvents({ name: "deep", data })).toThrow("nested deeper than 512 levels");
  });

  it("accepts the latest ts and keeps emoji and cyclic-looking but fine data", () => {
    expect(parseEvents({ name: "a", ts: MAX_EVENT_TS, data: { face: "😀", shared: [1], again: [1] } })).toHaveLength(1);
  });
});
