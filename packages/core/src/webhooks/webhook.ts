import type { EventPayload } from "../events/event.js";
import type { WebhookVerifier } from "./verifiers.js";

/** What a webhook's `transform` receives: the parsed JSON body and the request's headers. */
export interface WebhookInput {
  // biome-ignore lint/suspicious/noExplicitAny: a provider's JSON, as sent
  body: any;
  headers: Headers;
}

/** Options of `stepwise.createWebhook`. */
export interface WebhookOptions {
  /** Served at `POST /webhooks/<id>`: letters, digits, `.`, `_`, `-`. */
  id: string;
  /** Checks the request came from the provider, on the raw body, before anything is parsed. */
  verify: WebhookVerifier;
  /**
   * Turns the verified request into an event (or several). An event without an `id` gets the
   * provider's delivery id when the verifier has one, so a redelivery is deduplicated.
   */
  transform(input: WebhookInput): EventPayload | EventPayload[];
}

const marker = Symbol.for("stepwise.webhook");

/** A webhook endpoint, as returned by `stepwise.createWebhook`. */
export class StepwiseWebhook {
  private readonly [marker] = true;
  readonly id: string;
  readonly appId: string;
  readonly verify: WebhookVerifier;
  readonly transform: WebhookOptions["transform"];

  constructor(appId: string, options: WebhookOptions) {
    this.appId = appId;
    this.id = options.id;
    this.verify = options.verify;
    this.transform = options.transform;
  }

  /** True for any {@link StepwiseWebhook}, across duplicate installs. */
  static isInstance(value: unknown): value is StepwiseWebhook {
    return typeof value === "object" && value !== null && marker in value;
  }
}
