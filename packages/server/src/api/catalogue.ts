import {
  cancelManyResultSchema,
  cancelResultSchema,
  eventDetailSchema,
  eventPageSchema,
  functionInfoSchema,
  runDetailSchema,
  runInfoSchema,
  runPageSchema,
  sendResultSchema,
} from "@stepwise/core";
import type { KeyScope } from "@stepwise/engine";
import { z } from "zod";
import {
  cancelBodySchema,
  cancelManyBodySchema,
  idPathSchema,
  invokeBodySchema,
  listEventsQuery,
  listRunsQuery,
  realtimeQuery,
  realtimeTokenBodySchema,
  rerunBodySchema,
  sendBodySchema,
  waitQuery,
} from "./request-schemas.js";

/** One route of the API, as the index (`GET /`) and the OpenAPI document describe it. */
export interface ApiRoute {
  method: "get" | "post";
  /** Hono's form: `/v1/runs/:id`. */
  path: string;
  summary: string;
  /** Who may call it: open (health probes), an event key in the path, a webhook signature, or a key of this scope. */
  auth: "open" | "event-key" | "signature" | KeyScope;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The body may be left out (then no `Content-Type` either). */
  bodyOptional?: boolean;
  status?: 200 | 201 | 202;
  /** The JSON answer; absent for a text answer (metrics). */
  response?: z.ZodType;
  /** A text answer's content type. */
  responseType?: string;
}

const eventKeyPath = z.object({ eventKey: z.string().describe("an event key (stepwise keys create --scope event)") });

/**
 * Every route `createServer` serves. A test checks this list against the app's own routes, both
 * ways, so a route cannot be added without being documented.
 */
export const API_ROUTES: ApiRoute[] = [
  {
    method: "get",
    path: "/",
    summary: "what this server answers (this list)",
    auth: "open",
    response: z.object({ name: z.string(), routes: z.record(z.string(), z.string()) }),
  },
  { method: "get", path: "/health", summary: "the process is up", auth: "open", response: z.object({ status: z.literal("ok") }) },
  {
    method: "get",
    path: "/ready",
    summary: "the store and the queue answer (503 when not)",
    auth: "open",
    response: z.object({ status: z.enum(["ready", "not ready"]), checks: z.object({ store: z.enum(["ok", "failing"]), queue: z.enum(["ok", "failing"]) }) }),
  },
  { method: "get", path: "/metrics", summary: "Prometheus metrics of this process", auth: "read", responseType: "text/plain; version=0.0.4" },
  { method: "get", path: "/v1/openapi.json", summary: "this API as an OpenAPI 3.1 document", auth: "read", response: z.record(z.string(), z.unknown()) },
  {
    method: "post",
    path: "/e/:eventKey",
    summary: "send one event or a batch of up to 5,000; answers their ids once stored",
    auth: "event-key",
    params: eventKeyPath,
    body: sendBodySchema,
    response: sendResultSchema,
  },
  {
    method: "post",
    path: "/webhooks/:id",
    summary: "a provider's webhook, verified by its signature, sent as events",
    auth: "signature",
    params: idPathSchema,
    body: z.unknown(),
    response: sendResultSchema,
  },
  {
    method: "get",
    path: "/v1/functions",
    summary: "the functions this server runs",
    auth: "read",
    response: z.object({ functions: z.array(functionInfoSchema) }),
  },
  {
    method: "get",
    path: "/v1/functions/:id",
    summary: "one function with its triggers and configuration",
    auth: "read",
    params: idPathSchema,
    response: z.object({ function: functionInfoSchema }),
  },
  {
    method: "post",
    path: "/v1/functions/:id/invoke",
    summary: "start a run and await its result",
    auth: "control",
    params: idPathSchema,
    body: invokeBodySchema,
    response: z.object({ run: runInfoSchema }),
  },
  {
    method: "get",
    path: "/v1/runs",
    summary: "runs, newest first, a page at a time (nextCursor)",
    auth: "read",
    query: listRunsQuery,
    response: runPageSchema,
  },
  { method: "get", path: "/v1/runs/:id", summary: "a run with its steps", auth: "read", params: idPathSchema, response: runDetailSchema },
  {
    method: "get",
    path: "/v1/runs/:id/wait",
    summary: "wait for a run to end",
    auth: "read",
    params: idPathSchema,
    query: waitQuery,
    response: z.object({ run: runInfoSchema }),
  },
  {
    method: "post",
    path: "/v1/runs/:id/cancel",
    summary: "cancel a run and the runs it invoked",
    auth: "control",
    params: idPathSchema,
    body: cancelBodySchema,
    bodyOptional: true,
    response: cancelResultSchema,
  },
  {
    method: "post",
    path: "/v1/runs/cancel",
    summary: "cancel a function's runs that have not ended, by creation time and an expression over their event",
    auth: "control",
    body: cancelManyBodySchema,
    response: cancelManyResultSchema,
  },
  {
    method: "post",
    path: "/v1/runs/:id/rerun",
    summary: "a new run of the same event; fromStep reuses the results recorded before that step",
    auth: "control",
    params: idPathSchema,
    body: rerunBodySchema,
    bodyOptional: true,
    status: 201,
    response: z.object({ run: runInfoSchema }),
  },
  {
    method: "get",
    path: "/v1/events",
    summary: "events, newest first, a page at a time (nextCursor)",
    auth: "read",
    query: listEventsQuery,
    response: eventPageSchema,
  },
  { method: "get", path: "/v1/events/:id", summary: "an event with the runs it started", auth: "read", params: idPathSchema, response: eventDetailSchema },
  {
    method: "get",
    path: "/v1/events/:id/runs",
    summary: "the runs an event started",
    auth: "read",
    params: idPathSchema,
    response: z.object({ runs: z.array(runInfoSchema) }),
  },
  {
    method: "post",
    path: "/v1/events/:id/replay",
    summary: "run the functions an event starts again",
    auth: "control",
    params: idPathSchema,
    status: 201,
    response: z.object({ runs: z.array(runInfoSchema) }),
  },
  {
    method: "get",
    path: "/v1/realtime",
    summary: "server-sent events of a channel; reconnect with Last-Event-ID to resume with no gap",
    auth: "read",
    query: realtimeQuery,
    responseType: "text/event-stream",
  },
  {
    method: "post",
    path: "/v1/realtime/token",
    summary: "a short-lived token to follow the named channels with, for a browser",
    auth: "read",
    body: realtimeTokenBodySchema,
    status: 201,
    response: z.object({ token: z.string(), expiresAt: z.number(), channels: z.array(z.string()) }),
  },
];

/** The index at `GET /`: `"METHOD /path": "summary (who may call it)"`. */
export function routeIndex(): Record<string, string> {
  const who = (route: ApiRoute) => (["open", "event-key", "signature"].includes(route.auth) ? "" : ` (scope ${route.auth})`);
  return Object.fromEntries(API_ROUTES.map((route) => [`${route.method.toUpperCase()} ${route.path}`, route.summary + who(route)]));
}
