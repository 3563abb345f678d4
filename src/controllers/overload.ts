// The shell around src/safety/overload.ts: measures the event loop and the probe rate on a
// timer, feeds the governor, applies its factor to the scheduler, and says whether probe starts
// should yield to queued pod writes. What to tell users is the probe runner's business.
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import { OverloadGovernor, type StretchChange, shouldYield, type WriteBacklog } from '../safety/overload.ts';

/** Sample interval of the yield decision; the governor gets one sample per GOVERNOR_SAMPLES of them. */
export const SAMPLE_MS = 250;
export const GOVERNOR_SAMPLES = 4;

/** What the monitor drives: src/probes/scheduler.ts's ProbeScheduler fits. */
export interface StretchTarget {
  stats(): { demandPerSecond: number; completed: number };
  setStretch(factor: number): void;
}

/** Event loop utilisation between two calls; performance.eventLoopUtilization by default. */
export type EluSource = () => number;

export interface OverloadMonitorOptions {
  clock: Clock;
  scheduler: StretchTarget;
  /** Pod writes waiting, and whether for the API rate limit. */
  writes: () => WriteBacklog;
  onChange: (change: StretchChange) => void;
  maxStretch?: number;
  elu?: EluSource;
}

/** Samples the load while started; stop() clears its timer. */
export class OverloadMonitor {
  readonly #o: OverloadMonitorOptions;
  readonly #governor: OverloadGovernor;
  readonly #elu: EluSource;
  #timer: TimerHandle | undefined;
  #samples: number[] = [];
  #lastCompleted = 0;
  #lastAt = 0;
  #recentElu = 0;
  #stopped = false;

  constructor(options: OverloadMonitorOptions) {
    this.#o = options;
    this.#governor = new OverloadGovernor({ maxStretch: options.maxStretch });
    this.#elu = options.elu ?? processElu();
  }

  get stretch(): number {
    return this.#governor.stretch;
  }

  get maxStretch(): number {
    return this.#governor.maxStretch;
  }

  /** Utilisation over the governor's last sample. */
  get elu(): number {
    return this.#governor.elu;
  }

  /** Writes before probes: true while pod writes wait and the loop was saturated just now. */
  yielding(): boolean {
    return this.#timer !== undefined && shouldYield(this.#o.writes(), this.#recentElu);
  }

  /** Starts sampling (idempotent; never again after stop()). */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#elu(); // starts the first interval
    this.#lastAt = this.#o.clock.now();
    this.#lastCompleted = this.#o.scheduler.stats().completed;
    this.#arm();
  }

  /** Stops sampling for good: a reconcile still in flight at shutdown must not start it again. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#timer = this.#o.clock.setTimeout(() => this.#tick(), SAMPLE_MS);
  }

  #tick(): void {
    this.#recentElu = this.#elu();
    this.#samples.push(this.#recentElu);
    if (this.#samples.length >= GOVERNOR_SAMPLES) this.#sample();
    this.#arm();
  }

  #sample(): void {
    const now = this.#o.clock.now();
    const { demandPerSecond, completed } = this.#o.scheduler.stats();
    const seconds = Math.max(0.001, (now - this.#lastAt) / 1000);
    const elu = this.#samples.reduce((a, b) => a + b, 0) / this.#samples.length;
    this.#samples = [];
    const change = this.#governor.sample({
      now,
      elu,
      demandPerSecond,
      completedPerSecond: (completed - this.#lastCompleted) / seconds,
    });
    this.#lastAt = now;
    this.#lastCompleted = completed;
    if (!change) return;
    this.#o.scheduler.setStretch(change.to);
    this.#o.onChange(change);
  }
}

/** The process's event loop utilisation since the previous call. */
function processElu(): EluSource {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}
