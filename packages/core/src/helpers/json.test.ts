import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import { checkJson, MAX_JSON_DEPTH, toJsonValue } from "./json.js";

describe("toJsonValue", () => {
  it("keeps plain JSON and turns undefined into null and Dates into strings", () => {
    expect(toJsonValue({ a: [1, "x", true, null], b: { c: 2 } }, "out")).toEqual({ a: [1, "x", true, null], b: { c: 2 } });
    expect(toJsonValue(undefined, "out")).toBeNull();
    expect(toJsonValue(new Date(Date.UTC(2030, 0, 1)), "out")).toBe("2030-01-01T00:00:00.000Z");
  });

  it("answers scalars as their JSON round trip does", () => {
    for (const value of ["text", "", 0, -0, 1.5, -7, true, false, null]) {
      expect(Object.is(toJsonValue(value, "out"), JSON.parse(JSON.stringify(value)))).toBe(true);
    }
  });

  it.each([
    [{ n: 1n }, "$.n is a bigint"],
    [{ list: [1, () => 2] }, "$.list[1] is a function"],
    [{ m: new Map() }, "$.m is a Map"],
    [{ x: Number.NaN }, "$.x is the number NaN"],
    [Number.POSITIVE_INFINITY, "$ is the number Infinity"],
    [Symbol("s"), "$ is a symbol"],
  ])("rejects %o naming the path", (value, message) => {
    try {
      toJsonValue(value, "the output");
      expect.unreachable();
    } catch (error) {
      expect(StepwiseError.isInstance(error) && error.code).toBe(ErrorCode.OutputNotSerializable);
      expect((error as Error).message).toContain(message);
    }
  });

  it("rejects cycles", () => {
    const value: Record<string, unknown> = {};
    value["self"] = value;
    expect(() => toJsonValue(value, "out")).toThrow("$.self is a circular reference");
  });

  it.each([
    ["a\u0000b", "$ is a NUL character"],
    [{ text: "x\uD800" }, "$.text is a lone UTF-16 surrogate"],
    [{ "k\u0000": 1 }, '$["k\\u0000"] is a key holding a NUL character'],
    [["ok", "\uDC00"], "$[1] is a lone UTF-16 surrogate"],
  ])("rejects %j, which Postgres cannot store, naming the path", (value, message) => {
    expect(() => toJsonValue(value, "out")).toThrow(message);
  });

  it("keeps paired surrogates (emoji) and backslashes as they are", () => {
    expect(toJsonValue({ emoji: "😀", escaped: "\\u0000" }, "out")).toEqual({ emoji: "😀", escaped: "\\u0000" });
  });

  it("refuses nesting past its depth with a message, not a stack overflow, however deep", () => {
    let deep: unknown = {};
    for (let level = 0; level < 20_000; level++) deep = { deep };
    expect(() => toJsonValue(deep, "out")).toThrow(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    let fine: unknown = 1;
    for (let level = 0; level < MAX_JSON_DEPTH; level++) fine = [fine];
    expect(() => toJsonValue(fine, "out")).not.toThrow();
  });

  it("refuses __proto__ keys when asked (event data), and keeps other keys of that kind", () => {
    const data = JSON.parse('{"a":{"__proto__":{"admin":true}},"constructor":1}');
    const options = { what: "event", code: ErrorCode.InvalidEventPayload, root: "data" } as const;
    expect(() => checkJson(data, options)).not.toThrow();
    expect(() => checkJson(data, { ...options, refuseProtoKeys: true })).toThrow('data.a.__proto__ is the key "__proto__"');
  });
});
