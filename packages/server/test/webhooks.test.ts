import { createHmac } from "node:crypto";
import { githubSignature, Stepwise } from "@stepwise/core";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "../src/index.js";

// POST /webhooks/:id end to end: verified on the raw body, transformed into an event, deduplicated
// by the provider's delivery id, and started like any event.

describe("POST /webhooks/:id", () => {
  const secret = "gh-secret";
  let engine: TestEngine;
  const pushes: unknown[] = [];
  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "repo-bot" });
    stepwise.createWebhook({
      id: "github",
      verify: githubSignature({ secret }),
      transform: ({ body, headers }) => ({ name: `github/${headers.get("x-github-event")}`, data: { ref: body.ref } }),
    });
    stepwise.createFunction({ id: "on-push" }, { event: "github/push" }, async ({ event }) => {
      pushes.push(event.data["ref"]);
      return event.data["ref"];
    });
    engine = await createTestEngine({ clients: [stepwise] });
  });
  afterAll(() => engine.close());

  // Keys mode: the signature is the webhook's credential, so no key is asked for.
  const server = () => createServer({ engine, auth: { mode: "keys", keys: { findKey: async () => null } as never } });
  const deliver = (body: string, delivery: string, signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`) =>
    server().request("/webhooks/github", {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": delivery, "x-hub-signature-256": signature },
    });

  it("turns a verified delivery into an event once, however often it is redelivered", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main", commits: [] });
    const first = await deliver(body, "delivery-1");
    expect(first.status).toBe(200);
    const { ids } = (await first.json()) as { ids: string[] };
    const again = await deliver(body, "delivery-1");
    expect(await again.json()).toEqual({ ids });
    await engine.idle();
    expect(pushes).toEqual(["refs/heads/main"]);
    expect(await engine.store.getEvent(ids[0] as string)).toMatchObject({ key: "github-delivery-1", name: "github/push" });
  });

  it("refuses a forged or altered delivery with 401 and the reason, and an unknown webhook with 404", async () => {
    const body = JSON.stringify({ ref: "refs/heads/evil" });
    const forged = await deliver(body, "delivery-2", `sha256=${"0".repeat(64)}`);
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ error: { code: "INVALID_SIGNATURE", message: "webhook github: the signature does not match the body" } });
    const signedOther = `sha256=${createHmac("sha256", secret)
      .update(JSON.stringify({ ref: "refs/heads/main" }))
      .digest("hex")}`;
    expect((await deliver(body, "delivery-3", signedOther)).status).toBe(401);
    expect((await server().request("/webhooks/nope", { method: "POST", body: "{}" })).status).toBe(404);
    await engine.idle();
    expect(pushes).not.toContain("refs/heads/evil");
  });

  it("refuses a webhook defined with an unknown option or a bad id", () => {
    const stepwise = new Stepwise({ id: "x" });
    const verify = githubSignature({ secret });
    expect(() => stepwise.createWebhook({ id: "a", verify, transform: () => ({ name: "a" }), secret } as never)).toThrow('"secret" is not an option');
    expect(() => stepwise.createWebhook({ id: "a/b", verify, transform: () => ({ name: "a" }) })).toThrow(/id must be letters/);
  });
});
