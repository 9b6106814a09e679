// Turns decoded events into model input rows and model outputs back into prediction fields,
// following the tensor mapping in the pipeline config. Every way an event can fail to fit
// (missing field, non-finite number, a number float32 cannot hold, unknown category, wrong
// vector length) is a typed error naming the field, so the record goes to the DLQ instead
// of poisoning its batch; an output that is not finite fails its own record the same way.
import { AimassError } from "../common/errors.js";
import type { ColumnConfig, ModelConfig, TensorInputConfig, Transform } from "../common/config/schema.js";
import type { NamedTensors, TensorData } from "./inference/types.js";

/** One event's values for every input tensor, already flattened to the tensor's width. */
export type Row = Record<string, number[]>;

/** Features looked up for one event: view name → feature name → value (defaults applied). */
export type FeatureValues = Record<string, Record<string, number>>;

/** The largest finite float32: anything larger becomes ±Infinity in a Float32Array. */
export const FLOAT32_MAX = 3.4028234663852886e38;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export function inputWidth(input: TensorInputConfig): number {
  return input.columns.reduce((w, c) => w + columnWidth(c), 0);
}

function columnWidth(c: ColumnConfig): number {
  if ("oneHot" in c) return c.oneHot.length;
  if ("length" in c) return c.length;
  return 1;
}

/** Reads a (possibly dotted) field path. */
export function getField(event: Record<string, unknown>, path: string): unknown {
  if (!path.includes(".")) return event[path];
  let cur: unknown = event;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function finite(value: unknown, field: string): number {
  const n = typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : Number.NaN;
  if (value === undefined || value === null) {
    throw new AimassError("FIELD_INVALID", `field "${field}" is missing`, { details: { field } });
  }
  if (!Number.isFinite(n)) {
    throw new AimassError("FIELD_INVALID", `field "${field}" is not a finite number`, { details: { field } });
  }
  return n;
}

function pushColumn(
  out: number[],
  c: ColumnConfig,
  event: Record<string, unknown>,
  features: FeatureValues | undefined,
): void {
  if ("constant" in c) {
    out.push(c.constant);
    return;
  }
  if ("feature" in c) {
    const [view = "", name = ""] = c.feature.split(".");
    const value = features?.[view]?.[name];
    if (value === undefined) {
      // Lookup always fills defaults, so this is a wiring error, not the event's fault.
      throw new AimassError("FIELD_INVALID", `feature "${c.feature}" was not looked up`, {
        details: { field: c.feature },
      });
    }
    pushNumber(out, c.transform, finite(value, c.feature), c.feature);
    return;
  }
  const value = getField(event, c.field);
  if ("oneHot" in c) {
    const idx = c.oneHot.indexOf(String(value));
    if (value === undefined || value === null || idx === -1) {
      throw new AimassError("FIELD_INVALID", `field "${c.field}" must be one of ${c.oneHot.join("|")}`, {
        details: { field: c.field },
      });
    }
    for (let i = 0; i < c.oneHot.length; i++) out.push(i === idx ? 1 : 0);
    return;
  }
  if ("length" in c) {
    if (!Array.isArray(value) || value.length !== c.length) {
      const got = Array.isArray(value)
        ? `length ${value.length}`
        : value === undefined
          ? "missing"
          : typeof value;
      throw new AimassError(
        "TENSOR_SHAPE",
        `field "${c.field}" must be an array of length ${c.length}, got ${got}`,
        {
          details: { field: c.field },
        },
      );
    }
    for (const v of value) out.push(finite(v, c.field));
    return;
  }
  pushNumber(out, c.transform, finite(value, c.field), c.field);
}

function pushNumber(out: number[], transform: Transform, n: number, field: string): void {
  switch (transform) {
    case "identity":
      out.push(n);
      return;
    case "bool":
      out.push(n === 0 ? 0 : 1);
      return;
    case "log1p":
      if (n <= -1) {
        throw new AimassError("FIELD_INVALID", `field "${field}" must be > -1 for log1p`, {
          details: { field },
        });
      }
      out.push(Math.log1p(n));
      return;
    case "hourSin":
    case "hourCos": {
      const angle = ((((n % DAY_MS) + DAY_MS) % DAY_MS) / DAY_MS) * 2 * Math.PI;
      out.push(transform === "hourSin" ? Math.sin(angle) : Math.cos(angle));
      return;
    }
  }
}

/** Builds one event's row for a model; throws AimassError(FIELD_INVALID | TENSOR_SHAPE). */
export function toRow(model: ModelConfig, event: Record<string, unknown>, features?: FeatureValues): Row {
  const row: Row = {};
  for (const input of model.inputs) {
    const values: number[] = [];
    for (const c of input.columns) pushColumn(values, c, event, features);
    if (input.type === "int64") {
      values.forEach((v, i) => {
        if (!Number.isSafeInteger(v)) {
          const field = fieldOfPosition(input, i);
          throw new AimassError(
            "FIELD_INVALID",
            `field "${field}" must be an integer (input "${input.name}" is int64)`,
            {
              details: { field },
            },
          );
        }
      });
    } else {
      // The value the tensor receives (after the transform): 1e39 is finite here but would
      // reach the model as Infinity.
      values.forEach((v, i) => {
        if (Math.abs(v) > FLOAT32_MAX) {
          const field = fieldOfPosition(input, i);
          throw new AimassError(
            "FIELD_INVALID",
            `field "${field}" is ${v}, beyond float32's range ±${FLOAT32_MAX} (input "${input.name}" is float32)`,
            { details: { field } },
          );
        }
      });
    }
    row[input.name] = values;
  }
  return row;
}

/** The event field behind position `i` of an input's row, for error messages. */
function fieldOfPosition(input: TensorInputConfig, i: number): string {
  let pos = 0;
  for (const c of input.columns) {
    pos += columnWidth(c);
    if (i < pos) return "field" in c ? c.field : "feature" in c ? c.feature : "(constant)";
  }
  return input.name;
}

/** Stacks rows into [batch, width] tensors. */
export function toTensors(model: ModelConfig, rows: Row[]): NamedTensors {
  const tensors: NamedTensors = {};
  for (const input of model.inputs) {
    const width = inputWidth(input);
    const n = rows.length * width;
    const data: Float32Array | BigInt64Array =
      input.type === "int64" ? new BigInt64Array(n) : new Float32Array(n);
    rows.forEach((row, r) => {
      const values = row[input.name] ?? [];
      for (let i = 0; i < width; i++) {
        const v = values[i] ?? 0;
        if (data instanceof BigInt64Array) data[r * width + i] = BigInt(v);
        else data[r * width + i] = v;
      }
    });
    tensors[input.name] = { type: input.type, data, dims: [rows.length, width] } satisfies TensorData;
  }
  return tensors;
}

/** Splits [batch, width] outputs into one fields object per row. */
export function fromTensors(
  model: ModelConfig,
  outputs: NamedTensors,
  batch: number,
): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = Array.from({ length: batch }, () => ({}));
  for (const out of model.outputs) {
    const t = outputs[out.name];
    if (!t || t.data.length !== batch * out.width) {
      throw new AimassError(
        "INFERENCE_FAILED",
        `output "${out.name}" has ${t?.data.length ?? 0} values, expected ${batch}×${out.width}`,
      );
    }
    for (let r = 0; r < batch; r++) {
      const slice = Array.from(t.data.subarray(r * out.width, (r + 1) * out.width), Number);
      (rows[r] as Record<string, unknown>)[out.field] = out.width === 1 ? slice[0] : slice;
    }
  }
  return rows;
}

/**
 * The error for one row's outputs when any value is NaN or ±Infinity (a prediction must never
 * carry them: JSON would write null); undefined when every value is finite.
 */
export function nonFiniteOutput(
  model: ModelConfig,
  fields: Record<string, unknown>,
): AimassError | undefined {
  for (const out of model.outputs) {
    const value = fields[out.field];
    const values: unknown[] = Array.isArray(value) ? value : [value];
    const i = values.findIndex((v) => typeof v !== "number" || !Number.isFinite(v));
    if (i !== -1) {
      const at = Array.isArray(value) ? ` at index ${i}` : "";
      return new AimassError(
        "INFERENCE_FAILED",
        `model output "${out.name}" (field "${out.field}") is ${String(values[i])}${at} for this record, not a finite number`,
        { details: { output: out.name, field: out.field } },
      );
    }
  }
  return undefined;
}
