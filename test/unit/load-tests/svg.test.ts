// The benchmark chart writer: one panel per entry, every series drawn and named, points that
// are not finite (a figure a run could not measure) left out instead of breaking the path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { svgChart } from "../../../load-tests/lib/svg.js";

test("panels side by side, each series a polyline with a legend entry", () => {
  const svg = svgChart(
    [
      {
        title: "Throughput",
        xLabel: "batch",
        yLabel: "events/s",
        logX: true,
        series: [
          {
            label: "delay 1",
            color: "#111111",
            points: [
              [1, 10],
              [16, 100],
              [128, 1000],
            ],
          },
          {
            label: "delay <5>",
            color: "#222222",
            points: [
              [1, 5],
              [128, Number.NaN],
            ],
          },
        ],
      },
      {
        title: "p99",
        xLabel: "batch",
        yLabel: "ms",
        logY: true,
        series: [
          {
            label: "p99",
            color: "#333333",
            points: [
              [1, 3],
              [2, 30],
            ],
          },
        ],
      },
    ],
    { panelWidth: 400, height: 300 },
  );
  assert.match(svg, /^<svg [^>]*width="800" height="300"/);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 3);
  assert.ok(svg.includes(">delay 1<") && svg.includes(">delay &lt;5>") && svg.includes(">p99<"));
  assert.ok(!svg.includes("NaN"), "a NaN point would corrupt the path");
  assert.equal((svg.match(/<circle /g) ?? []).length, 3 + 1 + 2);
});
