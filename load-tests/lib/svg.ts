// Minimal SVG line charts for benchmark results: panels side by side, each with its own axes,
// optional log scales and a legend. No dependencies, so results render anywhere (GitHub too).

export interface Series {
  label: string;
  color: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  logY?: boolean;
  series: Series[];
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f"];

export const color = (i: number): string => PALETTE[i % PALETTE.length] as string;

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const step = niceStep((hi - lo) / 4);
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step / 2; v += step) out.push(v);
  return out;
}

function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

const fmt = (v: number) =>
  v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : Number.isInteger(v) ? String(v) : v.toFixed(1);

/** Panels side by side in one SVG document. Non-finite points are skipped. */
export function svgChart(panels: Panel[], o: { panelWidth?: number; height?: number } = {}): string {
  const pw = o.panelWidth ?? 480;
  const H = o.height ?? 380;
  const m = { l: 64, r: 16, t: 30, b: 46 };
  const W = pw * panels.length;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  panels.forEach((p, i) => {
    const left = i * pw;
    const pts = p.series
      .flatMap((s) => s.points)
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const xs = pts.map(([x]) => x);
    const ys = pts.map(([, y]) => y);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = p.logY ? [Math.max(1e-9, Math.min(...ys)), Math.max(...ys)] : [0, Math.max(...ys) * 1.1];
    const tr = (v: number, lo: number, hi: number, log?: boolean) => {
      const [a, b, c] = log ? [Math.log10(v), Math.log10(lo), Math.log10(hi)] : [v, lo, hi];
      return c === b ? 0.5 : (a - b) / (c - b);
    };
    const yt = ticks(y0, y1, p.logY === true);
    const [ylo, yhi] = [Math.min(y0, ...yt), Math.max(y1, ...yt)];
    const X = (v: number) => left + m.l + tr(v, x0, x1, p.logX) * (pw - m.l - m.r);
    const Y = (v: number) => H - m.b - tr(v, ylo, yhi, p.logY) * (H - m.b - m.t);
    out.push(
      `<text x="${left + pw / 2}" y="16" text-anchor="middle" font-size="13">${esc(p.title)}</text>`,
      `<line x1="${left + m.l}" y1="${H - m.b}" x2="${left + pw - m.r}" y2="${H - m.b}" stroke="black"/>`,
      `<line x1="${left + m.l}" y1="${m.t}" x2="${left + m.l}" y2="${H - m.b}" stroke="black"/>`,
      `<text x="${left + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`,
      `<text transform="translate(${left + 14},${H / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`,
    );
    for (const v of yt) {
      out.push(
        `<line x1="${left + m.l}" y1="${Y(v)}" x2="${left + pw - m.r}" y2="${Y(v)}" stroke="#ddd"/>`,
        `<text x="${left + m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
      );
    }
    for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
      out.push(
        `<line x1="${X(v)}" y1="${H - m.b}" x2="${X(v)}" y2="${H - m.b + 4}" stroke="black"/>`,
        `<text x="${X(v)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(v)}</text>`,
      );
    }
    p.series.forEach((s, row) => {
      const sp = s.points
        .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
        .sort((a, b) => a[0] - b[0]);
      const dash = s.dashed ? ' stroke-dasharray="6 4"' : "";
      const d = sp.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
      out.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
      for (const [x, y] of sp) out.push(`<circle cx="${X(x)}" cy="${Y(y)}" r="3" fill="${s.color}"/>`);
      const ly = m.t + 8 + row * 14;
      out.push(
        `<line x1="${left + m.l + 10}" y1="${ly}" x2="${left + m.l + 30}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
        `<text x="${left + m.l + 35}" y="${ly + 4}">${esc(s.label)}</text>`,
      );
    });
  });
  out.push("</svg>", "");
  return out.join("\n");
}
