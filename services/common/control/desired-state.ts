// The desired state of one model on the control topic (compacted, key = model name), and
// the audit records every change and every worker's apply result append to the audit topic.
import { z } from "zod";
import { AimassError } from "../errors.js";

const version = z.string().regex(/^[A-Za-z0-9._-]+$/);

export const desiredStateSchema = z.strictObject({
  model: z.string().min(1),
  /** The version serving every key not routed to the canary. */
  active: version,
  /** A version serving `percent` % of keys, chosen by a stable hash of the record key. */
  canary: z.strictObject({ version, percent: z.number().gt(0).max(100) }).optional(),
  /** A version that sees every event and writes to the shadow topic only. */
  shadow: version.optional(),
  /** The active version before the last deploy, for `models rollback`. */
  previous: version.optional(),
  revision: z.int().min(1),
  updatedBy: z.string().min(1),
  updatedAt: z.int(),
  reason: z.string(),
});
export type DesiredState = z.infer<typeof desiredStateSchema>;

export function parseDesiredState(bytes: Buffer): DesiredState {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new AimassError("CONFIG_INVALID", "control record is not JSON", { cause: err });
  }
  const parsed = desiredStateSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new AimassError("CONFIG_INVALID", `invalid control record: ${issues}`);
  }
  return parsed.data;
}

export type AuditRecord =
  | { type: "change"; state: DesiredState }
  | {
      type: "apply";
      worker: string;
      model: string;
      revision: number;
      ok: boolean;
      /** What serves now on this worker. */
      serving: { active: string; canary?: string; shadow?: string };
      error?: string;
      loadMs: number;
      at: number;
    };

/**
 * Stable bucket in [0, 10000) for a record key: FNV-1a over the key bytes. Same key, same
 * bucket, on every worker and every restart, so a key always sees the same version.
 */
export function keyBucket(key: Buffer | null): number {
  let h = 0x811c9dc5;
  if (key) {
    for (const b of key) {
      h ^= b;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h % 10_000;
}

export function inCanary(key: Buffer | null, percent: number): boolean {
  return keyBucket(key) < Math.round(percent * 100);
}
