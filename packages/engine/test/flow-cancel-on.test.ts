import { Stepwise } from "@stepwise/core";
import { BACKENDS, createBackendEngine } from "@stepwise/testing";
import { describe, expect, it } from "vitest";

describe.each(BACKENDS)("cancelOn on %s", (backend) => {
  it("cancels a sleeping and a waiting run whose match or if holds, and no other", async () => {
    const stepwise = new Stepwise({ id: "shop" });
    const shipped: string[] = [];
    stepwise.createFunction(
      {
        id: "fulfil",
        cancelOn: [
          { event: "order/cancelled", match: "data.orderId" },
          { event: "account/closed", if: "async.data.userId == event.data.userId && async.data.final == true" },
        ],
      },
      { event: "order/placed" },
      async ({ event, step }) => {
        if (event.data["mode"] === "sleep") await step.sleep("cool-off", "1h");
        else await step.waitForEvent("paid", { event: "order/paid", match: "data.orderId", timeout: "1h" });
        await step.run("ship", () => shipped.push(String(event.data["orderId"])));
      },
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const placed = (orderId: string, mode: "sleep" | "wait", userId = "u0") => ({ name: "order/placed", data: { orderId, mode, userId } });
    const { runIds } = await engine.sendAndGetRuns([
      placed("sleeps-cancelled", "sleep"),
      placed("waits-cancelled", "wait"),
      placed("sleeps-kept", "sleep"),
      placed("waits-kept", "wait"),
      placed("closed-account", "sleep", "u1"),
      placed("other-account", "wait", "u2"),
    ]);
    await engine.idle();
    await engine.send([
      { name: "order/cancelled", data: { orderId: "sleeps-cancelled" } },
      { name: "order/cancelled", data: { orderId: "waits-cancelled" } },
      { name: "order/cancelled", data: { orderId: "nobody" } },
      // `if` holds for u1 only; u2's event is not final.
      { name: "account/closed", data: { userId: "u1", final: true } },
      { name: "account/closed", data: { userId: "u2", final: false } },
    ]);
    await engine.idle();
    const status = async (index: number) => (await engine.getRun(runIds[index] as string))?.status;
    expect(await status(0)).toBe("cancelled");
    expect(await status(1)).toBe("cancelled");
    expect(await status(4)).toBe("cancelled");
    const [cancelled] = await engine.listRuns({ functionId: "shop/fulfil", status: "cancelled", limit: 1 });
    expect(cancelled?.error?.message).toMatch(/^cancelled by event (order\/cancelled|account\/closed) \(evt_/);
    // The others go on: a payment resolves the waiting one, the sleeps end.
    await engine.send({ name: "order/paid", data: { orderId: "waits-kept" } });
    await engine.send({ name: "order/paid", data: { orderId: "other-account" } });
    await engine.advance("1h");
    for (const index of [2, 3, 5]) expect((await engine.result(runIds[index] as string)).status).toBe("completed");
    expect(shipped.sort()).toEqual(["other-account", "sleeps-kept", "waits-kept"]);
    // Nothing stays open once the runs ended: cancelled or completed.
    expect(await engine.store.findWaits("order/cancelled")).toEqual([]);
    expect(await engine.store.findWaits("account/closed")).toEqual([]);
  });

  it("stops listening after the entry's timeout", async () => {
    const stepwise = new Stepwise({ id: "shop" });
    stepwise.createFunction(
      { id: "remind", cancelOn: [{ event: "cart/checked-out", match: "data.cartId", timeout: "30m" }] },
      { event: "cart/abandoned" },
      async ({ step }) => {
        await step.sleep("wait", "2h");
        return "reminded";
      },
    );
    await using engine = await createBackendEngine(backend, { clients: [stepwise] });
    const { runIds } = await engine.sendAndGetRuns([
      { name: "cart/abandoned", data: { cartId: "early" } },
      { name: "cart/abandoned", data: { cartId: "late" } },
    ]);
    await engine.advance("29m");
    await engine.send({ name: "cart/checked-out", data: { cartId: "early" } });
    await engine.advance("2m");
    await engine.send({ name: "cart/checked-out", data: { cartId: "late" } });
    await engine.advance("2h");
    expect((await engine.result(runIds[0] as string)).status).toBe("cancelled");
    expect((await engine.result(runIds[1] as string)).output).toBe("reminded");
  });
});
