import { z } from "zod";
import { type RunInfo, type RunStatus, runInfoSchema } from "../client/transport.js";
import { ErrorCode } from "../errors/error-code.js";
import { StepwiseError } from "../errors/stepwise-error.js";
import type { EventPayload, SendEventResult } from "../events/event.js";
import {
  cancelManyResultSchema,
  cancelResultSchema,
  errorBodySchema,
  eventDetailSchema,
  eventPageSchema,
  functionInfoSchema,
  runDetailSchema,
  runPageSchema,
  sendResultSchema,
} from "./wire.js";

/** Where clients send requests when no `baseUrl` is given: `STEPWISE_BASE_URL`, else the dev server. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8288";

/** Options of {@link createApiClient}. */
export interface ApiClientOptions {
  /** (Default: `process.env["STEPWISE_BASE_URL"]`, else `"http://127.0.0.1:8288"`) */
  baseUrl?: string;
  /** Event key for `POST /e/:eventKey`. (Default: `process.env["STEPWISE_EVENT_KEY"]`, else `"dev"`) */
  eventKey?: string;
  /**
   * API key for the `/v1` routes, sent as `Authorization: Bearer`; `stepwise start` requires scope
   * `read` to read and `control` to invoke, cancel, rerun and replay.
   * (Default: `process.env["STEPWISE_API_KEY"]`; none for `stepwise dev`)
   */
  apiKey?: string;
  /** (Default: the global `fetch`) */
  fetch?: typeof fetch;
}

/** A variable of the environment, where there is one (not in a browser); an empty one counts as unset. */
function env(name: string): string | undefined {
  const value = typeof process === "undefined" ? undefined : process.env?.[name];
  return value === "" ? undefined : value;
}

/** Filters of {@link StepwiseApi.listRuns}; times are epoch milliseconds. */
export interface ListRunsQuery {
  /** A function's id, or its qualified id `<app>/<function>`. */
  function?: string;
  status?: RunStatus;
  /** Only runs this event started. */
  event?: string;
  since?: number;
  until?: number;
  /** Runs per page, 1–500. (Default: 50) */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** Filters of {@link StepwiseApi.listEvents}; times are epoch milliseconds. */
export interface ListEventsQuery {
  name?: string;
  since?: number;
  until?: number;
  /** Events per page, 1–500. (Default: 50) */
  limit?: number;
  cursor?: string;
}

/** The REST API of a Stepwise server, typed by the schemas the server answers with. */
export type StepwiseApi = ReturnType<typeof createApiClient>;

/**
 * A typed client for a Stepwise server's HTTP API (`stepwise dev` or `stepwise start`): every
 * answer is checked against the wire schema the server documents at `/v1/openapi.json`, and
 * every error answer rejects with a `StepwiseError` carrying the server's code, and the HTTP
 * status and request id in `details`.
 *
 * @example
 * const api = createApiClient({ baseUrl: "https://stepwise.internal", apiKey: process.env.STEPWISE_API_KEY });
 * const { runs, nextCursor } = await api.listRuns({ status: "failed", limit: 20 });
 * await api.rerun(runs[0].id, { fromStep: "charge" });
 */
export function createApiClient(options: ApiClientOptions = {}) {
  const baseUrl = (options.baseUrl ?? env("STEPWISE_BASE_URL") ?? DEFAULT_BASE_URL).replace(/\/$/, "");
  const eventKey = options.eventKey ?? env("STEPWISE_EVENT_KEY") ?? "dev";
  const apiKey = options.apiKey ?? env("STEPWISE_API_KEY");
  const doFetch = options.fetch ?? fetch;

  async function request<T>(method: "GET" | "POST", path: string, schema: z.ZodType<T>, init: { body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    // The event key travels in the Event API's path; the API key goes to every other route.
    if (apiKey && !path.startsWith("/e/")) headers["authorization"] = `Bearer ${apiKey}`;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await doFetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: init.signal,
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
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
        message: parsed.success ? parsed.data.error.message : `HTTP ${response.status} from ${method} ${baseUrl}${path}`,
        details: { status: response.status, ...(parsed.success && parsed.data.error.requestId !== undefined && { requestId: parsed.data.error.requestId }) },
      });
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new StepwiseError({
        code: ErrorCode.TransportError,
        message: `${method} ${baseUrl}${path} answered in an unexpected shape (${parsed.error.issues[0]?.message}); is the server a newer version?`,
      });
    }
    return parsed.data;
  }

  const id = (value: string) => encodeURIComponent(value);
  const query = (values: object) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(values)) if (value !== undefined) params.set(key, String(value));
    const text = params.toString();
    return text ? `?${text}` : "";
  };
  const runBody = z.object({ run: runInfoSchema });
  const runsBody = z.object({ runs: z.array(runInfoSchema) });

  return {
    /** The server's base URL, without a trailing slash. */
    baseUrl,
    /** Sends events; answers their ids once the server stored them. */
    send: (events: EventPayload | EventPayload[]): Promise<SendEventResult> => request("POST", `/e/${id(eventKey)}`, sendResultSchema, { body: events }),
    async listFunctions() {
      return (await request("GET", "/v1/functions", z.object({ functions: z.array(functionInfoSchema) }))).functions;
    },
    async getFunction(functionId: string) {
      return (await request("GET", `/v1/functions/${id(functionId)}`, z.object({ function: functionInfoSchema }))).function;
    },
    /** Starts a run of a function and answers it once it ended (INVOKE_TIMEOUT after `timeoutMs`, capped by the server). */
    async invoke(functionId: string, data: Record<string, unknown> = {}, invokeOptions: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RunInfo> {
      const body = { data, ...(invokeOptions.timeoutMs !== undefined && { timeoutMs: invokeOptions.timeoutMs }) };
      return (await request("POST", `/v1/functions/${id(functionId)}/invoke`, runBody, { body, signal: invokeOptions.signal })).run;
    },
    /** A page of runs, newest first; pass `nextCursor` back as `cursor` for the next. */
    listRuns: (filter: ListRunsQuery = {}) => request("GET", `/v1/runs${query(filter)}`, runPageSchema),
    /** A run with its steps; rejects with RUN_NOT_FOUND. */
    getRun: (runId: string) => request("GET", `/v1/runs/${id(runId)}`, runDetailSchema),
    /** Answers the run once it ended (WAIT_TIMEOUT after `timeoutMs`, capped by the server). */
    async waitForRun(runId: string, waitOptions: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RunInfo> {
      return (await request("GET", `/v1/runs/${id(runId)}/wait${query({ timeout: waitOptions.timeoutMs })}`, runBody, { signal: waitOptions.signal })).run;
    },
    /** Cancels a run and the runs it invoked; rejects with RUN_ALREADY_ENDED for a run that completed or failed. */
    cancelRun: (runId: string, cancelOptions: { reason?: string } = {}) =>
      request("POST", `/v1/runs/${id(runId)}/cancel`, cancelResultSchema, { body: cancelOptions }),
    /** Cancels a function's runs that have not ended, created in `[since, until)`, whose event meets `if`; answers how many. */
    cancelRuns: (filter: { function: string; since?: number | string; until?: number | string; if?: string; reason?: string }) =>
      request("POST", "/v1/runs/cancel", cancelManyResultSchema, { body: filter }),
    /** A new run of the same event; `fromStep` reuses the results recorded before that step. */
    async rerun(runId: string, rerunOptions: { fromStep?: string } = {}): Promise<RunInfo> {
      return (await request("POST", `/v1/runs/${id(runId)}/rerun`, runBody, { body: rerunOptions })).run;
    },
    /** A page of events, newest received first. */
    listEvents: (filter: ListEventsQuery = {}) => request("GET", `/v1/events${query(filter)}`, eventPageSchema),
    /** An event with the runs it started; rejects with EVENT_NOT_FOUND. */
    getEvent: (eventId: string) => request("GET", `/v1/events/${id(eventId)}`, eventDetailSchema),
    async runsForEvent(eventId: string): Promise<RunInfo[]> {
      return (await request("GET", `/v1/events/${id(eventId)}/runs`, runsBody)).runs;
    },
    /** Runs every function the event starts again. */
    async replayEvent(eventId: string): Promise<RunInfo[]> {
      return (await request("POST", `/v1/events/${id(eventId)}/replay`, runsBody)).runs;
    },
  };
}
