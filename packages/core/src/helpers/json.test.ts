import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import { toJsonValue } from "./json.js";

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
});
