import { ErrorCode, StepwiseError } from "@stepwise/core";
import type { KeyScope, KeyStore } from "@stepwise/engine";
import type { Context, MiddlewareHandler } from "hono";
import { parseApiKey, scopeAllows, secretMatches } from "./api-keys.js";

/**
 * How the server checks who is calling. `keys`: every route but `/`, `/health` and `/ready` needs
 * a key from `keys` of a scope that allows it (`stepwise start`). `local`: no keys, but only
 * requests addressed to this machine by name (`Host` and `Origin` local: DNS-rebinding protection),
 * for `stepwise dev`, which binds 127.0.0.1.
 */
export type AuthOptions =
  | {
      mode: "keys";
      keys: KeyStore;
      /** How long a checked key is trusted without reading the store again, in ms: a revocation takes at most this long. (Default: 10000) */
      cacheMs?: number;
    }
  | { mode: "local" };

/** Host names that are this machine. */
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** The host name of a `Host` header or an origin's authority, without the port. */
function hostName(authority: string): string {
  const bracketed = /^(\[[^\]]*\])(?::\d+)?$/.exec(authority);
  if (bracketed) return (bracketed[1] as string).toLowerCase();
  return (authority.split(":")[0] ?? "").toLowerCase();
}

function unauthorized(message: string): StepwiseError {
  return new StepwiseError({ code: ErrorCode.Unauthorized, category: "user", message });
}

function forbidden(message: string): StepwiseError {
  return new StepwiseError({ code: ErrorCode.Forbidden, category: "user", message });
}

/**
 * Creates the check for one scope: `guard("read")` is middleware for routes that read. The key
 * comes from `Authorization: Bearer <key>`, or for the Event API from the path (`/e/<key>`, as
 * Inngest's event keys are sent).
 */
export function createAuthGuard(auth: AuthOptions): (scope: KeyScope) => MiddlewareHandler {
  if (auth.mode === "local") {
    return () => async (context, next) => {
      assertLocal(context);
      await next();
    };
  }
  const cacheMs = auth.cacheMs ?? 10_000;
  // Key string → its scope, while recently checked: the Event API must not read the store per event.
  const checked = new Map<string, { scope: KeyScope; until: number }>();
  // Whether no key exists, read at most every cacheMs: a flood of wrong keys costs one read each, not two.
  let noKeys: { value: boolean; until: number } | undefined;
  const noKeysYet = async (): Promise<boolean> => {
    if (noKeys && noKeys.until > Date.now()) return noKeys.value;
    noKeys = { value: (await auth.keys.countActiveKeys()) === 0, until: Date.now() + cacheMs };
    return noKeys.value;
  };
  const verify = async (key: string): Promise<KeyScope> => {
    const hit = checked.get(key);
    if (hit && hit.until > Date.now()) return hit.scope;
    checked.delete(key);
    const parsed = parseApiKey(key);
    if (!parsed) throw unauthorized("that is not a Stepwise key (sw_<scope>_<id>_<secret>)");
    const record = await auth.keys.findKey(parsed.id);
    if (!record || record.scope !== parsed.scope || !secretMatches(parsed.secret, record.secretHash)) {
      if (await noKeysYet()) throw unauthorized("no API key exists yet: create one with `stepwise keys create --scope admin`");
      throw unauthorized("the key is not valid");
    }
    if (record.revokedAt !== undefined) throw unauthorized(`key ${record.id} was revoked`);
    // Bounded: a flood of distinct valid keys cannot grow it without end.
    if (checked.size >= 10_000) checked.clear();
    checked.set(key, { scope: record.scope, until: Date.now() + cacheMs });
    return record.scope;
  };
  return (needed) => async (context, next) => {
    const key = bearer(context) ?? (needed === "event" ? context.req.param("eventKey") : undefined);
    if (!key) throw unauthorized("send a key: Authorization: Bearer <key> (create one with `stepwise keys create`)");
    const scope = await verify(key);
    if (!scopeAllows(scope, needed))
      throw forbidden(`this route needs a key with scope ${needed}${needed === "admin" ? "" : " (or a stronger one)"}; this key's scope is ${scope}`);
    await next();
  };
}

function bearer(context: Context): string | undefined {
  const header = context.req.header("authorization");
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

/** Refuses a request not addressed to this machine by name (a page on another site rebinding its DNS to 127.0.0.1). */
function assertLocal(context: Context): void {
  const host = context.req.header("host");
  if (host !== undefined && !LOCAL_HOSTS.has(hostName(host))) {
    throw forbidden(`stepwise dev answers requests to localhost only; this one was for ${JSON.stringify(host.slice(0, 100))}`);
  }
  const origin = context.req.header("origin");
  if (origin !== undefined && origin !== "null") {
    let local = false;
    try {
      local = LOCAL_HOSTS.has(hostName(new URL(origin).host));
    } catch {
      local = false;
    }
    if (!local) throw forbidden(`stepwise dev answers pages served from localhost only; this request came from ${JSON.stringify(origin.slice(0, 100))}`);
  }
}
