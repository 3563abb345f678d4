// The overload bench's pure parts: what it reads from /metrics (a metric not exported yet is null,
// not zero), how it summarises its samples, and how it judges the goals.
import { describe, expect, it } from 'vitest';
import type { StartupResult } from '../../../bench/operator/harness.ts';
import { overloadOptions, quickOverloadOptions } from '../../../bench/operator/overload.ts';
import {
  flipBoundSeconds,
  overloadRows,
  progressTable,
  startupComparison,
} from '../../../bench/operator/overload-report.ts';
import type { OverloadOptions, OverloadRun } from '../../../bench/operator/overload-run.ts';
import { metricValue, sumMetric } from '../../../bench/operator/proc.ts';
import {
  countPerInterval,
  gatesTrueAt,
  type OverloadSample,
  readMetrics,
  windowStats,
} from '../../../bench/operator/sampler.ts';

const METRICS = `# HELP readygate_probes_total Probes run
readygate_probes_total{policy="bench",namespace="a",result="success"} 100
readygate_probes_total{policy="bench",namespace="a",result="failure"} 5
readygate_workqueue_depth{controller="pod"} 42
readygate_workqueue_depth{controller="probepolicy"} 1
readygate_probe_effective_period_seconds{namespace="a",policy="bench"} 25
readygate_probe_effective_period_seconds{namespace="b",policy="bench"} 10
readygate_probe_period_stretch 2.5
readygate_event_loop_utilization 0.97
nodejs_eventloop_lag_p99_seconds 0.25
nodejs_eventloop_lag_max_seconds 4.5
`;

function sample(t: number, over: Partial<OverloadSample> = {}): OverloadSample {
  return {
    t,
    gatesTrue: 0,
    cpuMs: null,
    rssMiB: null,
    probes: null,
    stretch: null,
    effectivePeriodSeconds: null,
    eventLoopUtilization: null,
    eventLoopLagP99Seconds: null,
    podQueue: null,
    metricsMs: null,
    ...over,
  };
}

describe('what the overload bench reads from /metrics', () => {
  it('tells a metric not exported (null) from one at zero', () => {
    expect(metricValue('readygate_leader 0\n', 'readygate_leader')).toBe(0);
    expect(metricValue('readygate_leader 0\n', 'readygate_probe_period_stretch')).toBeNull();
    expect(sumMetric('', 'readygate_probes_total')).toBe(0);
    expect(metricValue(METRICS, 'readygate_probes_total')).toBe(105);
  });

  it('takes the stretch, the policy effective period, the event loop (p99 and max) and the pod queue', () => {
    expect(readMetrics(METRICS, 'a', 'bench')).toEqual({
      probes: 105,
      stretch: 2.5,
      effectivePeriodSeconds: 25,
      eventLoopUtilization: 0.97,
      eventLoopLagP99Seconds: 0.25,
      eventLoopLagMaxSeconds: 4.5,
      podQueue: 42,
    });
  });

  it('reports every metric as null when /metrics did not answer', () => {
    expect(Object.values(readMetrics('', 'a', 'bench')).every((v) => v === null)).toBe(true);
  });
});

describe('summaries of the samples', () => {
  const samples = [
    sample(0, { cpuMs: 0, probes: 0, stretch: 1, gatesTrue: 0, metricsMs: 10 }),
    sample(1, { cpuMs: 900, probes: 1000, stretch: 2, gatesTrue: 200, metricsMs: 30 }),
    sample(2, { gatesTrue: 350 }),
    sample(3, { cpuMs: 2700, probes: 2400, stretch: 3, gatesTrue: 500, metricsMs: 20 }),
  ];

  it('gives CPU % of a core and probes/s from the first and last sample that have them', () => {
    const w = windowStats(samples, 0, 3);
    expect(w.cpuPercent).toBe(90);
    expect(w.probesPerSecond).toBe(800);
    expect(w.stretchMax).toBe(3);
    expect(w.stretchMedian).toBe(2);
    expect(w.metricsMedianMs).toBe(20);
    expect(w.metricsTimeouts).toBe(1);
    expect(w.eventLoopUtilizationMedian).toBeNull();
  });

  it('gives gates True at each mark and counts per interval', () => {
    expect(gatesTrueAt(samples, 1)).toEqual([
      [1, 200],
      [2, 350],
      [3, 500],
    ]);
    expect(countPerInterval([0, 0.5, 1, 1.2, 2.9, 7], 1, 3)).toEqual([
      [1, 3],
      [2, 1],
      [3, 1],
    ]);
  });
});

const options: OverloadOptions = { ...quickOverloadOptions, periodSeconds: 10, failureThreshold: 3 };

function run(over: Partial<OverloadRun> = {}): OverloadRun {
  const stats = windowStats([], 0, 0);
  return {
    pods: 30000,
    namespace: 'overload-30000',
    createSeconds: 100,
    allTrueSeconds: 280,
    gatesTrueAfterStartup: 30000,
    timeToGate: { pods: 100, ratePerSecond: 10, missing: 0, latenciesMs: [1000, 2000, 4900] },
    singleFlip: { samples: [40, 50], notTrueBefore: [], recoverySeconds: 12 },
    saidSo: { degradedReason: 'Overloaded', message: 'm', effectivePeriodSeconds: 30, overloadedEvents: 1 },
    phases: [
      { name: 'start-up', from: 0, to: 280, stats: { ...stats, cpuPercent: 99, stretchMax: 2 }, podWrites: 30000 },
      { name: 'time to gate', from: 280, to: 300, stats: { ...stats, cpuPercent: 98 }, podWrites: 100 },
      { name: 'single flips', from: 300, to: 360, stats: { ...stats, stretchMax: 2, stretchMedian: 2 }, podWrites: 4 },
    ],
    podWritesPerInterval: [],
    peakRssMiB: 300,
    cpuSeconds: 400,
    samples: [],
    ...over,
  };
}

describe("the issue's goals", () => {
  it('bounds a flip by the debounce stretched by the largest stretch reported, plus 5 s', () => {
    expect(flipBoundSeconds(options, 2)).toBe(65);
    expect(flipBoundSeconds(options, null)).toBe(35);
  });

  it('judges a run that meets them', () => {
    const rows = overloadRows(run(), options);
    expect(rows.map((r) => [r.figure.split(',')[0], r.met])).toEqual([
      ['Every gate True', true],
      ['Time to gate p99', true],
      ['Single flip latency p99 during the overload', true],
      ['Probe period stretch factor', true],
      ['Effective period on the policy status after start-up', true],
      ['Operator CPU', undefined],
      ['Operator peak RSS', undefined],
    ]);
    expect(rows[0]!.goal).toContain('= 300 s');
    const silent = overloadRows(
      run({ saidSo: { degradedReason: 'AsExpected', message: '', effectivePeriodSeconds: null, overloadedEvents: 0 } }),
      options,
    );
    expect(silent.find((r) => r.figure.startsWith('Effective period'))?.met).toBe(false);
  });

  it('fails a start-up past its deadline, a pod never gated, a flip never seen and a stretch never reported', () => {
    const stats = windowStats([], 0, 0);
    const rows = overloadRows(
      run({
        allTrueSeconds: null,
        gatesTrueAfterStartup: 18400,
        timeToGate: { pods: 100, ratePerSecond: 10, missing: 1, latenciesMs: [100] },
        singleFlip: { samples: [30, null], notTrueBefore: [], recoverySeconds: null },
        phases: [{ name: 'start-up', from: 0, to: 900, stats: { ...stats, cpuPercent: 114 }, podWrites: 18400 }],
      }),
      options,
    );
    expect(rows.slice(0, 4).map((r) => r.met)).toEqual([false, false, false, false]);
    expect(rows[0]!.note).toContain('18,400 True then');
    expect(rows[2]!.goal).toContain('stretch 1 (not reported)');
  });

  it('does not judge flips of pods that were never True, nor a stretch while not saturated', () => {
    const rows = overloadRows(
      run({
        singleFlip: { samples: [null], notTrueBefore: ['p-29999'], recoverySeconds: 3 },
        phases: [],
      }),
      options,
    );
    expect(rows[2]!.met).toBeUndefined();
    expect(rows[3]!.met).toBeUndefined();
  });

  it('lists gates True and pod writes per interval through the start-up', () => {
    const samples = [sample(0), sample(30, { gatesTrue: 6000 }), sample(60, { gatesTrue: 12000 })];
    const table = progressTable(
      run({
        samples,
        podWritesPerInterval: [
          [30, 6000],
          [60, 6000],
        ],
      }),
      30,
    );
    expect(table).toContain('| 30 | 6,000 | 6,000 (200.0) |');
    expect(table).toContain('| 60 | 12,000 | 6,000 (200.0) |');
  });

  it('compares the 10,000-pod start-up, after ÷ before', () => {
    const before = { pods: 10000, allTrueSeconds: 50, probedOnceSeconds: 5, peakRssMiB: 200, cpuSeconds: 30 };
    const after = { ...before, allTrueSeconds: 40, cpuSeconds: 33 };
    const rows = startupComparison(
      { ...before, auditedPodPatches: 10000 } as StartupResult,
      { ...after, auditedPodPatches: 10000 } as StartupResult,
    );
    expect(rows.map((r) => [r.value, r.met])).toEqual([
      [1, true],
      [0.8, true],
      [1, true],
      [1.1, false],
      [1, true],
    ]);
  });
});

describe('the command line', () => {
  it('takes sizes and a period, and calls the run custom', () => {
    const { o, custom } = overloadOptions(['--sizes', '30000,50000', '--period', '5']);
    expect(o.sizes).toEqual([30000, 50000]);
    expect(o.periodSeconds).toBe(5);
    expect(custom).toBe(true);
    expect(overloadOptions([]).custom).toBe(false);
  });

  it('refuses a size that is not a positive integer and a period not above the timeout', () => {
    expect(() => overloadOptions(['--sizes', '30000,abc'])).toThrow('--sizes: "abc" is not a positive integer');
    expect(() => overloadOptions(['--period', '2'])).toThrow('--period: must be more than the 2 s timeout');
  });
});
