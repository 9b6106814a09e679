// The one lifecycle every long-running aimass process follows (the predictor and the feature
// writer): starting → running → draining → stopped | failed. `runService()` (run-service.ts)
// drives it from a command: HTTP endpoints, signals, the failed watch and the exit code.

export type ServiceState = "starting" | "running" | "draining" | "stopped" | "failed";

export interface Service {
  readonly state: ServiceState;
  /** Ready to take traffic: started, a member of its group with work assigned, not draining. */
  readonly ready: boolean;
  /** Why the service is not ready (shown by /readyz); undefined when ready. */
  readonly notReadyReason: string | undefined;
  /**
   * Alive: /healthz. False once failed or stopped, and while the service has work it cannot
   * make progress on past its bound, so a supervisor restarts it.
   */
  readonly alive: boolean;
  /** Starts; rejects (state failed, resources closed) when the service cannot run. */
  start(): Promise<void>;
  /**
   * Drains within the service's grace time, then stops. Idempotent: every call returns the
   * same promise. Resolves with the exit code: 0 after a clean drain, 1 otherwise.
   */
  stop(): Promise<number>;
  /** Resolves once the service failed on its own (never rejects; never resolves otherwise). */
  readonly failed: Promise<unknown>;
}
