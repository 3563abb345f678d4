// The overload bench's figures against issue 16's goals, and its Markdown section for
// bench/RESULTS.md. Pure: a result in, rows and text out.
import type { FigureRow } from '../figures.ts';
import { figuresTable } from '../run.ts';
import type { StartupResult } from './harness.ts';
import type { OverloadOptions, OverloadResult, OverloadRun } from './overload-run.ts';
import { latencySummary } from './phases.ts';
import { EFFECTIVE_PERIOD_METRIC, ELU_METRIC, gatesTrueAt, STRETCH_METRIC, type WindowStats } from './sampler.ts';

/** The API write rate the goal of "every gate True" is measured against (the operator's default --api-qps). */
export const API_WRITES_PER_SECOND = 200;
export const TIME_TO_GATE_GOAL_SECONDS = 5;
/** Slack on the stretched debounce for a flip to show. */
export const FLIP_SLACK_SECONDS = 5;
/**
 * A phase in which the operator used this much of a core (or reported this event-loop utilisation,
 * as a share) counts as saturated. On a shared machine others' work can hold its CPU below this
 * while it still cannot keep up; the event-loop delay and /metrics answer times show that.
 */
export const SATURATED_CPU_PERCENT = 90;

const SOURCE = 'bench/operator/overload.ts';

const n = (x: number) => x.toLocaleString('en');
const phaseOf = (r: OverloadRun, name: string) => r.phases.find((p) => p.name === name);
const orDash = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '–' : String(x));

/** Every gate True within twice what the API write rate alone allows. */
function allTrueRow(r: OverloadRun, o: OverloadOptions): FigureRow {
  const goal = (2 * r.pods) / API_WRITES_PER_SECOND;
  return {
    figure: `Every gate True, ${n(r.pods)} pods at a ${o.periodSeconds} s period`,
    value: r.allTrueSeconds,
    unit: 's',
    goal: `≤ 2 × ${n(r.pods)} / ${API_WRITES_PER_SECOND} writes/s = ${goal} s`,
    met: r.allTrueSeconds !== null && r.allTrueSeconds <= goal,
    source: SOURCE,
    note: `operator start → every gate True seen by a watch${r.allTrueSeconds === null ? `; not within ${o.startupDeadlineSeconds} s: ${n(r.gatesTrueAfterStartup)} True then` : ''}`,
  };
}

function timeToGateRow(r: OverloadRun): FigureRow {
  const t = r.timeToGate;
  const sum = latencySummary(t.latenciesMs);
  const stats = phaseOf(r, 'time to gate')?.stats;
  return {
    figure: `Time to gate p99, ${t.pods} new pods during the overload`,
    value: Number.isNaN(sum.p99Seconds) ? null : sum.p99Seconds,
    unit: 's',
    goal: `≤ ${TIME_TO_GATE_GOAL_SECONDS} s, every one`,
    met: t.missing === 0 && sum.p99Seconds <= TIME_TO_GATE_GOAL_SECONDS,
    source: SOURCE,
    note:
      `p50 ${orDash(sum.p50Seconds)} s, max ${orDash(sum.maxSeconds)} s, ${t.missing} not True by the deadline; ` +
      `${t.ratePerSecond}/s, pod IP → gate True seen by a watch; operator at ${orDash(stats?.cpuPercent)} % of a core`,
  };
}

/** The bound of a flip: the debounce stretched by the largest stretch reported in the phase (1 if none), + 5 s. */
export function flipBoundSeconds(o: OverloadOptions, stretch: number | null): number {
  return Math.round((o.failureThreshold * o.periodSeconds * (stretch ?? 1) + FLIP_SLACK_SECONDS) * 1000) / 1000;
}

function singleFlipRow(r: OverloadRun, o: OverloadOptions): FigureRow {
  const f = r.singleFlip;
  const stretch = phaseOf(r, 'single flips')?.stats.stretchMax ?? null;
  const bound = flipBoundSeconds(o, stretch);
  const samples = f.samples.filter((x): x is number => x !== null);
  const sum = latencySummary(samples.map((x) => x * 1000));
  const judged = f.samples.length - f.notTrueBefore.length;
  const late = judged - samples.length;
  return {
    figure: 'Single flip latency p99 during the overload',
    value: samples.length === 0 ? null : sum.p99Seconds,
    unit: 's',
    goal: `≤ debounce ${o.failureThreshold * o.periodSeconds} s × stretch ${stretch ?? '1 (not reported)'} + ${FLIP_SLACK_SECONDS} s = ${bound} s`,
    ...(judged > 0 ? { met: late === 0 && sum.p99Seconds <= bound } : {}),
    source: SOURCE,
    note:
      `p50 ${orDash(sum.p50Seconds)} s over ${samples.length} of ${f.samples.length} targets (${late} not False by the deadline, ` +
      `${f.notTrueBefore.length} not True before); target down → condition False seen by a watch`,
  };
}

function stretchRow(r: OverloadRun): FigureRow {
  const maxes = r.phases.map((p) => p.stats.stretchMax).filter((x): x is number => x !== null);
  const medians = r.phases.map((p) => `${p.name} ${orDash(p.stats.stretchMedian)}`).join(', ');
  const anySaturated = r.phases.some((p) => saturated(p.stats));
  return {
    figure: 'Probe period stretch factor, largest',
    value: maxes.length === 0 ? null : Math.max(...maxes),
    unit: '×',
    goal: 'reported while saturated',
    ...(anySaturated ? { met: maxes.length > 0 } : {}),
    source: SOURCE,
    note: `median per phase: ${medians}`,
  };
}

/** Whether the policy said so once the start-up ended: Degraded/Overloaded, its effective period, one Event. */
function saidSoRow(r: OverloadRun): FigureRow {
  const said = r.saidSo;
  const stretched = (phaseOf(r, 'start-up')?.stats.stretchMax ?? 1) > 1;
  return {
    figure: 'Effective period on the policy status after start-up',
    value: said.effectivePeriodSeconds,
    unit: 's',
    goal: 'Degraded=Overloaded with the effective period, one ProbesOverloaded Event, while stretched',
    ...(stretched
      ? {
          met:
            said.degradedReason === 'Overloaded' && said.effectivePeriodSeconds !== null && said.overloadedEvents === 1,
        }
      : {}),
    source: SOURCE,
    note: `Degraded reason ${said.degradedReason ?? '–'}, ${said.overloadedEvents} ProbesOverloaded Event(s); message: ${said.message ?? '–'}`,
  };
}

function costRows(r: OverloadRun): FigureRow[] {
  const per = r.phases
    .map((p) => `${p.name} ${orDash(p.stats.cpuPercent)} % at ${orDash(p.stats.probesPerSecond)} probes/s`)
    .join(', ');
  return [
    {
      figure: 'Operator CPU, start-up',
      value: phaseOf(r, 'start-up')?.stats.cpuPercent ?? null,
      unit: '% of a core',
      source: SOURCE,
      note: `${per}; ${r.cpuSeconds.toFixed(1)} CPU s in all`,
    },
    {
      figure: 'Operator peak RSS',
      value: r.peakRssMiB,
      unit: 'MiB',
      source: SOURCE,
      note: 'VmHWM of the operator process at the end of the run',
    },
  ];
}

/** The rows of one run: the issue's goals first, then what they cost. */
export function overloadRows(r: OverloadRun, o: OverloadOptions): FigureRow[] {
  return [allTrueRow(r, o), timeToGateRow(r), singleFlipRow(r, o), stretchRow(r), saidSoRow(r), ...costRows(r)];
}

/** The 10,000-pod start-up before and after: each figure's ratio, which must not exceed 1. */
export function startupComparison(before: StartupResult, after: StartupResult): FigureRow[] {
  const fields: Array<[keyof StartupResult, string, string]> = [
    ['probedOnceSeconds', 'every pod probed once', 's'],
    ['allTrueSeconds', 'every gate True', 's'],
    ['peakRssMiB', 'peak RSS', 'MiB'],
    ['cpuSeconds', 'CPU through start-up', 's'],
    ['auditedPodPatches', 'pod writes', 'PATCH pods/status'],
  ];
  return fields.map(([key, name, unit]) => {
    const b = before[key] as number;
    const a = after[key] as number;
    const ratio = Math.round((a / b) * 100) / 100;
    return {
      figure: `${n(after.pods)} pods: ${name}, after ÷ before`,
      value: ratio,
      unit: '×',
      goal: '≤ 1 (not worse)',
      met: ratio <= 1,
      source: SOURCE,
      note: `${a} ${unit} against ${b} ${unit}`,
    };
  });
}

const cell = (x: number | null) => (x === null ? '–' : n(x));

/** CPU-bound: a core's worth of CPU, or an event loop the operator reports as busy. */
export function saturated(w: WindowStats): boolean {
  return (
    (w.cpuPercent ?? 0) >= SATURATED_CPU_PERCENT || (w.eventLoopUtilizationMedian ?? 0) >= SATURATED_CPU_PERCENT / 100
  );
}

/** Gates True and pod writes every checkpoint through the start-up: the figure of a run that never finishes. */
export function progressTable(r: OverloadRun, every: number): string {
  const end = phaseOf(r, 'start-up')?.to ?? 0;
  const writes = new Map(r.podWritesPerInterval);
  const lines = [
    `| s since operator start | gates True | pod writes in the last ${every} s (per s) |`,
    '| --- | --- | --- |',
  ];
  for (const [t, gates] of gatesTrueAt(r.samples, every)) {
    if (t > end + every) break;
    const w = writes.get(t) ?? 0;
    lines.push(`| ${t} | ${n(gates)} | ${n(w)} (${(w / every).toFixed(1)}) |`);
  }
  return lines.join('\n');
}

/** One line per phase: when it ran and what the operator did meanwhile. */
export function phaseTable(r: OverloadRun): string {
  const lines = [
    '| phase | s since operator start | pod writes (per s) | CPU, % of a core | saturated | probes/s | stretch, largest / median | effective period, median s | event-loop utilisation, median | event-loop delay p99, median s | pod queue, largest | /metrics answer, median ms (late) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of r.phases) {
    const w = p.stats;
    const perSecond = w.seconds > 0 ? (p.podWrites / w.seconds).toFixed(1) : '–';
    lines.push(
      `| ${p.name} | ${p.from}–${p.to} | ${n(p.podWrites)} (${perSecond}) | ${cell(w.cpuPercent)} | ${saturated(w) ? 'yes' : 'no'} | ` +
        `${cell(w.probesPerSecond)} | ${cell(w.stretchMax)} / ${cell(w.stretchMedian)} | ${cell(w.effectivePeriodMedianSeconds)} | ` +
        `${cell(w.eventLoopUtilizationMedian)} | ${cell(w.eventLoopLagP99MedianSeconds)} | ${cell(w.maxPodQueue)} | ` +
        `${cell(w.metricsMedianMs)} (${w.metricsTimeouts}) |`,
    );
  }
  return lines.join('\n');
}

export interface SectionInput {
  date: string;
  commit: string;
  command: string;
  machine: string;
  /** The JSON file of the run, relative to bench/. */
  rawData: string;
  result: OverloadResult;
  /** The 10,000-pod start-up before and after, with where each came from. */
  comparison?: { before: string; after: string; rows: FigureRow[] };
}

/** The Markdown section for bench/RESULTS.md. */
export function overloadSection(i: SectionInput): string {
  const { result: res } = i;
  const o = res.options;
  const runs = res.runs.map(
    (r) => `### ${n(r.pods)} pods (pods created and Running in ${r.createSeconds} s by the bench)

${figuresTable(overloadRows(r, o))}

${phaseTable(r)}

${progressTable(r, o.checkpointSeconds)}
`,
  );
  const comparison = i.comparison
    ? `### 10,000 pods, before and after

Before: ${i.comparison.before}; after: ${i.comparison.after}.

${figuresTable(i.comparison.rows)}
`
    : '';
  return `## Overload: more probing than one CPU can do (issue 16)

Run with \`${i.command}\` on ${i.date} at commit ${i.commit} (${i.machine}), ${(res.seconds / 60).toFixed(1)} min in all.
Raw data, with every second's sample: [${i.rawData}](${i.rawData}).

${runs.join('\n')}
${comparison}
Method: for each pod count a control plane of its own (etcd + kube-apiserver, no controller manager)
and the pods of \`bench/operator/pods.ts\` (${o.createConcurrency} in flight), all created and Running before the
operator starts (\`node src/main.ts run --namespaces <ns> --log-level info${o.operatorArgs.length ? ` ${o.operatorArgs.join(' ')}` : ''}\`, one replica,
under the chart's RBAC). HTTP probes every ${o.periodSeconds} s (timeout ${o.timeoutSeconds} s, failureThreshold
${o.failureThreshold}) on ${o.sharedAddresses} shared loopback listeners plus one per flipped pod. Phases, one after the
other: start-up until every gate is True (deadline ${o.startupDeadlineSeconds} s); ${o.gateBatch} new pods at ${o.gateRate}/s
(deadline ${o.gateDeadlineSeconds} s); ${o.singleFlips} single flips ~${o.singleFlipSpacingSeconds} s apart of pods on
listeners of their own, once they are True (deadline ${o.flipDeadlineSeconds} s for that, again for False, again for True
after). Every second the bench reads the operator's CPU and RSS (/proc), gates True (its own
watch) and /metrics: \`readygate_probes_total\`, \`${STRETCH_METRIC}\`, \`${EFFECTIVE_PERIOD_METRIC}\`,
\`${ELU_METRIC}\`, \`nodejs_eventloop_lag_p99_seconds\` and the pod workqueue; "–" is a metric not
reported, "late" counts seconds in which /metrics did not answer within the second. Pod writes are the
operator's PATCH pods/status in the audit log. A phase counts as saturated at ≥ ${SATURATED_CPU_PERCENT} % of a core or an
event-loop utilisation ≥ ${SATURATED_CPU_PERCENT / 100}; on a shared machine others' work can hold the operator's CPU lower while
it still falls behind. The flip bound uses the largest stretch reported during the flips (1 if none).
`;
}
