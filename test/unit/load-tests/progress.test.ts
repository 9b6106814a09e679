// The progress line's formatting (pure) and the reporter's output on TTY and non-TTY streams.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import {
  formatDuration,
  formatProgress,
  formatRate,
  Progress,
  type Output,
} from "../../../load-tests/lib/progress.js";

test("a line with a total: count/total, percent, rate, eta", () => {
  assert.equal(
    formatProgress({
      label: "produce",
      done: 42_000,
      total: 100_000,
      rate: 18_300,
      etaS: 3.2,
      elapsedS: 2.3,
    }),
    "produce 42,000/100,000 (42%) 18.3k ev/s eta 3s",
  );
});

test("without a total, with extra text, unknown eta, and the final line", () => {
  assert.equal(
    formatProgress({ label: "produce", done: 1234, rate: 950.4, elapsedS: 1 }),
    "produce 1,234 950 ev/s",
  );
  assert.equal(
    formatProgress({ label: "read", done: 0, total: 10, rate: 0, elapsedS: 1, unit: "pred" }),
    "read 0/10 (0%) 0.0 pred/s eta ?",
  );
  assert.equal(
    formatProgress({
      label: "read",
      done: 9_990,
      total: 10_000,
      rate: 2_500_000,
      etaS: 0.004,
      elapsedS: 4,
      extra: "p99 12 ms",
      unit: "pred",
    }),
    "read 9,990/10,000 (99%) 2.50M pred/s eta 0.0s p99 12 ms",
  );
  assert.equal(
    formatProgress({
      label: "produce",
      done: 100_000,
      total: 100_000,
      rate: 20_000,
      elapsedS: 125,
      final: true,
    }),
    "produce 100,000/100,000 (100%) 20.0k ev/s in 2m05s",
  );
});

test("rates and durations", () => {
  assert.equal(formatRate(0), "0.0");
  assert.equal(formatRate(999), "999");
  assert.equal(formatRate(1000), "1.00k");
  assert.equal(formatRate(123_456), "123k");
  assert.equal(formatRate(Number.NaN), "?");
  assert.equal(formatDuration(0.25), "0.3s");
  assert.equal(formatDuration(59.4), "59s");
  assert.equal(formatDuration(3600 + 125), "1h02m");
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), "?");
});

function capture(isTTY: boolean): Output & { text: string } {
  const out = {
    isTTY,
    text: "",
    write(s: string) {
      out.text += s;
      return true;
    },
  };
  return out;
}

test("non-TTY: plain lines on the interval, one final line", async () => {
  const out = capture(false);
  const p = new Progress({ label: "produce", total: 100, out, intervalMs: 20, extra: () => "x" });
  p.update(40);
  await sleep(70);
  p.finish();
  p.finish(); // idempotent
  const lines = out.text.split("\n");
  assert.equal(lines.pop(), "", "ends with a newline");
  assert.ok(lines.length >= 2, out.text);
  assert.match(lines[0] as string, /^produce 40\/100 \(40%\) [\d.k]+ ev\/s eta \S+ x$/);
  assert.match(lines.at(-1) as string, /^produce 40\/100 \(40%\) [\d.k]+ ev\/s in \S+ x$/);
  assert.ok(!out.text.includes("\r"));
});

test("TTY: one line rewritten with \\r, padded over a longer one, newline at the end", async () => {
  const out = capture(true);
  let extra = "a long first extra";
  const p = new Progress({ label: "read", total: 10, out, intervalMs: 20, extra: () => extra });
  await sleep(50);
  extra = "";
  p.update(10);
  p.finish();
  assert.ok(out.text.startsWith("\rread 0/10 (0%)"), JSON.stringify(out.text));
  assert.ok(out.text.endsWith("\n"));
  assert.equal(out.text.split("\n").length, 2, "a single line");
  const last = out.text.slice(out.text.lastIndexOf("\r") + 1, -1);
  assert.match(last, /^read 10\/10 \(100%\) [\d.k]+ ev\/s in \S+ *$/);
});

test("quiet writes nothing", async () => {
  const out = capture(true);
  const p = new Progress({ label: "produce", out, quiet: true, intervalMs: 5 });
  p.update(5);
  await sleep(20);
  p.finish();
  assert.equal(out.text, "");
});
