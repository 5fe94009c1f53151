import { describe, expect, it } from "vitest";
import { MAX_EVENT_BYTES, MAX_EVENTS_PER_SEND, parseEvents } from "./event.js";

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
  ])("rejects %#", (input, message) => {
    expect(() => parseEvents(input)).toThrow(message);
  });
});
