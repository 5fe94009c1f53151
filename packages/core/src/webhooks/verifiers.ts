import { createHmac, timingSafeEqual } from "node:crypto";

/** What a verifier sees: the body exactly as received (never re-serialized JSON), the headers, the time. */
export interface WebhookRequest {
  /** The raw body, as bytes off the wire. */
  body: Uint8Array;
  headers: Headers;
  /** Epoch milliseconds. */
  now: number;
}

/** A verifier's answer: the delivery id when the provider gives one (to deduplicate redeliveries), or why it refused. */
export type WebhookVerdict = { ok: true; deliveryId?: string } | { ok: false; reason: string };

/** Checks that a request really comes from the provider. Runs before the body is parsed. */
export type WebhookVerifier = (request: WebhookRequest) => WebhookVerdict;

/** How far a signed timestamp may be from now (300 s, as Stripe's and Standard Webhooks' libraries allow). */
export const WEBHOOK_TOLERANCE_MS = 300_000;

function hmac(algorithm: "sha256", key: string | Buffer, ...parts: Array<string | Uint8Array>): Buffer {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Constant-time comparison of two byte strings of possibly different lengths. */
function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function refuse(reason: string): WebhookVerdict {
  return { ok: false, reason };
}

/**
 * Stripe's `Stripe-Signature: t=<seconds>,v1=<hex>[,v1=<hex>...]`: HMAC-SHA256 of `<t>.<raw body>`
 * with the endpoint's signing secret (`whsec_...`, used as it is); any `v1` may match (Stripe
 * sends several while a secret rolls), and `t` must be within `toleranceMs` of now. The event's
 * own id (`evt_...`) is in the body: return it from `transform` as the event id.
 *
 * @example
 * stepwise.createWebhook({ id: "stripe", verify: stripeSignature({ secret: process.env.STRIPE_WEBHOOK_SECRET! }), transform: (body) => ({ name: `stripe/${body.type}`, id: body.id, data: body.data }) })
 */
export function stripeSignature(options: { secret: string; toleranceMs?: number }): WebhookVerifier {
  const tolerance = options.toleranceMs ?? WEBHOOK_TOLERANCE_MS;
  return ({ body, headers, now }) => {
    const header = headers.get("stripe-signature");
    if (!header) return refuse("no Stripe-Signature header");
    let timestamp: string | undefined;
    const signatures: string[] = [];
    for (const part of header.split(",")) {
      const [key, value] = part.split("=", 2).map((text) => text.trim());
      if (key === "t") timestamp = value;
      else if (key === "v1" && value) signatures.push(value);
    }
    if (!timestamp || !/^\d+$/.test(timestamp)) return refuse("Stripe-Signature has no timestamp (t=)");
    if (signatures.length === 0) return refuse("Stripe-Signature has no v1 signature");
    if (Math.abs(now - Number(timestamp) * 1000) > tolerance) return refuse(`the signed timestamp is more than ${tolerance / 1000} s from now`);
    const expected = hmac("sha256", options.secret, `${timestamp}.`, body);
    const matches = signatures.some((signature) => /^[0-9a-f]{64}$/i.test(signature) && same(Buffer.from(signature, "hex"), expected));
    return matches ? { ok: true } : refuse("no v1 signature matches the body");
  };
}

/**
 * GitHub's `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body with the webhook's
 * secret. The delivery id comes from `X-GitHub-Delivery` (a redelivery keeps it).
 */
export function githubSignature(options: { secret: string }): WebhookVerifier {
  return ({ body, headers }) => {
    const header = headers.get("x-hub-signature-256");
    if (!header) return refuse("no X-Hub-Signature-256 header");
    const match = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
    if (!match) return refuse("X-Hub-Signature-256 is not sha256=<64 hex digits>");
    if (!same(Buffer.from(match[1] as string, "hex"), hmac("sha256", options.secret, body))) return refuse("the signature does not match the body");
    const delivery = headers.get("x-github-delivery");
    return delivery ? { ok: true, deliveryId: `github-${delivery}` } : { ok: true };
  };
}

/**
 * Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`):
 * HMAC-SHA256 of `<id>.<timestamp>.<raw body>` with the base64 key of a `whsec_...` secret.
 * Several secrets may be given while one is being rotated; any signature of any secret may match.
 * The delivery id is `webhook-id`.
 */
export function standardWebhookSignature(options: { secret: string | string[]; toleranceMs?: number }): WebhookVerifier {
  const tolerance = options.toleranceMs ?? WEBHOOK_TOLERANCE_MS;
  const keys = (Array.isArray(options.secret) ? options.secret : [options.secret]).map((secret) => Buffer.from(secret.replace(/^whsec_/, ""), "base64"));
  if (keys.some((key) => key.length === 0)) throw new TypeError("standardWebhookSignature: a secret is empty; pass the whsec_... string the provider gave");
  return ({ body, headers, now }) => {
    const id = headers.get("webhook-id");
    const timestamp = headers.get("webhook-timestamp");
    const signature = headers.get("webhook-signature");
    if (!id || !timestamp || !signature) return refuse("missing webhook-id, webhook-timestamp or webhook-signature");
    if (!/^\d+$/.test(timestamp)) return refuse("webhook-timestamp is not whole seconds");
    if (Math.abs(now - Number(timestamp) * 1000) > tolerance) return refuse(`the signed timestamp is more than ${tolerance / 1000} s from now`);
    const given = signature
      .split(" ")
      .map((entry) => entry.split(",", 2))
      .filter(([version, value]) => version === "v1" && value)
      .map(([, value]) => Buffer.from(value as string, "base64"));
    if (given.length === 0) return refuse("webhook-signature has no v1 signature");
    const matches = keys.some((key) => {
      const expected = hmac("sha256", key, `${id}.${timestamp}.`, body);
      return given.some((candidate) => same(candidate, expected));
    });
    return matches ? { ok: true, deliveryId: `webhook-${id}` } : refuse("no signature matches the body");
  };
}
