import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

/** Whether the standard OpenTelemetry variables ask for traces to be exported. */
export function tracesWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env["OTEL_SDK_DISABLED"] === "true" || env["OTEL_TRACES_EXPORTER"] === "none") return false;
  return Boolean(env["OTEL_EXPORTER_OTLP_ENDPOINT"] || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] || env["OTEL_TRACES_EXPORTER"] === "otlp");
}

/**
 * Exports the engine's spans (a span per run pass, a child per step) over OTLP/HTTP when the
 * standard `OTEL_*` variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT`, …; the exporter reads
 * them itself); off otherwise, and then the engine's spans cost nothing. Answers the shutdown,
 * which flushes what is buffered.
 */
export function startTelemetry(serviceName: string): () => Promise<void> {
  if (!tracesWanted()) return async () => {};
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": process.env["OTEL_SERVICE_NAME"] ?? serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return () => provider.shutdown();
}
