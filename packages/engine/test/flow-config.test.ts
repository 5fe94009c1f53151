import { Stepwise, StepwiseError } from "@stepwise/core";
import { describe, expect, it } from "vitest";

const noop = async () => {};

/** The message `createFunction` throws for `config` (and the option it names), or "no error". */
function attempt(config: Record<string, unknown>): { message: string; option?: unknown } {
  try {
    new Stepwise({ id: "app" }).createFunction({ id: "fn", ...config } as never, { event: "e" }, noop);
    return { message: "no error" };
  } catch (error) {
    if (!StepwiseError.isInstance(error)) throw error;
    expect(error.code).toBe("INVALID_FUNCTION_CONFIG");
    return { message: error.message, option: error.details["option"] };
  }
}

describe("flow-control options at createFunction", () => {
  it("rejects an unknown or misspelled option, naming it and the nearest valid one", () => {
    expect(attempt({ idempotence: "event.data.orderId" })).toEqual({
      message: 'createFunction("fn"): "idempotence" is not an option; did you mean "idempotency"?',
      option: "idempotence",
    });
    expect(attempt({ concurency: 5 }).message).toBe('createFunction("fn"): "concurency" is not an option; did you mean "concurrency"?');
    expect(attempt({ cancelon: [] }).message).toBe('createFunction("fn"): "cancelon" is not an option; did you mean "cancelOn"?');
    // Nested options are strict too, with the same hint.
    expect(attempt({ concurrency: { limit: 1, kye: "event.data.id" } })).toEqual({
      message: 'createFunction("fn"): concurrency: "kye" is not an option; did you mean "key"?',
      option: "concurrency.kye",
    });
    expect(attempt({ concurrency: [{ limit: 1 }, { limt: 2 }] }).message).toBe(
      'createFunction("fn"): concurrency[1]: "limt" is not an option; did you mean "limit"?',
    );
    // Nothing near: the valid names are listed instead.
    expect(attempt({ zzzzzzzz: 1 }).message).toMatch(/^createFunction\("fn"\): "zzzzzzzz" is not an option; the options are "id", "name", "retries", /);
  });

  it("rejects invalid values, naming the option", () => {
    expect(attempt({ concurrency: 0 }).message).toBe('createFunction("fn"): concurrency: concurrency must be at least 1');
    expect(attempt({ concurrency: { limit: 0 } }).message).toBe('createFunction("fn"): concurrency.limit: limit must be at least 1');
    expect(attempt({ concurrency: [{ limit: 1 }, { limit: 2 }, { limit: 3 }] }).message).toBe('createFunction("fn"): concurrency: give at most 2 rules, got 3');
    expect(attempt({ concurrency: { limit: 1, key: "event.data ==" } })).toMatchObject({
      message: expect.stringMatching(/^createFunction\("fn"\): concurrency\.key: "event\.data ==" is not a valid CEL expression/),
      option: "concurrency.key",
    });
    expect(attempt({ concurrency: { limit: 1, scope: "env" } }).message).toMatch(/^createFunction\("fn"\): concurrency\.key: scope "env" shares slots/);
    expect(attempt({ concurrency: { limit: 1, scope: "account" } }).message).toBe('createFunction("fn"): concurrency.scope: scope must be "fn" or "env"');
    expect(attempt({ concurrency: "5" }).message).toBe(
      'createFunction("fn"): concurrency: concurrency must be a number, { limit, key?, scope? }, or a list of up to 2 of them',
    );
  });

  it("accepts the concurrency forms and resolves them to rules", () => {
    const stepwise = new Stepwise({ id: "app" });
    const forms = [5, { limit: 2, key: "event.data.userId" }, [{ limit: 10 }, { limit: 1, key: '"openai"', scope: "env" as const }]];
    const resolved = forms.map((concurrency, index) => stepwise.createFunction({ id: `f${index}`, concurrency }, { event: "e" }, noop).config.concurrency);
    expect(resolved).toEqual([
      [{ limit: 5, scope: "fn" }],
      [{ limit: 2, key: "event.data.userId", scope: "fn" }],
      [
        { limit: 10, scope: "fn" },
        { limit: 1, key: '"openai"', scope: "env" },
      ],
    ]);
    expect(stepwise.createFunction({ id: "none" }, { event: "e" }, noop).config.concurrency).toEqual([]);
  });
});
