// Line charts against pod count, side by side, as plain SVG (no plotting dependency: the figures
// are a handful of points, and the output must diff well in git): bench/results/operator-growth.svg
// and bench/results/shards-growth.svg.

export interface ChartSeries {
  name: string;
  color: string;
  /** [x, y]; points with a y that is not finite are left out. */
  points: Array<[number, number]>;
  /** A label per point, in place of its value; '' for none (where points crowd). */
  labels?: string[];
}

export interface ChartPanel {
  title: string;
  yLabel: string;
  series: ChartSeries[];
  goal?: { value: number; label: string };
}

const PANEL_W = 380;
const PANEL_H = 250;
const TOP = 60;
const STEP = 440;

/** The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10 × a power of ten at or above v. */
export function niceMax(v: number): number {
  const mag = 10 ** Math.floor(Math.log10(Math.max(v, 1)));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * mag) return m * mag;
  return 10 * mag;
}

/** Panels of one x axis ("pods"), left to right, under a title and a caption. */
export function lineChartSvg(o: { title: string; caption: string; xLabel: string; panels: ChartPanel[] }): string {
  const W = 60 + o.panels.length * STEP;
  const H = 380;
  const xs = o.panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x)));
  const xMax = niceMax(Math.max(...xs, 1));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${xmlEscape(o.title)}</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${xmlEscape(o.caption)}</text>`,
  ];
  o.panels.forEach((p, i) => {
    out.push(...panelSvg(70 + i * STEP, xMax, o.xLabel, p));
  });
  out.push('</svg>', '');
  return out.join('\n');
}

function panelSvg(x0: number, xMax: number, xLabel: string, p: ChartPanel): string[] {
  const ys = p.series.flatMap((s) => s.points.map(([, y]) => y)).concat(p.goal ? [p.goal.value] : []);
  const yMax = niceMax(Math.max(...ys.filter(Number.isFinite), 0) * 1.1);
  const X = (v: number) => x0 + (v / xMax) * PANEL_W;
  const Y = (v: number) => TOP + PANEL_H - (v / yMax) * PANEL_H;
  const out = [
    `<text x="${x0 + PANEL_W / 2}" y="${TOP - 8}" text-anchor="middle" font-weight="bold">${xmlEscape(p.title)}</text>`,
    `<rect x="${x0}" y="${TOP}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#999"/>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const yv = (yMax * i) / 5;
    const xv = (xMax * i) / 5;
    out.push(
      `<line x1="${x0}" y1="${Y(yv)}" x2="${x0 + PANEL_W}" y2="${Y(yv)}" stroke="#eee"/>`,
      `<text x="${x0 - 6}" y="${Y(yv) + 4}" text-anchor="end">${fmt(yv)}</text>`,
      `<text x="${X(xv)}" y="${TOP + PANEL_H + 16}" text-anchor="middle">${fmt(xv)}</text>`,
    );
  }
  out.push(
    `<text x="${x0 + PANEL_W / 2}" y="${TOP + PANEL_H + 34}" text-anchor="middle">${xmlEscape(xLabel)}</text>`,
    `<text transform="translate(${x0 - 48},${TOP + PANEL_H / 2}) rotate(-90)" text-anchor="middle">${xmlEscape(p.yLabel)}</text>`,
  );
  if (p.goal) {
    // Named in the legend, under the series: a label on the line would collide with points near it.
    const ly = TOP + 16 + p.series.length * 18;
    out.push(
      `<line x1="${x0}" y1="${Y(p.goal.value)}" x2="${x0 + PANEL_W}" y2="${Y(p.goal.value)}" stroke="#c00" stroke-dasharray="5,4"/>`,
      `<line x1="${x0 + 10}" y1="${ly}" x2="${x0 + 22}" y2="${ly}" stroke="#c00" stroke-width="2" stroke-dasharray="3,2"/>`,
      `<text x="${x0 + 28}" y="${ly + 4}" fill="#c00">${xmlEscape(p.goal.label)}</text>`,
    );
  }
  // Labels placed so far in this panel: a label that would overlap one goes below its point, or further.
  const placed: Array<{ x: number; y: number }> = [];
  const labelY = (a: number, b: number): number => {
    const free = (y: number) => placed.every((q) => Math.abs(q.x - a) > 90 || Math.abs(q.y - y) > 13);
    const y = [b - 6, b + 17, b - 20, b + 31].find(free) ?? b - 6;
    placed.push({ x: a, y });
    return y;
  };
  p.series.forEach((se, k) => {
    const pts = se.points.flatMap(([x, y], i) => (Number.isFinite(y) ? [[X(x), Y(y), i] as const] : []));
    out.push(
      `<polyline fill="none" stroke="${se.color}" stroke-width="2" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>`,
    );
    for (const [a, b, i] of pts) {
      const label = se.labels?.[i] ?? fmt(se.points[i]![1]);
      out.push(`<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="4" fill="${se.color}"/>`);
      // Near the right edge a label goes to the left of its point, inside the panel.
      const right = a > x0 + 0.75 * PANEL_W;
      const at = right ? `x="${(a - 6).toFixed(1)}" text-anchor="end"` : `x="${(a + 6).toFixed(1)}"`;
      if (label) out.push(`<text ${at} y="${labelY(a, b).toFixed(1)}" fill="${se.color}">${xmlEscape(label)}</text>`);
    }
    out.push(
      `<rect x="${x0 + 10}" y="${TOP + 10 + k * 18}" width="12" height="12" fill="${se.color}"/>`,
      `<text x="${x0 + 28}" y="${TOP + 20 + k * 18}">${xmlEscape(se.name)}</text>`,
    );
  });
  return out;
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1000) return v.toLocaleString('en', { maximumFractionDigits: 0 });
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

export function xmlEscape(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
