// The size limits an input record must meet before it is parsed: how many headers it has,
// how large one header is, and how large the whole record is (key, value and headers, as
// the broker and the DLQ copy carry them all). A record over any of them goes to the DLQ
// (stage "size") unparsed.
import { AimassError } from "../common/errors.js";
import type { PipelineConfig } from "../common/config/load.js";
import { bytesOf, headerEntries, recordBytes } from "../common/dlq.js";
import type { SourceRecord } from "../common/records.js";

export type InputLimits = Pick<PipelineConfig["input"], "maxRecordBytes" | "maxHeaders" | "maxHeaderBytes">;

/** The first limit the record breaks, as a PAYLOAD_TOO_LARGE error; undefined when it fits. */
export function sizeError(record: SourceRecord, limits: InputLimits): AimassError | undefined {
  const headers = headerEntries(record.headers);
  if (headers.length > limits.maxHeaders) {
    return tooLarge(`record has ${headers.length} headers, limit ${limits.maxHeaders} (input.maxHeaders)`, {
      limit: "input.maxHeaders",
    });
  }
  let headerBytes = 0;
  for (const [name, value] of headers) {
    const bytes = Buffer.byteLength(name) + bytesOf(value);
    if (bytes > limits.maxHeaderBytes) {
      return tooLarge(
        `header ${JSON.stringify(name.slice(0, 100))} is ${bytes} bytes, limit ${limits.maxHeaderBytes} (input.maxHeaderBytes)`,
        { limit: "input.maxHeaderBytes", header: name.slice(0, 100) },
      );
    }
    headerBytes += bytes;
  }
  const total = recordBytes(record);
  if (total > limits.maxRecordBytes) {
    const key = record.key?.length ?? 0;
    const value = record.value?.length ?? 0;
    return tooLarge(
      `record is ${total} bytes (value ${value}, key ${key}, headers ${headerBytes}), limit ${limits.maxRecordBytes} (input.maxRecordBytes)`,
      { limit: "input.maxRecordBytes" },
    );
  }
  return undefined;
}

function tooLarge(message: string, details: Record<string, unknown>): AimassError {
  return new AimassError("PAYLOAD_TOO_LARGE", message, { details });
}
