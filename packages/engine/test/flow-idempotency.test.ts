import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe.each(BACKENDS)("idempotency on %s", (backend) => {
  it("starts one run per key per function for 24 h: honoured at 23 h, released after 24 h", async () => {
    const stepwise = new Stepwise({ id: "shop" });
    for (const id of ["charge", "receipt"]) {
      stepwise.createFunction({ id, idempotency: "event.data.orderId" }, { event: "order/placed" }, async ({ event }) => event.data["orderId"]);
    }
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const runsOf = async (functionId: string) => (await engine.listRuns({ functionId, limit: 1000 })).map((run) => run.id);
    const order = (orderId: string | undefined) => ({ name: "order/placed", data: orderId === undefined ? {} : { orderId } });

    // Three events of two orders, one of them twice in the same send: two runs per function.
    await engine.send([order("o-1"), order("o-2")]);
    await engine.send([order("o-1"), order("o-3"), order("o-3")]);
    await engine.idle();
    for (const fn of ["charge", "receipt"]) expect(await runsOf(`shop/${fn}`)).toHaveLength(3);

    await engine.advance("23h");
    await engine.send(order("o-1"));
    await engine.idle();
    for (const fn of ["charge", "receipt"]) expect(await runsOf(`shop/${fn}`)).toHaveLength(3);

    await engine.advance("1h");
    await engine.send(order("o-1"));
    await engine.idle();
    for (const fn of ["charge", "receipt"]) expect(await runsOf(`shop/${fn}`)).toHaveLength(4);
    // Once released, the key holds again for the new run.
    await engine.send(order("o-1"));
    await engine.idle();
    expect(await runsOf("shop/charge")).toHaveLength(4);

    // An event the expression finds nothing in has no key: each one runs.
    await engine.send([order(undefined), order(undefined)]);
    await engine.idle();
    expect(await runsOf("shop/charge")).toHaveLength(6);
    const runs = await engine.listRuns({ functionId: "shop/charge", limit: 1000 });
    expect(runs.every((run) => run.status === "completed")).toBe(true);
  });

  it("keeps event-id deduplication alongside, and applies the key to invoked runs", async () => {
    const stepwise = new Stepwise({ id: "shop" });
    const charge = stepwise.createFunction(
      { id: "charge", idempotency: "event.data.orderId" },
      { event: "order/placed" },
      async ({ event }) => event.data["orderId"],
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const first = await engine.send({ id: "sender-1", name: "order/placed", data: { orderId: "a" } });
    const again = await engine.send({ id: "sender-1", name: "order/placed", data: { orderId: "b" } });
    // The same sender id is the same event: its id is answered, and no run for "b" starts.
    expect(again.ids).toEqual(first.ids);
    await engine.idle();
    expect(await engine.listRuns({ functionId: "shop/charge" })).toHaveLength(1);
    const invoked = await engine.invoke("charge", { orderId: "c" });
    expect(invoked).toMatchObject({ status: "completed", output: "c" });
    await expect(stepwise.invoke(charge, { orderId: "c" })).rejects.toMatchObject({
      code: "DUPLICATE_RUN",
      message: 'no run of "shop/charge" was started: a run of it holds idempotency key "c" (for 24 h)',
    });
    expect(await engine.listRuns({ functionId: "shop/charge" })).toHaveLength(2);
  });
});
