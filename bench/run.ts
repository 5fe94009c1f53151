// `pnpm bench`: the embedded default, then Postgres + Redis, then the HTTP server. Each figure
// sits next to a floor measured in the same run. Set STEPWISE_BENCH=embedded, =server or =http
// to run one part.
const which = process.env["STEPWISE_BENCH"] ?? "all";
if (which === "all" || which === "embedded") await (await import("./embedded.js")).benchEmbedded();
if (which === "all" || which === "server") await (await import("./server.js")).benchServer();
if (which === "all" || which === "http") await (await import("./http.js")).benchHttp();

export {};
