import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { WorkQueueMetricsProvider } from '../runtime/queue-metrics.ts';

// The workqueue_* metrics under the names, help texts, label and buckets client-go's workqueue
// registers them with (k8s.io/component-base/metrics/prometheus/workqueue), so dashboards and
// alerts written for Kubernetes controllers work on readygate unchanged. label name = the queue's
// controller. The readygate_workqueue_depth gauge stays beside them (metrics.ts).

/** client-go: ExponentialBuckets(10e-9, 10, 10), 10 ns to 10 s. */
const DURATION_BUCKETS = Array.from({ length: 10 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));

/** A WorkQueueMetricsProvider that registers client-go's workqueue metrics in `registers`. */
export function workqueueMetricsProvider(registers: Registry[]): WorkQueueMetricsProvider {
  const updaters = new Set<() => void>();
  const refresh = () => {
    for (const update of updaters) update();
  };
  const labelNames = ['name'] as const;
  // Histograms zeroed once per name: zero() resets, and a later queue of the same name must not.
  const seen = new WeakMap<Histogram<'name'>, Set<string>>();
  const zeroed = (h: Histogram<'name'>, name: string) => {
    const names = seen.get(h) ?? new Set<string>();
    seen.set(h, names);
    if (!names.has(name)) h.zero({ name });
    names.add(name);
    return h.labels({ name });
  };
  const depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames, registers });
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames,
    registers,
  });
  const latency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const work = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const unfinished = new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
    labelNames,
    registers,
    collect: refresh,
  });
  const longest = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames,
    registers,
    collect: refresh,
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames,
    registers,
  });
  // Each series starts at 0 (inc(0) keeps another live queue's value), so a queue shows up in every series before its first add.
  return {
    newDepthMetric: (name) => started(depth.labels({ name })),
    newAddsMetric: (name) => started(adds.labels({ name })),
    newLatencyMetric: (name) => zeroed(latency, name),
    newWorkDurationMetric: (name) => zeroed(work, name),
    newUnfinishedWorkSecondsMetric: (name) => started(unfinished.labels({ name })),
    newLongestRunningProcessorSecondsMetric: (name) => started(longest.labels({ name })),
    newRetriesMetric: (name) => started(retries.labels({ name })),
    beforeRead(update) {
      updaters.add(update);
      return () => updaters.delete(update);
    },
  };
}

function started<T extends { inc(n?: number): void }>(counter: T): T {
  counter.inc(0);
  return counter;
}
