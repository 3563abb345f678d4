// Turns an operator benchmark result into rows of the results table, and draws the growth chart
// (start-up time and peak RSS against pod count; bench/operator/svg-chart.ts).
import type { FigureRow } from '../figures.ts';
import type { OperatorBenchResult } from './harness.ts';
import { lineChartSvg } from './svg-chart.ts';

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
  const series = (name: string, color: string, v: (p: (typeof pts)[number]) => number) => ({
    name,
    color,
    points: pts.map((p) => [p.pods, v(p)] as [number, number]),
  });
  return lineChartSvg({
    title: 'readygate operator: start-up and memory against pod count',
    caption,
    xLabel: 'pods',
    panels: [
      {
        title: 'Start-up (process start →)',
        yLabel: 'seconds',
        series: [
          series('every pod probed once', '#1f77b4', (p) => p.probedOnceSeconds),
          series('every gate True', '#ff7f0e', (p) => p.allTrueSeconds),
        ],
        goal: { value: r.options.periodSeconds + 10, label: 'goal (probed once): 1 period + 10 s' },
      },
      {
        title: 'Peak RSS of the operator (VmHWM)',
        yLabel: 'MiB',
        series: [series('peak RSS', '#2ca02c', (p) => p.peakRssMiB)],
        goal: { value: 256, label: 'goal at 10,000 pods: 256 MiB' },
      },
    ],
  });
}
