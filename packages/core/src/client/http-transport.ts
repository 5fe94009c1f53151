import { z } from "zod";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import type { EventPayload, SendEventResult } from "../events/event.js";
import { type RunInfo, runInfoSchema, type StepwiseTransport, type WaitOptions } from "./transport.js";

/** Where the HTTP transport sends events when no `baseUrl` is given: `STEPWISE_BASE_URL`, else the dev server. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8288";

const errorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** Options of {@link createHttpTransport}. */
export interface HttpTransportOptions {
  /** (Default: `process.env["STEPWISE_BASE_URL"]`, else `"http://127.0.0.1:8288"`) */
  baseUrl?: string;
  /** Event key for `POST /e/:eventKey`. (Default: `process.env["STEPWISE_EVENT_KEY"]`, else `"dev"`) */
  eventKey?: string;
  /**
   * API key for the `/v1` routes (invoke, runs), sent as `Authorization: Bearer`; `stepwise start`
   * requires one of scope `control` to invoke and `read` to read. (Default: `process.env["STEPWISE_API_KEY"]`; none for `stepwise dev`)
   */
  apiKey?: string;
  fetch?: typeof fetch;
}

/** A transport that talks to a Stepwise server's HTTP API. */
export function createHttpTransport(options: HttpTransportOptions = {}): StepwiseTransport {
  const baseUrl = (options.baseUrl ?? process.env["STEPWISE_BASE_URL"] ?? DEFAULT_BASE_URL).replace(/\/$/, "");
  const eventKey = options.eventKey ?? process.env["STEPWISE_EVENT_KEY"] ?? "dev";
  const apiKey = options.apiKey ?? process.env["STEPWISE_API_KEY"];
  const doFetch = options.fetch ?? fetch;

  async function request<T>(path: string, init: RequestInit, schema: z.ZodType<T>): Promise<T> {
    let response: Response;
    // The event key travels in the Event API's path; the API key goes to every other route.
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (apiKey && !path.startsWith("/e/")) headers["authorization"] = `Bearer ${apiKey}`;
    try {
      response = await doFetch(`${baseUrl}${path}`, { ...init, headers });
    } catch (error) {
      throw new StepwiseError({
        code: ErrorCode.TransportError,
        message: `cannot reach Stepwise at ${baseUrl} (${(error as Error).message}); is \`stepwise dev\` running, or is STEPWISE_BASE_URL set?`,
        cause: error,
      });
    }
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) {
      const parsed = errorBodySchema.safeParse(body);
      throw new StepwiseError({
        code: (parsed.success ? parsed.data.error.code : ErrorCode.TransportError) as ErrorCode,
        category: response.status < 500 ? "user" : "system",
        message: parsed.success ? parsed.data.error.message : `HTTP ${response.status} from ${baseUrl}${path}`,
      });
    }
    return schema.parse(body);
  }

  const runBody = z.object({ run: runInfoSchema });
  const waitQuery = (options: WaitOptions) => (options.timeoutMs === undefined ? "" : `?timeout=${options.timeoutMs}`);

  return {
    send(events: EventPayload[]): Promise<SendEventResult> {
      return request(`/e/${encodeURIComponent(eventKey)}`, { method: "POST", body: JSON.stringify(events) }, z.object({ ids: z.array(z.string()) }));
    },
    async invoke(functionId, data, options): Promise<RunInfo> {
      const body = JSON.stringify({ data, timeoutMs: options.timeoutMs });
      return (await request(`/v1/functions/${encodeURIComponent(functionId)}/invoke`, { method: "POST", body, signal: options.signal }, runBody)).run;
    },
    async runsForEvent(eventId) {
      return (await request(`/v1/events/${encodeURIComponent(eventId)}/runs`, { method: "GET" }, z.object({ runs: z.array(runInfoSchema) }))).runs;
    },
    async waitForRun(runId, options) {
      return (await request(`/v1/runs/${encodeURIComponent(runId)}/wait${waitQuery(options)}`, { method: "GET", signal: options.signal }, runBody)).run;
    },
  };
}
