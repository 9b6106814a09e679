// Builds what a predictor runs on, in dependency order: the served model versions (loaded,
// validated against their tensor mapping and warmed), the feature store and enricher, the
// codecs and the chunk preparer, the Kafka client and admin, and the control listener (which
// applies the desired versions before the first event is consumed). A failure part-way
// closes what was built and rethrows: a model that does not fit its config stops the worker
// here, before it joins the group.
import type { Admin, Kafka } from "kafkajs";
import { AimassError, errorMessage } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { PipelineConfig } from "../common/config/load.js";
import type { ModelConfig } from "../common/config/schema.js";
import { createKafka } from "../common/kafka/client.js";
import { assertKafkajsPatched } from "../common/kafka/kafkajs-patched.js";
import { createSchemaRegistryClient } from "../common/serde/schema-registry.js";
import { avroCodec, jsonCodec, type Format, type ValueCodec } from "../common/serde/codec.js";
import { FeatureStore } from "../common/features/store.js";
import { resolveVersion } from "../common/models/repository.js";
import { closeAll } from "../common/lifecycle.js";
import { TUNING } from "../common/tuning.js";
import type { BatchTracer } from "../common/tracing.js";
import { ServedModels } from "./served-models.js";
import { ModelRuntime } from "./model-runtime.js";
import { ControlListener } from "./control-listener.js";
import { Enricher } from "./enrich.js";
import { RecordProcessor } from "./record-processor.js";
import type { PredictorMetrics } from "./metrics.js";

export interface PredictorParts {
  served: ServedModels;
  preparer: RecordProcessor;
  kafka: Kafka;
  admin: Admin;
  control: ControlListener;
  /** Closes everything above, in reverse order of need; failures are logged, not thrown. */
  close(): Promise<void>;
}

export interface ComposeOptions {
  config: PipelineConfig;
  logger: Logger;
  metrics: PredictorMetrics;
  tracer: BatchTracer;
  instanceId: string;
}

export async function composePredictor(o: ComposeOptions): Promise<PredictorParts> {
  const { config, logger: log, metrics } = o;
  assertKafkajsPatched();
  const closers: Array<[string, () => Promise<unknown>]> = [];
  const close = () => closeAll(log, [...closers].reverse());
  try {
    const hooks = metrics.modelHooks();
    const served: ServedModels = new ServedModels({
      logger: log,
      load: async (c) => {
        const runtime = await ModelRuntime.load(c, log, hooks);
        log.info("model loaded and warmed", { ...runtime.info });
        return runtime;
      },
      resolve: (model, version) => versionConfig(config, model, version),
      onChange: () => metrics.setModels(served.runtimes()),
    });
    closers.push(["models", () => served.close()]);
    await served.init(config.models);

    let enricher: Enricher | undefined;
    if (config.features) {
      const store = FeatureStore.connect(config.endpoints.redisUrl, config.features, log);
      closers.push(["feature store", () => store.close()]);
      metrics.sampleFeatureStore(() => store.pendingCommands);
      try {
        await store.waitReady(TUNING.predictor.featureStoreReadyMs);
      } catch (err) {
        // Not fatal: chunks fail (and are retried) or fall back, per onUnavailable, until it answers.
        log.warn("feature store not reachable yet", { error: errorMessage(err) });
      }
      enricher = new Enricher(store, config.features, (s) => metrics.onEnrich(s));
    }

    const schemaRegistry = createSchemaRegistryClient({ url: config.endpoints.schemaRegistryUrl });
    const codec = (format: Format): ValueCodec =>
      format === "avro" ? avroCodec({ registry: schemaRegistry }) : jsonCodec();
    const preparer = new RecordProcessor({
      config,
      inputCodec: codec(config.input.format),
      outputCodec: codec(config.output.format),
      snapshot: () => served.snapshot(),
      ...(enricher ? { enricher } : {}),
      tracer: o.tracer,
    });

    const kafka = createKafka({
      brokers: config.endpoints.kafkaBrokers,
      clientId: `aimass-${config.pipeline.name}-${o.instanceId}`,
      logger: log,
    });
    const admin = kafka.admin();
    await admin.connect();
    closers.push(["admin", () => admin.disconnect()]);
    const control = new ControlListener({
      kafka,
      admin,
      topic: config.control.topic,
      auditTopic: config.control.auditTopic,
      shadowTopic: config.output.shadowTopic,
      groupId: `${config.pipeline.groupId}.control.${o.instanceId}`,
      worker: o.instanceId,
      served,
      logger: log,
      catchUpTimeoutMs: TUNING.control.catchUpTimeoutMs,
    });
    closers.push(["control listener", () => control.stop()]);
    await control.start();
    return { served, preparer, kafka, admin, control, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The config of another version of a served model, from the model repository. */
function versionConfig(config: PipelineConfig, model: string, version: string): ModelConfig {
  const root = config.modelRepository;
  if (!root) {
    throw new AimassError(
      "CONFIG_INVALID",
      `model "${model}" is configured inline; live version changes need a modelRepository`,
    );
  }
  return resolveVersion(
    root,
    model,
    version,
    config.models.find((m) => m.name === model),
  );
}
