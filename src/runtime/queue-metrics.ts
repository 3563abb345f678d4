import type { Clock } from './clock.ts';

// The metrics of a WorkQueue as client-go's workqueue reports them (metrics.go): a provider makes
// one instrument per queue name, and QueueMetrics feeds them from the queue's add/get/done.

export interface CounterMetric {
  inc(): void;
}
export interface GaugeMetric {
  inc(): void;
  dec(): void;
}
export interface SettableGaugeMetric {
  set(value: number): void;
}
export interface HistogramMetric {
  observe(seconds: number): void;
}

/** client-go's workqueue.MetricsProvider, plus a hook to refresh the running-work gauges. */
export interface WorkQueueMetricsProvider {
  newDepthMetric(name: string): GaugeMetric;
  newAddsMetric(name: string): CounterMetric;
  newLatencyMetric(name: string): HistogramMetric;
  newWorkDurationMetric(name: string): HistogramMetric;
  newUnfinishedWorkSecondsMetric(name: string): SettableGaugeMetric;
  newLongestRunningProcessorSecondsMetric(name: string): SettableGaugeMetric;
  newRetriesMetric(name: string): CounterMetric;
  /**
   * client-go refreshes the two running-work gauges every 500 ms from a goroutine; here the provider
   * calls `update` just before it is read (a scrape), so no timer runs. Returns an unregister function.
   */
  beforeRead(update: () => void): () => void;
}

/** Feeds a provider's instruments from one queue's events (client-go's defaultQueueMetrics). */
export class QueueMetrics {
  readonly #clock: Clock;
  readonly #depth: GaugeMetric;
  readonly #adds: CounterMetric;
  readonly #latency: HistogramMetric;
  readonly #workDuration: HistogramMetric;
  readonly #unfinished: SettableGaugeMetric;
  readonly #longest: SettableGaugeMetric;
  readonly #retries: CounterMetric;
  readonly #unregister: () => void;
  // When each dirty key was added, and when each key a worker holds was handed out (ms).
  readonly #addTimes = new Map<string, number>();
  readonly #processingStarts = new Map<string, number>();

  constructor(name: string, provider: WorkQueueMetricsProvider, clock: Clock) {
    this.#clock = clock;
    this.#depth = provider.newDepthMetric(name);
    this.#adds = provider.newAddsMetric(name);
    this.#latency = provider.newLatencyMetric(name);
    this.#workDuration = provider.newWorkDurationMetric(name);
    this.#unfinished = provider.newUnfinishedWorkSecondsMetric(name);
    this.#longest = provider.newLongestRunningProcessorSecondsMetric(name);
    this.#retries = provider.newRetriesMetric(name);
    this.#unregister = provider.beforeRead(() => this.updateUnfinishedWork());
  }

  /** A key became dirty. */
  add(key: string): void {
    this.#adds.inc();
    this.#depth.inc();
    if (!this.#addTimes.has(key)) this.#addTimes.set(key, this.#clock.now());
  }

  /** A worker took `key`. */
  get(key: string): void {
    const now = this.#clock.now();
    this.#depth.dec();
    this.#processingStarts.set(key, now);
    const added = this.#addTimes.get(key);
    if (added === undefined) return;
    this.#latency.observe((now - added) / 1000);
    this.#addTimes.delete(key);
  }

  /** A worker finished `key`. */
  done(key: string): void {
    const started = this.#processingStarts.get(key);
    if (started === undefined) return;
    this.#workDuration.observe((this.#clock.now() - started) / 1000);
    this.#processingStarts.delete(key);
  }

  /** A dirty key was dropped unprocessed (shutdown): it leaves the depth. */
  discard(key: string): void {
    if (!this.#addTimes.delete(key)) return;
    this.#depth.dec();
  }

  /** A delayed or rate-limited add (client-go counts every AddAfter). */
  retry(): void {
    this.#retries.inc();
  }

  /** Sets the seconds of work in progress and the longest running one. */
  updateUnfinishedWork(): void {
    const now = this.#clock.now();
    let total = 0;
    let longest = 0;
    for (const started of this.#processingStarts.values()) {
      const ms = now - started;
      total += ms;
      if (ms > longest) longest = ms;
    }
    this.#unfinished.set(total / 1000);
    this.#longest.set(longest / 1000);
  }

  /** The queue is shut down and drained: the running-work gauges read 0 and are no longer refreshed. */
  close(): void {
    this.#unregister();
    this.#processingStarts.clear();
    this.updateUnfinishedWork();
  }
}
