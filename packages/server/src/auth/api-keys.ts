import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { KEY_SCOPES, type KeyScope, type KeyStore } from "@stepwise/engine";

/** A key as a client holds it: `sw_<scope>_<id>_<secret>` (the scope readable at a glance, as Stripe's `sk_live_`). */
const KEY_PATTERN = /^sw_(event|read|control|admin)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** The parts of a key string; `undefined` when it is not one. */
export function parseApiKey(key: string): { scope: KeyScope; id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(key);
  if (!match) return undefined;
  const [, scope, id, secret] = match as unknown as [string, KeyScope, string, string];
  return { scope, id, secret };
}

/** SHA-256 of a key's secret: what the store keeps. */
export function hashSecret(secret: string): Uint8Array {
  return createHash("sha256").update(secret).digest();
}

/** Whether `secret` is the one whose hash is `expected`, in constant time. */
export function secretMatches(secret: string, expected: Uint8Array): boolean {
  const actual = hashSecret(secret);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * Creates a key of `scope` in `store` and answers it: the only time the secret is seen (the store
 * keeps its hash). 64 bits of id, 256 bits of secret, from the OS's random source.
 *
 * @example
 * const { key } = await createApiKey(keys, { scope: "event", name: "checkout service" });
 */
export async function createApiKey(
  store: KeyStore,
  options: { scope: KeyScope; name?: string; now?: number },
): Promise<{ key: string; id: string; scope: KeyScope; name: string }> {
  if (!KEY_SCOPES.includes(options.scope)) throw new TypeError(`scope must be one of ${KEY_SCOPES.join(", ")}; got ${JSON.stringify(options.scope)}`);
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  const name = options.name ?? "";
  await store.createKey({ id, name, scope: options.scope, secretHash: hashSecret(secret), now: options.now ?? Date.now() });
  return { key: `sw_${options.scope}_${id}_${secret}`, id, scope: options.scope, name };
}

/** What each scope may do: a scope allows what it names and what the scopes below it allow. */
const ALLOWS: Record<KeyScope, readonly KeyScope[]> = {
  event: ["event"],
  read: ["read"],
  control: ["event", "read", "control"],
  admin: ["event", "read", "control", "admin"],
};

/** Whether a key of scope `held` may do what needs `needed`. */
export function scopeAllows(held: KeyScope, needed: KeyScope): boolean {
  return ALLOWS[held].includes(needed);
}
