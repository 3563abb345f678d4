// Graceful overload: when probing needs more CPU than the one thread has, readygate stretches the
// periods of steady targets, all by the same factor, instead of letting due runs pile up behind a
// saturated event loop (30,000 pods at a 10 s period once sat at 114 % CPU for ten minutes with
// 29,500 pod writes waiting: each write waited behind thousands of re-probes of healthy pods).
// Three rules, one home:
//
// 1. The stretch factor. Every sample (about a second) the caller measures the event loop's
//    utilisation (ELU: the share of wall time it was busy) and the probes that finished. Above
//    HIGH the factor rises to what the measured probe rate says the loop can afford at TARGET:
//    stretch = demand × elu / (completed × TARGET), demand being the runs per second the targets'
//    own periods ask for. It is a ratio of rates measured at saturation, so it lands near the
//    right factor at once instead of creeping up one step per sample (a step's effect shows
//    only a period later, and an integrator would overshoot meanwhile); when the rates ask for no
//    more it steps up once per settle time. Below LOW it falls toward the factor that would put
//    the loop at TARGET, at most by a quarter per settle time (other work does not shrink with
//    the probes: halving made a 50,000-pod fleet swing between 3 and 10); in between it holds. Factors are rounded to two significant
//    digits and change only by more than HYSTERESIS, so the policy status written from them
//    does not churn. The factor is bounded by maxStretch: past it, due runs wait in the fair
//    queue (src/probes/fair-queue.ts) and the status says so.
// 2. Who is stretched: only targets whose gate is settled. A new pod's first probe and the
//    probes of a target whose debouncer is mid-transition keep their own period, so new pods
//    get their gate and failing pods flip within failureThreshold probes of the first failure;
//    thresholds keep their meaning in probes (src/controllers/probe-runner.ts asks `settled`).
// 3. Writes before probes. While pod writes wait for a worker and the loop is busy (the last
//    last short sample above HIGH), the scheduler starts no probe (src/probes/scheduler.ts `yieldTo`):
//    probes that are not started leave the loop to the writes, and the yield ends by itself as
//    utilisation falls.
//
// Pure: time and measurements are passed in, no I/O; the shell is in src/controllers/overload.ts.

/** Utilisation aimed at: a quarter of the loop stays free for writes, watches and the API. */
export const TARGET_ELU = 0.75;
/** Above it the loop is saturated: stretch more, and probes yield to queued writes. */
export const HIGH_ELU = 0.85;
/** Below it there is room to spare: stretch less. */
export const LOW_ELU = 0.6;
/** A new factor is adopted only when it differs from the current one by more than this ratio. */
export const HYSTERESIS = 1.15;
export const DEFAULT_MAX_STRETCH = 10;

export interface OverloadOptions {
  /** Largest factor periods may be stretched by (≥ 1). */
  maxStretch?: number;
  /** Time after a change before the factor may fall (a change shows in the load a period later). */
  settleMs?: number;
}

/** One measurement interval. */
export interface LoadSample {
  now: number;
  /** Event loop utilisation over the interval, 0..1. */
  elu: number;
  /** Runs per second the targets' own (unstretched) periods ask for. */
  demandPerSecond: number;
  /** Probe runs that finished per second over the interval. */
  completedPerSecond: number;
}

/** The factor changed: reported on policies' status, in an Event and in metrics. */
export interface StretchChange {
  from: number;
  to: number;
}

/** Decides the period stretch factor from load samples; see the module comment. */
export class OverloadGovernor {
  readonly #max: number;
  readonly #settleMs: number;
  #stretch = 1;
  #changedAt = Number.NEGATIVE_INFINITY;
  #elu = 0;

  constructor(options: OverloadOptions = {}) {
    const max = options.maxStretch ?? DEFAULT_MAX_STRETCH;
    if (!(max >= 1)) throw new RangeError(`maxStretch must be >= 1, got ${max}`);
    this.#max = max;
    this.#settleMs = options.settleMs ?? 5000;
  }

  /** The current factor (1: every target keeps its period). */
  get stretch(): number {
    return this.#stretch;
  }

  get maxStretch(): number {
    return this.#max;
  }

  /** The utilisation of the last sample. */
  get elu(): number {
    return this.#elu;
  }

  /** True while steady targets' periods are stretched. */
  get overloaded(): boolean {
    return this.#stretch > 1;
  }

  /** Feeds one sample; returns the change of factor it caused, if any. */
  sample(s: LoadSample): StretchChange | undefined {
    this.#elu = Math.min(1, Math.max(0, s.elu));
    const settled = s.now - this.#changedAt >= this.#settleMs;
    const next = nextStretch(this.#stretch, s, this.#max, settled);
    if (next === this.#stretch) return undefined;
    const change = { from: this.#stretch, to: next };
    this.#stretch = next;
    this.#changedAt = s.now;
    return change;
  }
}

/** Pod writes waiting, as the write path sees them. */
export interface WriteBacklog {
  /** Pod keys waiting for a reconcile worker. */
  queued: number;
  /** Writes are waiting for the API rate limit (--api-qps): the CPU is not what holds them. */
  throttled: boolean;
}

/**
 * Writes before probes: whether probe starts wait now. Only while writes wait for the loop: when
 * they wait for the API rate limit, holding probes back would only delay new pods' first probes.
 */
export function shouldYield(writes: WriteBacklog, elu: number): boolean {
  return writes.queued > 0 && !writes.throttled && elu > HIGH_ELU;
}

/** The most the factor falls per settle time: load is not all probes, so a linear estimate undershoots. */
export const MAX_FALL = 0.75;

/**
 * Pure: the factor after a sample (unchanged inside the hysteresis band). `settled`: the last
 * change is older than the settle time, so the load shows its effect.
 */
export function nextStretch(current: number, s: LoadSample, max: number, settled = true): number {
  const elu = Math.min(1, Math.max(0, s.elu));
  if (elu > HIGH_ELU) {
    // Measured at saturation, completed/elu is the rate the loop can afford per unit of
    // utilisation: the factor that affords the demand at TARGET is adopted at once.
    if (s.completedPerSecond > 0 && s.demandPerSecond > 0) {
      const needed = (s.demandPerSecond * elu) / (s.completedPerSecond * TARGET_ELU);
      if (needed > current * HYSTERESIS) return roundFactor(Math.min(max, needed));
    }
    // The rates ask for no more (or cannot say) but the loop is saturated: one step, once the
    // last change has had time to show (a change reaches the load only as targets come due, so
    // stepping every sample would wind up to the bound).
    return settled ? Math.max(current, roundFactor(Math.min(max, current * HYSTERESIS))) : current;
  }
  if (elu < LOW_ELU && current > 1 && settled) {
    // Toward where the loop would sit at TARGET, at most MAX_FALL per settle time. (Below LOW that
    // is always more than a hysteresis step: LOW / TARGET < 1 / HYSTERESIS.)
    const to = roundFactor(Math.max(current * (elu / TARGET_ELU), current * MAX_FALL));
    return to < 1.1 ? 1 : to;
  }
  return current;
}

/** Two significant digits (1.3, 2.4, 13): a factor users can read and status writes that do not churn. */
export function roundFactor(x: number): number {
  if (!(x > 1)) return 1;
  const digits = x >= 10 ? 0 : 1;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The period a stretched target runs at, in ms. */
export function effectivePeriodMs(periodMs: number, stretch: number): number {
  return Math.round(periodMs * Math.max(1, stretch));
}
