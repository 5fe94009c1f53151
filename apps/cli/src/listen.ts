import type { Server } from "node:http";
import { serve } from "@hono/node-server";

/** How long requests in flight may take to finish once the server closes (ms). */
const CLOSE_GRACE_MS = 2000;

/** An HTTP server listening for a Hono app. */
export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `app` on `host:port` (0 picks a free port) and resolves once it listens; rejects when
 * the port is taken. Shared by `stepwise dev` and `stepwise start`.
 */
export async function listen(app: { fetch: (request: Request) => Response | Promise<Response> }, options: { host: string; port: number }): Promise<Listening> {
  const server = await new Promise<Server>((resolve, reject) => {
    // An HTTP/1 server (serve() answers the union of the HTTP/1 and HTTP/2 server types).
    const instance = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, () => resolve(instance as Server)) as Server;
    instance.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    url: `http://${options.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Stop accepting; requests in flight get a moment to finish. Realtime streams and long
        // waits never finish on their own: past the moment they are cut, and their clients
        // reconnect (an EventSource resumes after its Last-Event-ID on another process).
        const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
