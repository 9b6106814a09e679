// Pads a JSON object to about a target size with an extra `pad` string field, so payload size
// can be swept without changing what the predictor reads (it ignores unknown fields).
// Sizes are UTF-8 bytes of the serialized value (the Kafka record value; key and headers
// are not counted).
import { AimassError } from "../../services/common/errors.js";

/** Bytes `,"pad":""` adds to an object before any padding characters. */
export const PAD_OVERHEAD = Buffer.byteLength(`,"pad":""`);

/**
 * `json` (a serialized object, `{...}`) with `"pad":"xxx…"` appended so that the result is
 * `targetBytes` long. A value that is already too large to take the field (shorter than
 * `targetBytes` by less than PAD_OVERHEAD) is returned as is: at most PAD_OVERHEAD - 1
 * bytes below the target, or above it if it was larger to begin with.
 */
export function padJson(json: string, targetBytes: number): string {
  const size = Buffer.byteLength(json);
  const room = targetBytes - size - PAD_OVERHEAD;
  if (room < 0) return json;
  if (!json.endsWith("}")) throw new Error("padJson expects a serialized JSON object");
  // `{}` takes the field without the separating comma.
  const sep = json === "{}" ? "" : ",";
  return `${json.slice(0, -1)}${sep}"pad":"${"x".repeat(sep ? room : room + 1)}"}`;
}

/**
 * The error for a `--payload-bytes` target below what an event needs; `sample` is an
 * unpadded event of the run.
 */
export function checkPadTarget(sample: string, targetBytes: number): void {
  const size = Buffer.byteLength(sample);
  if (!Number.isInteger(targetBytes) || targetBytes < size + PAD_OVERHEAD) {
    // A little headroom: later events of a run are a few bytes longer (ids, prices).
    const min = size + PAD_OVERHEAD + 16;
    throw new AimassError(
      "USAGE",
      `--payload-bytes ${targetBytes} is smaller than an event: unpadded it is ${size} bytes, ` +
        `padding adds ${PAD_OVERHEAD}; use at least ${min}`,
    );
  }
}
