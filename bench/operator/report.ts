// Turns an operator benchmark result into rows of the results table, and draws the growth chart
// (start-up time and peak RSS against pod count) as a hand-written SVG.
import type { FigureRow } from '../figures.ts';
import type { OperatorBenchResult } from './harness.ts';

const SOURCE = 'bench/figures/operator.ts';
const n = (x: number) => x.toLocaleString('en');

/** The rows, named as in docs/benchmarks.md's table of figures. */
export function operatorFigureRows(r: OperatorBenchResult): FigureRow[] {
  const o = r.options;
  const rows: FigureRow[] = [];
  const period = o.periodSeconds;
  for (const st of r.startup) {
    const goal = period + 10;
    rows.push({
      figure: `Start-up: ${n(st.pods)} pods`,
      value: st.probedOnceSeconds,
      unit: 's',
      goal: `≤ 1 period + 10 s = ${goal} s`,
      met: st.probedOnceSeconds <= goal,
      note: `process start → every pod probed once; every gate True after ${st.allTrueSeconds} s (${n(st.auditedPodPatches)} pod writes)`,
      source: SOURCE,
    });
  }
  for (const st of r.startup) {
    const judged = st.pods === 10000;
    rows.push({
      figure: `RSS with ${n(st.pods)} probed pods`,
      value: st.peakRssMiB,
      unit: 'MiB',
      ...(judged ? { goal: '≤ 256 MiB', met: st.peakRssMiB <= 256 } : {}),
      note: `peak (VmHWM) of the operator process through start-up; CPU ${st.cpuSeconds.toFixed(1)} s`,
      source: SOURCE,
    });
  }
  if (r.steady) {
    const w = r.steady;
    rows.push({
      figure: `Steady-state API writes, ${n(w.pods)} healthy pods, ${w.seconds >= 60 ? `${Math.round(w.seconds / 60)} min` : `${Math.round(w.seconds)} s`}`,
      value: w.podStatusPatches,
      unit: 'PATCH pods/status',
      goal: '0',
      met: w.podStatusPatches === 0,
      note: `audit log; ${w.allWrites} writes of any kind; ${w.probesPerSecond} probes/s at ${w.cpuPercent} % of a core, RSS ${w.rssMiB} MiB`,
      source: SOURCE,
    });
  }
  if (r.massFlip) {
    const m = r.massFlip;
    rows.push({
      figure: `Mass flip: ${n(m.pods)} pods fail at once`,
      value: m.beyondDebounceSeconds,
      unit: 's beyond the debounce',
      goal: '≤ 5 s beyond the debounce',
      met: m.beyondDebounceSeconds <= 5,
      note: `all False ${m.allFalseSeconds} s after the listeners closed, debounce ${m.debounceSeconds} s (failureThreshold × period), first False at ${m.firstFalseSeconds} s, ${m.othersFlipped} other pods flipped`,
      source: SOURCE,
    });
  }
  if (r.singleFlip) {
    const f = r.singleFlip;
    rows.push({
      figure: 'Single flip latency p99',
      value: f.p99Seconds,
      unit: 's',
      goal: `≤ failureThreshold × period + 250 ms = ${f.boundSeconds} s`,
      met: f.p99Seconds <= f.boundSeconds,
      note: `p50 ${f.p50Seconds} s over ${f.samples.length} targets, target down → condition False seen by a watch`,
      source: SOURCE,
    });
  }
  if (r.timeToGate) {
    const t = r.timeToGate;
    rows.push({
      figure: 'Time to gate p99',
      value: t.p99Seconds,
      unit: 's',
      goal: `≤ initialDelaySeconds + 1 s = ${t.goalSeconds} s`,
      met: t.p99Seconds <= t.goalSeconds,
      note: `p50 ${t.p50Seconds} s, max ${t.maxSeconds} s over ${n(t.pods)} new pods arriving at ${t.ratePerSecond}/s, pod IP → gate True seen by a watch`,
      source: SOURCE,
    });
  }
  return rows;
}

/** A two-panel SVG: start-up times (probed once, all gates True) and peak RSS against pods. */
export function growthSvg(r: OperatorBenchResult, caption: string): string {
  const pts = r.startup;
  const W = 940;
  const H = 380;
  const panelW = 380;
  const panelH = 250;
  const top = 60;
  const left = [70, 510];
  const maxN = Math.max(...pts.map((p) => p.pods));
  const niceMax = (v: number) => {
    const mag = 10 ** Math.floor(Math.log10(Math.max(v, 1)));
    for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * mag) return m * mag;
    return 10 * mag;
  };
  const xMax = niceMax(maxN);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">readygate operator: start-up and memory against pod count</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${xmlEscape(caption)}</text>`,
  );
  const panel = (
    x0: number,
    title: string,
    yLabel: string,
    series: { name: string; color: string; values: number[] }[],
    goal?: { value: number; label: string },
  ) => {
    const all = series.flatMap((s) => s.values).concat(goal ? [goal.value] : []);
    const yMax = niceMax(Math.max(...all.filter(Number.isFinite)) * 1.1);
    const X = (v: number) => x0 + (v / xMax) * panelW;
    const Y = (v: number) => top + panelH - (v / yMax) * panelH;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 8}" text-anchor="middle" font-weight="bold">${title}</text>`);
    out.push(`<rect x="${x0}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#999"/>`);
    for (let i = 0; i <= 5; i++) {
      const yv = (yMax * i) / 5;
      const xv = (xMax * i) / 5;
      out.push(
        `<line x1="${x0}" y1="${Y(yv)}" x2="${x0 + panelW}" y2="${Y(yv)}" stroke="#eee"/>`,
        `<text x="${x0 - 6}" y="${Y(yv) + 4}" text-anchor="end">${fmt(yv)}</text>`,
        `<text x="${X(xv)}" y="${top + panelH + 16}" text-anchor="middle">${fmt(xv)}</text>`,
      );
    }
    out.push(
      `<text x="${x0 + panelW / 2}" y="${top + panelH + 34}" text-anchor="middle">pods</text>`,
      `<text transform="translate(${x0 - 48},${top + panelH / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
    );
    if (goal) {
      out.push(
        `<line x1="${x0}" y1="${Y(goal.value)}" x2="${x0 + panelW}" y2="${Y(goal.value)}" stroke="#c00" stroke-dasharray="5,4"/>`,
        `<text x="${x0 + panelW - 4}" y="${Y(goal.value) - 5}" text-anchor="end" fill="#c00">${xmlEscape(goal.label)}</text>`,
      );
    }
    series.forEach((se, k) => {
      const p = pts.map((pt, i) => [X(pt.pods), Y(se.values[i] ?? 0)] as const);
      out.push(
        `<polyline fill="none" stroke="${se.color}" stroke-width="2" points="${p.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>`,
      );
      p.forEach(([a, b], i) => {
        out.push(
          `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="4" fill="${se.color}"/>`,
          `<text x="${(a + 6).toFixed(1)}" y="${(b - 6).toFixed(1)}" fill="${se.color}">${fmt(se.values[i] ?? 0)}</text>`,
        );
      });
      out.push(
        `<rect x="${x0 + 10}" y="${top + 10 + k * 18}" width="12" height="12" fill="${se.color}"/>`,
        `<text x="${x0 + 28}" y="${top + 20 + k * 18}">${xmlEscape(se.name)}</text>`,
      );
    });
  };
  panel(
    left[0]!,
    'Start-up (process start →)',
    'seconds',
    [
      { name: 'every pod probed once', color: '#1f77b4', values: pts.map((p) => p.probedOnceSeconds) },
      { name: 'every gate True', color: '#ff7f0e', values: pts.map((p) => p.allTrueSeconds) },
    ],
    { value: r.options.periodSeconds + 10, label: `goal (probed once): 1 period + 10 s` },
  );
  panel(
    left[1]!,
    'Peak RSS of the operator (VmHWM)',
    'MiB',
    [{ name: 'peak RSS', color: '#2ca02c', values: pts.map((p) => p.peakRssMiB) }],
    { value: 256, label: 'goal at 10,000 pods: 256 MiB' },
  );
  out.push('</svg>', '');
  return out.join('\n');
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1000) return v.toLocaleString('en', { maximumFractionDigits: 0 });
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function xmlEscape(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
