// Tracing through Kafka: an OTLP/HTTP receiver (JSON encoding) collects what a predictor
// exports. A record produced with a W3C traceparent must yield a batch span linked to the
// producer's span, a predict span continuing the producer's trace, and a prediction whose
// traceparent names that predict span.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { connectedAdmin, defer, tempTopic, testKafka, uniqueName } from "../../helpers/stack.js";
import { readTopic } from "../../helpers/kafka-read.js";
import { shopPipeline, startPredictor, writeConfig } from "../../helpers/predictor-process.js";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  links?: Array<{ traceId: string; spanId: string }>;
}

/** A minimal OTLP/HTTP trace receiver: accepts JSON ExportTraceServiceRequests. */
async function otlpReceiver(t: Parameters<typeof defer>[0]): Promise<{ url: string; spans: OtlpSpan[] }> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.url === "/v1/traces" && req.method === "POST") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
        };
        for (const rs of body.resourceSpans ?? [])
          for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  defer(t, () => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans };
}

test(
  "a traceparent on an input continues through a batch span into the prediction",
  { timeout: 120_000 },
  async (t) => {
    const receiver = await otlpReceiver(t);
    const kafka = testKafka();
    const admin = await connectedAdmin(t, kafka);
    const f = {
      input: await tempTopic(t, admin, "trace-in", 2),
      output: await tempTopic(t, admin, "trace-out", 2),
      dlq: await tempTopic(t, admin, "trace-dlq", 2),
      group: uniqueName("trace-group"),
    };
    const config = writeConfig(t, shopPipeline(f, { maxDelayMs: 20 }));
    const worker = startPredictor(t, config, "traced", {
      env: {
        OTEL_TRACES_EXPORTER: "otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    });
    await worker.waitFor(/"msg":"partitions assigned"[^\n]*"partitions":\[\d/);
    assert.match(worker.log, /tracing on/);

    // The upstream producer's spans: one trace per event.
    const upstream = Array.from({ length: 4 }, (_, i) => ({
      id: `tr-${i}`,
      traceId: randomBytes(16).toString("hex"),
      spanId: randomBytes(8).toString("hex"),
    }));
    const producer = kafka.producer();
    await producer.connect();
    defer(t, () => producer.disconnect());
    await producer.send({
      topic: f.input,
      messages: upstream.map((u) => ({
        key: "u-1",
        value: JSON.stringify({
          id: u.id,
          type: "cart",
          userId: "u-1",
          itemId: "i-1",
          ts: Date.now(),
          price: 10,
          quantity: 1,
        }),
        headers: { traceparent: `00-${u.traceId}-${u.spanId}-01` },
      })),
    });

    const out = await readTopic(t, kafka, f.output, {
      until: (r) => r.length >= upstream.length,
      timeoutMs: 30_000,
    });
    assert.equal(out.length, upstream.length);

    // Spans are exported in the background: wait for the predict spans of all inputs.
    const deadline = Date.now() + 20_000;
    while (
      receiver.spans.filter((s) => s.name === "aimass.predict").length < upstream.length &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const u of upstream) {
      const record = out.find((r) => JSON.parse(r.value?.toString() ?? "{}").eventId === u.id);
      assert.ok(record, `prediction for ${u.id}`);
      const tp = record.headers?.traceparent?.toString() ?? "";
      const [, traceId, spanId] = tp.split("-");
      assert.equal(traceId, u.traceId, "the prediction continues the producer's trace");
      assert.notEqual(spanId, u.spanId, "…from a span of its own");

      const predict = receiver.spans.find((s) => s.name === "aimass.predict" && s.spanId === spanId);
      assert.ok(predict, `exported predict span ${spanId}`);
      assert.equal(predict.traceId, u.traceId);
      assert.equal(predict.parentSpanId, u.spanId, "predict span is the producer span's child");

      const batch = receiver.spans.find(
        (s) =>
          s.name === "aimass.batch" &&
          (s.links ?? []).some((l) => l.spanId === u.spanId && l.traceId === u.traceId),
      );
      assert.ok(batch, "a batch span links to the producer's span");
      assert.ok(
        (predict.links ?? []).some((l) => l.spanId === batch.spanId),
        "the predict span links back to its batch span",
      );
    }
  },
);
