// OpenTelemetry tracing through Kafka headers. Off unless the standard OTEL_* variables ask
// for a trace exporter; when off, the pipeline holds a no-op BatchTracer and pays one branch.
//
// Model: each chunk of input records processed together gets a batch span linked to every
// input's context (W3C `traceparent`/`tracestate` headers). Each input that carries a
// context also gets a short "predict" span, its child, linked to the batch span; the
// prediction's `traceparent` header names that span, so the trace continues downstream.
import { context, trace, type Context, type Link, type Span, type TextMapGetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { IHeaders } from "kafkajs";
import type { Logger } from "./logger.js";

/** Links per batch span: enough for a micro-batch, bounded so a huge chunk cannot bloat it. */
const MAX_LINKS = 128;

export interface BatchTrace {
  /** The traceparent (and tracestate) headers for record i's prediction, or none. */
  headersFor(i: number): Record<string, string>;
  /** Marks record i as failed (sent to the DLQ) with the reason. */
  fail(i: number, reason: string): void;
  end(): void;
}

export interface BatchTracer {
  readonly enabled: boolean;
  start(name: string, inputs: IHeaders[], attributes: Record<string, string | number>): BatchTrace;
}

const NOOP_TRACE: BatchTrace = { headersFor: () => ({}), fail: () => undefined, end: () => undefined };
export const noopTracer: BatchTracer = { enabled: false, start: () => NOOP_TRACE };

const w3c = new W3CTraceContextPropagator();

const headerGetter: TextMapGetter<IHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (v === undefined) return undefined;
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? undefined : first.toString();
  },
};

export function extractContext(headers: IHeaders): Context {
  return w3c.extract(context.active(), headers, headerGetter);
}

export function injectHeaders(ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  w3c.inject(ctx, out, { set: (carrier, key, value) => (carrier[key] = value) });
  return out;
}

export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === "true") return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter === "none") return false;
  return Boolean(exporter || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export interface TracingHandle {
  tracer: BatchTracer;
  shutdown(): Promise<void>;
}

/** Starts the OpenTelemetry Node SDK from the OTEL_* environment, or returns the no-op tracer. */
export async function startTracing(serviceName: string, logger: Logger): Promise<TracingHandle> {
  if (!tracingRequested()) return { tracer: noopTracer, shutdown: async () => undefined };
  const { NodeSDK } = await import("@opentelemetry/sdk-node");
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? serviceName,
    instrumentations: [],
  });
  sdk.start();
  logger.info("tracing on (OTLP, configured by OTEL_* variables)", {
    endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  return { tracer: otelTracer(), shutdown: () => sdk.shutdown() };
}

export function otelTracer(): BatchTracer {
  const tracer = trace.getTracer("aimass");
  return {
    enabled: true,
    start: (name, inputs, attributes) => {
      const parents = inputs.map((h) => trace.getSpanContext(extractContext(h)));
      const links: Link[] = [];
      for (const sc of parents) if (sc && links.length < MAX_LINKS) links.push({ context: sc });
      const batch = tracer.startSpan(name, {
        links,
        attributes: { ...attributes, "messaging.batch.message_count": inputs.length },
      });
      const batchCtx = trace.setSpan(context.active(), batch);
      const children: Array<Span | undefined> = parents.map((sc, i) =>
        sc
          ? tracer.startSpan(
              "aimass.predict",
              {
                links: [{ context: batch.spanContext() }],
                attributes: { "messaging.kafka.message.index": i },
              },
              trace.setSpanContext(context.active(), sc),
            )
          : undefined,
      );
      return {
        headersFor: (i) => {
          const child = children[i];
          return injectHeaders(child ? trace.setSpan(context.active(), child) : batchCtx);
        },
        fail: (i, reason) => {
          children[i]?.setStatus({ code: 2, message: reason });
        },
        end: () => {
          for (const c of children) c?.end();
          batch.end();
        },
      };
    },
  };
}
