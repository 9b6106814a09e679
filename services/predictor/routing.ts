// Which model a record goes to, and the headers its prediction carries. Pure functions of
// the pipeline config and the record, shared by the primary and the shadow path.
import type { IHeaders } from "kafkajs";
import type { PipelineConfig } from "../common/config/load.js";
import type { Decoded } from "../common/serde/codec.js";
import type { SourceRecord } from "../common/records.js";
import { getField } from "./tensorize.js";

export interface Route {
  /** The model name; undefined when nothing matches and there is no default. */
  model?: string;
  /** What the route was read from, for the DLQ message: "event", "header x", a field name. */
  by: string;
  value: unknown;
}

export function routeOf(routing: PipelineConfig["routing"], event: Decoded, headers: IHeaders): Route {
  let by = "event";
  let value: unknown;
  if (routing.header !== undefined && headers[routing.header] !== undefined) {
    by = `header ${routing.header}`;
    const h = headers[routing.header];
    value = (Array.isArray(h) ? h[0] : h)?.toString();
  } else if (routing.field !== undefined) {
    by = routing.field;
    value = getField(event, routing.field);
  }
  const key = typeof value === "string" || typeof value === "number" ? String(value) : undefined;
  // Own keys only: a value such as "constructor" or "__proto__" must not find Object.prototype.
  const routed = key !== undefined && Object.hasOwn(routing.routes, key) ? routing.routes[key] : undefined;
  const model = routed ?? routing.default;
  return { ...(model !== undefined ? { model } : {}), by, value };
}

/**
 * Input headers pass through (correlation ids, tenant tags); with tracing on, `traceparent`
 * is replaced by the prediction's own span so the trace continues. aimass adds lineage
 * unless `output.lineageHeaders` is off.
 */
export function outputHeaders(
  lineage: boolean,
  record: SourceRecord,
  model: { name: string; version: string },
  trace: Record<string, string>,
): IHeaders {
  if (!lineage) return { ...record.headers, ...trace };
  return {
    ...record.headers,
    ...trace,
    "aimass.model.name": model.name,
    "aimass.model.version": model.version,
    "aimass.source.topic": record.topic,
    "aimass.source.partition": String(record.partition),
    "aimass.source.offset": record.offset,
  };
}
