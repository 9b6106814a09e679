// Structured JSON logs on stderr, one object per line, written through pino. Payloads are never
// logged by default: callers pass ids, topics and offsets, not record contents. What does get
// logged is scrubbed: secret-named fields are redacted and URL passwords masked, so a config
// or an error message that carries credentials does not leak them into log storage.

import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: ReadonlySet<string> = new Set<LogLevel>(["debug", "info", "warn", "error"]);

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Default: AIMASS_LOG_LEVEL, else info. */
  level?: LogLevel;
  /** Fields on every line. */
  base?: Record<string, unknown>;
  /** Receives each line without its newline, instead of stderr (tests). */
  write?: (line: string) => void;
}

const REDACTED = "[redacted]";

/**
 * Field names whose values never reach a log line, wherever they appear in the first four
 * levels of a line. An explicit list, not a pattern: `key` is a Kafka record key, `ssl.key`
 * is key material.
 */
const SECRET_FIELDS = [
  "password",
  "passwd",
  "passphrase",
  "secret",
  "clientSecret",
  "client_secret",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "apiKey",
  "api_key",
  "apikey",
  "x-api-key",
  "authorization",
  "Authorization",
  "cookie",
  "Cookie",
  "set-cookie",
  "Set-Cookie",
  "sasl",
  "credentials",
  "privateKey",
  "private_key",
];
/** Key material under its usual parent; a bare `key` is left alone. */
const SECRET_PATHS = ["ssl.key", "tls.key"];
const REDACT_DEPTH = 4;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function redactPaths(): string[] {
  const paths: string[] = [];
  for (let depth = 0; depth < REDACT_DEPTH; depth++) {
    const wildcards = Array.from({ length: depth }, () => "*").join(".");
    const under = (path: string): string => (wildcards === "" ? path : `${wildcards}.${path}`);
    for (const field of SECRET_FIELDS) {
      paths.push(IDENTIFIER.test(field) ? under(field) : `${wildcards}["${field}"]`);
    }
    for (const path of SECRET_PATHS) paths.push(under(path));
  }
  return paths;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = "info"): LogLevel {
  return value !== undefined && LEVELS.has(value) ? (value as LogLevel) : fallback;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const root = pino(
    {
      level: options.level ?? parseLogLevel(process.env.AIMASS_LOG_LEVEL),
      base: sanitize(options.base ?? {}),
      timestamp: pino.stdTimeFunctions.isoTime,
      // Replaces pino's default err serializer (stacks, "type"): every Error, under any key, is
      // already shaped by sanitize() below.
      serializers: { err: (value: unknown) => value },
      redact: { paths: redactPaths(), censor: REDACTED },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => sanitize(bindings),
        log: (fields) => sanitize(fields),
      },
    },
    options.write === undefined ? stderr() : lineSink(options.write),
  );
  return wrap(root);
}

function wrap(instance: PinoLogger): Logger {
  // msg goes in the object rather than as pino's message argument, which pino writes last:
  // log consumers (and tests) match `"msg":"..."` followed by the line's fields.
  const emit =
    (level: LogLevel) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (instance.isLevelEnabled(level)) instance[level]({ msg, ...fields });
    };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (fields) => wrap(instance.child(fields)),
  };
}

let stderrDestination: DestinationStream | undefined;

/** One synchronous stderr stream for every logger: a crash loses no line that was logged. */
function stderr(): DestinationStream {
  stderrDestination ??= pino.destination({ fd: 2, sync: true });
  return stderrDestination;
}

function lineSink(write: (line: string) => void): DestinationStream {
  return { write: (chunk: string) => write(chunk.endsWith("\n") ? chunk.slice(0, -1) : chunk) };
}

// Beyond this a value is cut, not walked: log fields are ids and small records, and a deep
// structure here is a mistake that should not cost a stack.
const MAX_DEPTH = 8;
const TOO_DEEP = "[too deep]";
const CIRCULAR = "[circular]";

// scheme://userinfo@ with a bounded scheme, so scanning a long string stays linear. The
// userinfo runs to the authority's last "@" (a raw "@" in a password is common).
const URL_USERINFO = /\b([a-z][a-z0-9+.-]{0,31}:\/\/)([^\s/?#"'<>]*)@/gi;

/** `redis://user:pass@host` -> `redis://user:[redacted]@host`; a bare token user is masked whole. */
export function maskUrlCredentials(text: string): string {
  if (!text.includes("://")) return text;
  return text.replace(URL_USERINFO, (_match, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    const masked = colon >= 0 ? `${userinfo.slice(0, colon)}:${REDACTED}` : REDACTED;
    return `${scheme}${masked}@`;
  });
}

/**
 * A copy that JSON can carry as we want it: Errors as {name, message, code?}, bigints as
 * strings, and URL credentials masked in every string.
 */
function sanitize(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ancestors = new Set<object>([fields]);
  for (const [key, value] of Object.entries(fields)) out[key] = clean(value, 1, ancestors);
  return out;
}

function clean(value: unknown, depth: number, ancestors: Set<object>): unknown {
  if (typeof value === "string") return maskUrlCredentials(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Error) return errorShape(value);
  if (ancestors.has(value)) return CIRCULAR;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === "function") return clean(json.call(value) as unknown, depth, ancestors);
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((v: unknown) => clean(v, depth + 1, ancestors));
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = clean(v, depth + 1, ancestors);
    return out;
  } finally {
    ancestors.delete(value);
  }
}

function errorShape(err: Error): Record<string, unknown> {
  const shape: Record<string, unknown> = { name: err.name, message: maskUrlCredentials(err.message) };
  if ("code" in err) shape.code = err.code;
  return shape;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
