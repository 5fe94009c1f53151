import { type ApiClientOptions, createApiClient } from "../api/api-client.js";
import type { StepwiseTransport } from "./transport.js";

export { DEFAULT_BASE_URL } from "../api/api-client.js";

/** Options of {@link createHttpTransport}: those of the API client it uses. */
export type HttpTransportOptions = ApiClientOptions;

/** A transport that talks to a Stepwise server's HTTP API (through {@link createApiClient}). */
export function createHttpTransport(options: HttpTransportOptions = {}): StepwiseTransport {
  const api = createApiClient(options);
  return {
    send: (events) => api.send(events),
    invoke: (functionId, data, waitOptions) => api.invoke(functionId, data, waitOptions),
    runsForEvent: (eventId) => api.runsForEvent(eventId),
    waitForRun: (runId, waitOptions) => api.waitForRun(runId, waitOptions),
  };
}
