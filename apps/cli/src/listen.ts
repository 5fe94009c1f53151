import { serve } from "@hono/node-server";

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
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const instance = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, () => resolve(instance));
    instance.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    url: `http://${options.host}:${port}`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
