// A tiny progress reporter for the load CLIs, on stderr (stdout stays the report):
// - on a TTY, one line rewritten in place every 250 ms:
//     produce 42,000/100,000 (42%) 18.3k ev/s eta 3s
// - otherwise (CI logs, a file), a plain line at most every 2 s;
// - `finish()` prints the final line (average rate, elapsed time) and stops.
// Counting is a field store (`update(n)`), rendering runs on an unref'd timer, so neither a
// hot loop pays for it nor does it keep the process alive.

export interface ProgressLine {
  label: string;
  done: number;
  /** Known total, for `done/total (pct%)`. */
  total?: number | undefined;
  /** Events per second (current, or the average on the final line). */
  rate: number;
  /** Seconds left; omitted or non-finite: not shown ("eta ?" when a total is known). */
  etaS?: number | undefined;
  elapsedS: number;
  /** Appended as is, e.g. "p99 12.0 ms". */
  extra?: string | undefined;
  /** The final line: `in <elapsed>` instead of the eta. */
  final?: boolean;
  unit?: string | undefined;
}

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** 950, 18.3k, 1.25M: three significant digits from 1,000 up. */
export function formatRate(r: number): string {
  if (!Number.isFinite(r) || r < 0) return "?";
  if (r < 1000) return r < 10 ? r.toFixed(1) : int.format(r);
  const [v, s] = r < 1e6 ? [r / 1e3, "k"] : [r / 1e6, "M"];
  return `${v.toPrecision(3)}${s}`;
}

/** 3s, 2m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  if (seconds < 10) return `${seconds.toFixed(seconds < 1 ? 1 : 0)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One progress line, e.g. `produce 42,000/100,000 (42%) 18.3k ev/s eta 3s`. Pure. */
export function formatProgress(p: ProgressLine): string {
  const parts = [p.label];
  if (p.total !== undefined && p.total > 0) {
    const pct = Math.min(100, Math.floor((p.done / p.total) * 100));
    parts.push(`${int.format(p.done)}/${int.format(p.total)} (${pct}%)`);
  } else {
    parts.push(int.format(p.done));
  }
  parts.push(`${formatRate(p.rate)} ${p.unit ?? "ev"}/s`);
  if (p.final) parts.push(`in ${formatDuration(p.elapsedS)}`);
  else if (p.etaS !== undefined && Number.isFinite(p.etaS)) parts.push(`eta ${formatDuration(p.etaS)}`);
  else if (p.total !== undefined) parts.push("eta ?");
  if (p.extra) parts.push(p.extra);
  return parts.join(" ");
}

export interface Output {
  isTTY?: boolean;
  write(s: string): unknown;
}

export interface ProgressOptions {
  label: string;
  total?: number | undefined;
  /** Planned length in seconds (a `--duration` run): the eta counts down to it. */
  durationS?: number | undefined;
  /** Called at each render for text after the rate (e.g. a running p99). */
  extra?: () => string | undefined;
  quiet?: boolean;
  /** Default process.stderr. */
  out?: Output;
  /** Render interval; default 250 ms on a TTY, 2000 ms otherwise. */
  intervalMs?: number;
  unit?: string;
}

/** Current rate over about the last few seconds, from (time, done) samples. */
const WINDOW_MS = 3000;

export class Progress {
  readonly #o: ProgressOptions;
  readonly #out: Output;
  readonly #tty: boolean;
  readonly #started = performance.now();
  readonly #samples: Array<{ t: number; done: number }> = [];
  #done = 0;
  #timer: NodeJS.Timeout | undefined;
  #width = 0;
  #finished = false;

  constructor(o: ProgressOptions) {
    this.#o = o;
    this.#out = o.out ?? process.stderr;
    this.#tty = this.#out.isTTY === true;
    this.#samples.push({ t: this.#started, done: 0 });
    if (!o.quiet) {
      this.#timer = setInterval(() => this.#render(), o.intervalMs ?? (this.#tty ? 250 : 2000));
      this.#timer.unref();
    }
  }

  /** Sets the count done so far (cheap: rendering happens on the timer). */
  update(done: number): void {
    this.#done = done;
  }

  /** Stops the timer and prints the final line (unless quiet); idempotent. */
  finish(extra?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    if (this.#o.quiet) return;
    const elapsedS = (performance.now() - this.#started) / 1000;
    const line = formatProgress({
      label: this.#o.label,
      done: this.#done,
      total: this.#o.total,
      rate: this.#done / Math.max(elapsedS, 1e-3),
      elapsedS,
      extra: extra ?? this.#o.extra?.(),
      final: true,
      unit: this.#o.unit,
    });
    this.#write(line, true);
  }

  #render(): void {
    const now = performance.now();
    this.#samples.push({ t: now, done: this.#done });
    while (this.#samples.length > 2 && now - (this.#samples[1] as { t: number }).t >= WINDOW_MS) {
      this.#samples.shift();
    }
    const first = this.#samples[0] as { t: number; done: number };
    const rate = ((this.#done - first.done) * 1000) / Math.max(now - first.t, 1);
    const elapsedS = (now - this.#started) / 1000;
    const { total, durationS } = this.#o;
    let etaS: number | undefined;
    if (durationS !== undefined) etaS = Math.max(0, durationS - elapsedS);
    if (total !== undefined && rate > 0) {
      const byCount = Math.max(0, total - this.#done) / rate;
      etaS = etaS === undefined ? byCount : Math.min(etaS, byCount);
    }
    const line = formatProgress({
      label: this.#o.label,
      done: this.#done,
      total,
      rate,
      etaS,
      elapsedS,
      extra: this.#o.extra?.(),
      unit: this.#o.unit,
    });
    this.#write(line, false);
  }

  #write(line: string, final: boolean): void {
    if (!this.#tty) {
      this.#out.write(`${line}\n`);
      return;
    }
    // Pad over the previous, possibly longer, line rather than relying on terminal escapes.
    const padded = line.padEnd(this.#width);
    this.#width = line.length;
    this.#out.write(`\r${padded}${final ? "\n" : ""}`);
  }
}
