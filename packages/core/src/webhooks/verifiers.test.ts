import { createHmac } from "node:crypto";
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { githubSignature, standardWebhookSignature, stripeSignature, type WebhookVerdict } from "./verifiers.js";

// Each provider's own documented example, then the ways a forgery or a replay differs from it.

const bytes = (text: string) => new TextEncoder().encode(text);
const reason = (verdict: WebhookVerdict) => (verdict.ok ? "accepted" : verdict.reason);

describe("githubSignature", () => {
  // GitHub's published example ("Validating webhook deliveries").
  const secret = "It's a Secret to Everybody";
  const signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  const verify = githubSignature({ secret });
  const headers = (value?: string) =>
    new Headers(value === undefined ? { "x-github-delivery": "d-1" } : { "x-hub-signature-256": value, "x-github-delivery": "d-1" });

  it("accepts GitHub's documented secret, payload and signature, with the delivery id", () => {
    expect(verify({ body: bytes("Hello, World!"), headers: headers(signature), now: 0 })).toEqual({ ok: true, deliveryId: "github-d-1" });
  });

  it("refuses a changed byte, a missing or malformed header, each with a reason", () => {
    expect(reason(verify({ body: bytes("Hello, World?"), headers: headers(signature), now: 0 }))).toMatch(/does not match the body/);
    expect(reason(verify({ body: bytes("Hello, World!"), headers: headers(), now: 0 }))).toMatch(/no X-Hub-Signature-256/);
    expect(reason(verify({ body: bytes("Hello, World!"), headers: headers("sha1=abc"), now: 0 }))).toMatch(/not sha256=/);
  });
});

describe("standardWebhookSignature", () => {
  // The Standard Webhooks specification's example.
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const payload = '{"test": 2432232314}';
  const signed = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  };
  const now = 1614265330 * 1000;

  it("accepts the specification's example, also while its secret is one of two being rotated", () => {
    expect(standardWebhookSignature({ secret })({ body: bytes(payload), headers: new Headers(signed), now })).toEqual({
      ok: true,
      deliveryId: "webhook-msg_p5jXN8AQM9LWM0D4loKWxJek",
    });
    const rotating = standardWebhookSignature({ secret: ["whsec_c2VjcmV0LWtleS1uZXh0LTAxMjM0NTY3ODk=", secret] });
    expect(
      rotating({ body: bytes(payload), headers: new Headers({ ...signed, "webhook-signature": `v1,bm90LWl0 ${signed["webhook-signature"]}` }), now }).ok,
    ).toBe(true);
  });

  it("refuses a changed byte, re-serialized JSON, an old timestamp and a missing header, each with a reason", () => {
    const verify = standardWebhookSignature({ secret });
    expect(reason(verify({ body: bytes('{"test": 2432232315}'), headers: new Headers(signed), now }))).toMatch(/no signature matches/);
    // The same JSON, serialized again (no space): a verifier of the parsed body would wrongly accept or refuse at random.
    expect(reason(verify({ body: bytes(JSON.stringify(JSON.parse(payload))), headers: new Headers(signed), now }))).toMatch(/no signature matches/);
    expect(reason(verify({ body: bytes(payload), headers: new Headers(signed), now: now + 301_000 }))).toMatch(/more than 300 s from now/);
    const { "webhook-id": _id, ...noId } = signed;
    expect(reason(verify({ body: bytes(payload), headers: new Headers(noId), now }))).toMatch(/missing webhook-id/);
  });
});

describe("stripeSignature", () => {
  const secret = "whsec_test_secret";
  const payload = JSON.stringify({ id: "evt_1", object: "event", type: "invoice.paid", data: { object: { id: "in_1" } } });
  const stripe = new Stripe("sk_test_unused");
  const header = (timestamp: number, body = payload, key = secret) => stripe.webhooks.generateTestHeaderString({ payload: body, secret: key, timestamp });
  const now = 1_800_000_000_000;
  const verify = stripeSignature({ secret });

  it("accepts a header computed by Stripe's own library, and one of several v1 signatures while a secret rolls", () => {
    expect(verify({ body: bytes(payload), headers: new Headers({ "stripe-signature": header(now / 1000) }), now })).toEqual({ ok: true });
    const rolled = `${header(now / 1000, payload, "whsec_old")},v1=${header(now / 1000).split("v1=")[1]}`;
    expect(verify({ body: bytes(payload), headers: new Headers({ "stripe-signature": rolled }), now }).ok).toBe(true);
    // Our signature is Stripe's scheme: HMAC-SHA256 of "<t>.<body>" with the secret as it is.
    const ours = createHmac("sha256", secret)
      .update(`${now / 1000}.${payload}`)
      .digest("hex");
    expect(header(now / 1000)).toContain(`v1=${ours}`);
  });

  it("refuses a changed byte, re-serialized JSON, an old timestamp and a missing header, each with a reason", () => {
    const good = header(now / 1000);
    expect(reason(verify({ body: bytes(payload.replace("in_1", "in_2")), headers: new Headers({ "stripe-signature": good }), now }))).toMatch(
      /no v1 signature matches/,
    );
    expect(reason(verify({ body: bytes(JSON.stringify(JSON.parse(payload), null, 1)), headers: new Headers({ "stripe-signature": good }), now }))).toMatch(
      /no v1 signature matches/,
    );
    expect(reason(verify({ body: bytes(payload), headers: new Headers({ "stripe-signature": header(now / 1000 - 301) }), now }))).toMatch(/more than 300 s/);
    expect(reason(verify({ body: bytes(payload), headers: new Headers(), now }))).toMatch(/no Stripe-Signature header/);
  });
});
