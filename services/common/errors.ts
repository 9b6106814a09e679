// One error type for the whole project: a stable string code, a cause, and a single place
// that decides whether an error is worth retrying. Codes (not classes) survive
// worker_thread boundaries, where prototypes are lost.

export type ErrorCode =
  | "CONFIG_INVALID"
  | "CONFIG_NOT_FOUND"
  | "MODEL_LOAD_FAILED"
  | "MODEL_SIGNATURE_MISMATCH"
  | "INFERENCE_FAILED"
  | "INFERENCE_POOL_CLOSED"
  | "DECODE_FAILED"
  | "SCHEMA_UNKNOWN"
  | "PAYLOAD_TOO_LARGE"
  | "FIELD_INVALID"
  | "TENSOR_SHAPE"
  | "ENCODE_FAILED"
  | "ROUTE_UNKNOWN"
  | "KAFKA_FENCED"
  | "KAFKA_TRANSIENT"
  | "KAFKA_RECORD_REJECTED"
  | "FEATURE_STORE_UNAVAILABLE"
  | "FEATURE_STALE"
  | "REGISTRY_UNAVAILABLE"
  | "MODEL_UNAVAILABLE"
  | "SHUTDOWN_TIMEOUT"
  | "USAGE";

/** Not the record's fault: the batch is aborted and retried, never sent to the DLQ. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "KAFKA_TRANSIENT",
  "FEATURE_STORE_UNAVAILABLE",
  "REGISTRY_UNAVAILABLE",
  "MODEL_UNAVAILABLE",
]);

export class AimassError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AimassError";
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  get canRetry(): boolean {
    return RETRYABLE.has(this.code);
  }
}

export function isAimassError(err: unknown, code?: ErrorCode): err is AimassError {
  return err instanceof AimassError && (code === undefined || err.code === code);
}

/** The error's class name for logs and DLQ headers ("AimassError:DECODE_FAILED", "KafkaJSError"...). */
export function errorClass(err: unknown): string {
  if (err instanceof AimassError) return `AimassError:${err.code}`;
  if (err instanceof Error) return err.name || err.constructor.name;
  return typeof err;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
