import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode, StepwiseError } from "@stepwise/core";
import { z } from "zod";

/** How a realtime token starts, so that it is never mistaken for an API key. */
const TOKEN_PREFIX = "swrt_";

const claimsSchema = z.strictObject({
  /** Channels the token may follow. */
  c: z.array(z.string()).min(1),
  /** Topics it may follow; absent: all. */
  t: z.array(z.string()).optional(),
  /** Expiry, epoch ms. */
  exp: z.number().int(),
});

/** What a verified token allows. */
export interface RealtimeGrant {
  channels: string[];
  topics?: string[];
  expiresAt: number;
}

/** Mints and checks realtime subscription tokens: short-lived, channel-scoped, HMAC-SHA256 signed. */
export interface RealtimeTokens {
  mint(grant: RealtimeGrant): string;
  /** The grant of a valid token; 401 UNAUTHORIZED naming why otherwise (malformed, bad signature, expired). */
  verify(token: string, now?: number): RealtimeGrant;
}

/**
 * Tokens signed with `secret`: give every server process of a deployment the same secret, so a
 * token minted by one is accepted by all. A browser holds such a token instead of an API key:
 * it can follow only the channels it names, and only until it expires.
 */
export function createRealtimeTokens(secret: string | Uint8Array = randomBytes(32)): RealtimeTokens {
  const sign = (payload: string) => createHmac("sha256", secret).update(payload).digest();
  const unauthorized = (message: string) => new StepwiseError({ code: ErrorCode.Unauthorized, category: "user", message });
  return {
    mint(grant) {
      const claims = { c: grant.channels, ...(grant.topics && { t: grant.topics }), exp: grant.expiresAt };
      const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
      return `${TOKEN_PREFIX}${payload}.${sign(payload).toString("base64url")}`;
    },
    verify(token, now = Date.now()) {
      const [payload, signature, ...rest] = token.startsWith(TOKEN_PREFIX) ? token.slice(TOKEN_PREFIX.length).split(".") : [];
      if (payload === undefined || signature === undefined || rest.length > 0) {
        throw unauthorized("that is not a realtime token (get one from POST /v1/realtime/token)");
      }
      const given = Buffer.from(signature, "base64url");
      const expected = sign(payload);
      // Constant time: how much of a forged signature matched must not show in the timing.
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw unauthorized("the realtime token's signature is not valid");
      let claims: z.infer<typeof claimsSchema>;
      try {
        claims = claimsSchema.parse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
      } catch {
        throw unauthorized("the realtime token is malformed");
      }
      if (claims.exp <= now) throw unauthorized(`the realtime token expired at ${new Date(claims.exp).toISOString()}; get a new one`);
      return { channels: claims.c, ...(claims.t && { topics: claims.t }), expiresAt: claims.exp };
    },
  };
}
