// `pnpm bench`: the embedded default, then Postgres + Redis, then the HTTP server, then flow
// control. Each figure sits next to a floor or a baseline measured in the same run. Set
// STEPWISE_BENCH=embedded, =server, =http or =flow to run one part.
const which = process.env["STEPWISE_BENCH"] ?? "all";
if (which === "all" || which === "embedded") await (await import("./embedded.js")).benchEmbedded();
if (which === "all" || which === "server") await (await import("./server.js")).benchServer();
if (which === "all" || which === "http") await (await import("./http.js")).benchHttp();
if (which === "all" || which === "flow") await (await import("./flow.js")).benchFlow();

export {};
