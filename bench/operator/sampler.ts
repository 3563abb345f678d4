// The operator as the overload bench sees it, once a second: gates True (the benchmark's watch),
// CPU and RSS (/proc), and from /metrics the probes made, the period stretch the operator reports,
// its effective period for the policy, its event-loop utilisation and delay, and the pod workqueue. A metric
// the operator does not export yet is null ("not reported"); so is every metric of a second in
// which /metrics did not answer in time, which a saturated event loop shows first.
import { setTimeout as sleep } from 'node:timers/promises';
import { metricValue, percentile, procSample } from './proc.ts';

export const STRETCH_METRIC = 'readygate_probe_period_stretch';
export const EFFECTIVE_PERIOD_METRIC = 'readygate_probe_effective_period_seconds';
export const ELU_METRIC = 'readygate_event_loop_utilization';

export interface OverloadSample {
  /** Seconds since the operator process started. */
  t: number;
  gatesTrue: number;
  /** user + system CPU of the operator so far, ms. */
  cpuMs: number | null;
  rssMiB: number | null;
  probes: number | null;
  stretch: number | null;
  effectivePeriodSeconds: number | null;
  eventLoopUtilization: number | null;
  /** p99 of the event loop's delay since the previous scrape (prom-client's default metric). */
  eventLoopLagP99Seconds: number | null;
  /** The longest event loop delay since the previous scrape: a block of seconds shows here, not in the p99. Absent from older JSON. */
  eventLoopLagMaxSeconds?: number | null;
  podQueue: number | null;
  /** How long /metrics took to answer; null if it did not within the sample's time. */
  metricsMs: number | null;
}

export interface SampledOperator {
  pid: number;
  /** performance.now() at the operator's start. */
  t0: number;
  namespace: string;
  policy: string;
  metrics: (timeoutMs: number) => Promise<string>;
  gatesTrue: () => number;
}

/** The metric fields of a sample from a /metrics text. */
export function readMetrics(
  text: string,
  namespace: string,
  policy: string,
): Omit<OverloadSample, 't' | 'gatesTrue' | 'cpuMs' | 'rssMiB' | 'metricsMs'> {
  return {
    probes: metricValue(text, 'readygate_probes_total'),
    stretch: metricValue(text, STRETCH_METRIC),
    effectivePeriodSeconds: metricValue(
      text,
      EFFECTIVE_PERIOD_METRIC,
      (l) => l.includes(`namespace="${namespace}"`) && l.includes(`policy="${policy}"`),
    ),
    eventLoopUtilization: metricValue(text, ELU_METRIC),
    eventLoopLagP99Seconds: metricValue(text, 'nodejs_eventloop_lag_p99_seconds'),
    eventLoopLagMaxSeconds: metricValue(text, 'nodejs_eventloop_lag_max_seconds'),
    podQueue: metricValue(text, 'readygate_workqueue_depth', (l) => l.includes('controller="pod"')),
  };
}

async function sample(op: SampledOperator, timeoutMs: number): Promise<OverloadSample> {
  const at = performance.now();
  const proc = procSample(op.pid);
  const gatesTrue = op.gatesTrue();
  const text = await op.metrics(timeoutMs).catch(() => undefined);
  const metricsMs = text === undefined ? null : Math.round(performance.now() - at);
  return {
    t: Math.round(at - op.t0) / 1000,
    gatesTrue,
    cpuMs: proc?.cpuMs ?? null,
    rssMiB: proc ? Math.round(proc.rssKiB / 102.4) / 10 : null,
    ...readMetrics(text ?? '', op.namespace, op.policy),
    metricsMs,
  };
}

export interface Sampler {
  samples: OverloadSample[];
  stop(): Promise<void>;
}

/** Samples every intervalMs (a tick whose /metrics is slower than that is skipped) until stopped. */
export function startSampler(op: SampledOperator, intervalMs = 1000): Sampler {
  const samples: OverloadSample[] = [];
  const stopping = new AbortController();
  const loop = (async () => {
    let next = performance.now();
    while (!stopping.signal.aborted) {
      samples.push(await sample(op, intervalMs));
      next += intervalMs * Math.max(1, Math.ceil((performance.now() - next) / intervalMs));
      await sleep(next - performance.now(), undefined, { signal: stopping.signal }).catch(() => {});
    }
  })();
  return {
    samples,
    stop: async () => {
      stopping.abort();
      await loop;
    },
  };
}

/** What the samples in [from, to] (seconds since the operator's start) say. */
export interface WindowStats {
  seconds: number;
  /** Largest and median stretch reported; null if the operator reported none. */
  stretchMax: number | null;
  stretchMedian: number | null;
  effectivePeriodMedianSeconds: number | null;
  eventLoopUtilizationMedian: number | null;
  eventLoopLagP99MedianSeconds: number | null;
  /** CPU of the operator over the window, % of one core. */
  cpuPercent: number | null;
  probesPerSecond: number | null;
  maxRssMiB: number | null;
  maxPodQueue: number | null;
  /** Median time /metrics took to answer, and the samples in which it did not within the interval. */
  metricsMedianMs: number | null;
  metricsTimeouts: number;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The median and largest of the non-null values; nulls when there are none. */
function spread(values: (number | null)[]): { median: number | null; max: number | null } {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return { median: null, max: null };
  return { median: percentile(present, 50), max: Math.max(...present) };
}

/** A counter's rate between the first and the last sample that have it. */
function rate(w: OverloadSample[], field: 'cpuMs' | 'probes', scale: number): number | null {
  const have = w.filter((x) => x[field] !== null);
  const first = have[0];
  const last = have.at(-1);
  if (!first || !last || last.t <= first.t) return null;
  return round(((last[field]! - first[field]!) / (last.t - first.t)) * scale, 1);
}

export function windowStats(samples: OverloadSample[], from: number, to: number): WindowStats {
  const w = samples.filter((x) => x.t >= from && x.t <= to);
  const stretch = spread(w.map((x) => x.stretch));
  return {
    seconds: round(to - from, 3),
    stretchMax: stretch.max,
    stretchMedian: stretch.median,
    effectivePeriodMedianSeconds: spread(w.map((x) => x.effectivePeriodSeconds)).median,
    eventLoopUtilizationMedian: spread(w.map((x) => x.eventLoopUtilization)).median,
    eventLoopLagP99MedianSeconds: spread(w.map((x) => x.eventLoopLagP99Seconds)).median,
    cpuPercent: rate(w, 'cpuMs', 0.1),
    probesPerSecond: rate(w, 'probes', 1),
    maxRssMiB: spread(w.map((x) => x.rssMiB)).max,
    maxPodQueue: spread(w.map((x) => x.podQueue)).max,
    metricsMedianMs: spread(w.map((x) => x.metricsMs)).median,
    metricsTimeouts: w.filter((x) => x.metricsMs === null).length,
  };
}

/** Gates True every `every` seconds since the operator's start: the last sample at or before each mark. */
export function gatesTrueAt(samples: OverloadSample[], every: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const end = samples.at(-1)?.t ?? 0;
  let i = 0;
  for (let mark = every; mark <= end; mark += every) {
    while (i + 1 < samples.length && samples[i + 1]!.t <= mark) i++;
    out.push([mark, samples[i]!.gatesTrue]);
  }
  return out;
}

/** How many of the times (seconds) fall in each interval (mark − every, mark], for marks up to end. */
export function countPerInterval(times: number[], every: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let mark = every; mark <= end; mark += every) out.push([mark, 0]);
  for (const t of times) {
    const k = Math.max(0, Math.ceil(t / every) - 1);
    if (k < out.length) out[k]![1]++;
  }
  return out;
}
