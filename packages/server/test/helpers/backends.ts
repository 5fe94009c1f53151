import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { BACKENDS, type Backend, createBackendEngine, type TestEngine, type TestEngineOptions } from "@stepwise/testing";
import type { Hono } from "hono";
import { afterAll, beforeAll } from "vitest";
import { createServer } from "../../src/index.js";

export { BACKENDS, type Backend, createBackendEngine };

/**
 * For a describe block: an engine on `backend` running `clients()`, served over real HTTP in
 * local mode, made before its tests and closed after them.
 */
export function useServedEngine(backend: Backend, clients: () => TestEngineOptions["clients"]): { engine: TestEngine; http: HttpServer } {
  const fixture = {} as { engine: TestEngine; http: HttpServer };
  beforeAll(async () => {
    fixture.engine = await createBackendEngine(backend, { clients: clients() });
    fixture.http = await serveHttp(createServer({ engine: fixture.engine, auth: { mode: "local" } }));
  });
  afterAll(async () => {
    await fixture.http?.close();
    await fixture.engine?.close();
  });
  return fixture;
}

/** An app served over real HTTP on a free loopback port, until `close()`. */
export interface HttpServer {
  url: string;
  /** `fetch` against the server: a path, and JSON bodies sent with their content type. */
  request(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** Serves `app` with `@hono/node-server` on 127.0.0.1 and a free port. */
export async function serveHttp(app: Hono<never> | { fetch: (request: Request) => Response | Promise<Response> }): Promise<HttpServer> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    request(path, init = {}) {
      const { json, headers, ...rest } = init;
      if (json === undefined) return fetch(url + path, { ...rest, headers });
      return fetch(url + path, { method: "POST", ...rest, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(json) });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Open SSE streams would hold the close forever.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
