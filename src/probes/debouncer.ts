// Turns a stream of probe results into the desired gate condition, as the kubelet's prober
// worker does (pkg/kubelet/prober/worker.go: a result must repeat failureThreshold /
// successThreshold times in a row before the state changes). Pure: time is always passed in.
import type { ProbeResult } from './types.ts';

export type GateMode = 'Continuous' | 'StartupOnly';
export type ConditionReason = 'ProbeSucceeded' | 'ProbeFailed' | 'ProbeTimeout' | 'FailOpenTimeout' | 'DryRun';

/** The slice of a ProbePolicy spec the debouncer reads (the generated spec type fits it). */
export interface DebounceSpec {
  mode?: GateMode;
  probe: { initialDelaySeconds?: number; successThreshold?: number; failureThreshold?: number };
  failsafe?: { failOpenAfterSeconds?: number };
  dryRun?: boolean;
}

/** The policy's condition as already found on the pod (a V1PodCondition fits). */
export interface SeedCondition {
  status: string;
  reason?: string;
  message?: string;
}

export interface DesiredCondition {
  status: 'True' | 'False';
  reason: ConditionReason;
  message: string;
}

type GateStatus = 'True' | 'False' | 'Unknown';

interface State {
  status: GateStatus;
  successes: number;
  failures: number;
  reason: ConditionReason;
  message: string;
  /** When the gate became (or was first seen) not True; fail-open counts from here. */
  notTrueSince: number | undefined;
  everTrue: boolean;
  failedOpen: boolean;
  runningSince: number | undefined;
}

/**
 * Debounces one (policy, pod) target. Seeded from the pod's existing condition so that a new
 * operator process never flips a gate the previous one set (docs/api.md, "Restart").
 */
export class Debouncer {
  readonly #spec: DebounceSpec;
  readonly #s: State;

  /**
   * Creates a debouncer from the policy spec, the condition already on the pod (if any), and
   * the time the pod was first seen Running (if it has been; see markRunning).
   */
  constructor(spec: DebounceSpec, seed?: SeedCondition, runningSinceMs?: number) {
    this.#spec = spec;
    this.#s = seedState(spec, seed, runningSinceMs);
  }

  /** Returns a debouncer for a changed spec that keeps this one's counters and status. */
  withSpec(spec: DebounceSpec): Debouncer {
    const next = new Debouncer(spec);
    Object.assign(next.#s, this.#s);
    return next;
  }

  /** Records the first observation of the pod in phase Running; later calls are no-ops. */
  markRunning(nowMs: number): void {
    if (this.#s.runningSince !== undefined) return;
    this.#s.runningSince = nowMs;
    if (this.#s.status !== 'True' && this.#s.notTrueSince === undefined) this.#s.notTrueSince = nowMs;
  }

  /** True once the pod is Running and initialDelaySeconds have passed, unless a StartupOnly gate has latched. */
  shouldProbe(nowMs: number): boolean {
    const since = this.#s.runningSince;
    if (since === undefined || this.#latched()) return false;
    return nowMs >= since + (this.#spec.probe.initialDelaySeconds ?? 0) * 1000;
  }

  /** Whether the operator may write the condition (false in dryRun: compute and report only). */
  get patch(): boolean {
    return this.#spec.dryRun !== true;
  }

  /**
   * Feeds one probe result (ignored before shouldProbe) and returns the desired condition now,
   * or undefined while there is nothing to say yet (no condition and no verdict).
   */
  observe(result: ProbeResult, nowMs: number): DesiredCondition | undefined {
    const s = this.#s;
    // "Could not run the probe" is no observation: it neither counts toward a threshold nor
    // breaks a run of failures or successes.
    if (!this.shouldProbe(nowMs) || result.outcome === 'unknown') return this.desired(nowMs);
    const successThreshold = Math.max(1, this.#spec.probe.successThreshold ?? 1);
    const failureThreshold = Math.max(1, this.#spec.probe.failureThreshold ?? 3);
    if (result.outcome === 'success') {
      s.successes++;
      s.failures = 0;
      // While True the message stays as written when the gate became True: a pod whose
      // answers vary (a redirect to /ok?n=<i>) must not cost a pod write per probe.
      if (s.status !== 'True' && s.successes >= successThreshold) {
        s.status = 'True';
        s.everTrue = true;
        s.failedOpen = false;
        s.notTrueSince = undefined;
        s.reason = 'ProbeSucceeded';
        s.message = conditionMessage(result.message);
      }
    } else {
      s.failures++;
      s.successes = 0;
      const reason: ConditionReason = result.outcome === 'timeout' ? 'ProbeTimeout' : 'ProbeFailed';
      // With no condition yet, nothing is written until a verdict: fewer writes at pod start.
      // Once False, the message changes only with the reason (e.g. a 503 becomes a timeout).
      const verdict = s.status !== 'False' && s.failures >= failureThreshold;
      if (verdict || (s.status === 'False' && s.reason !== reason)) {
        if (s.status === 'True') s.notTrueSince = nowMs;
        s.status = 'False';
        s.reason = reason;
        // Capped at the threshold: "3/3", never "4/3" (it only shows at a change anyway).
        const shown = Math.min(s.failures, failureThreshold);
        s.message = `${conditionMessage(result.message)} (${shown}/${failureThreshold} failures)`;
      }
    }
    return this.desired(nowMs);
  }

  /** The desired condition at `nowMs` (fail-open can start by time alone), or undefined if none yet. */
  desired(nowMs: number): DesiredCondition | undefined {
    const s = this.#s;
    let out: DesiredCondition | undefined;
    const failOpenSeconds = this.#spec.failsafe?.failOpenAfterSeconds ?? 0;
    if (s.status === 'True' || this.#latched()) {
      out = s.failedOpen ? failOpen(failOpenSeconds) : { status: 'True', reason: s.reason, message: s.message };
    } else if (
      failOpenSeconds > 0 &&
      s.notTrueSince !== undefined &&
      (s.failedOpen || nowMs - s.notTrueSince >= failOpenSeconds * 1000)
    ) {
      s.failedOpen = true;
      // A fail-open True is a True for StartupOnly: the startup gate has been passed.
      s.everTrue = true;
      out = failOpen(failOpenSeconds);
    } else if (s.status === 'False') {
      out = { status: 'False', reason: s.reason, message: s.message };
    }
    if (out && this.#spec.dryRun) out = { ...out, reason: 'DryRun' };
    return out;
  }

  /**
   * A gap in what was observed (the operator could not look at most pods): the current run of
   * failures or successes is no longer consecutive, so it starts again; the status stays. Results
   * from the start and the end of an outage then cannot add up to a flip.
   */
  interrupt(): void {
    this.#s.failures = 0;
    this.#s.successes = 0;
  }

  /**
   * True when the gate has a status and no run toward the other one is under way: a target whose
   * probes may be stretched under overload (src/safety/overload.ts). A new target (no verdict yet)
   * and one mid-transition (a True gate with failures, a False one with successes) are not.
   */
  settled(): boolean {
    const s = this.#s;
    if (this.#latched()) return true;
    if (s.status === 'True') return s.failures === 0;
    return s.status === 'False' && s.successes === 0;
  }

  /** Counters and status, for metrics, policy status and tests. */
  snapshot(): { status: GateStatus; successes: number; failures: number; latched: boolean; failedOpen: boolean } {
    const s = this.#s;
    return {
      status: s.status,
      successes: s.successes,
      failures: s.failures,
      latched: this.#latched(),
      failedOpen: s.failedOpen,
    };
  }

  #latched(): boolean {
    return this.#spec.mode === 'StartupOnly' && this.#s.everTrue;
  }
}

/** Longest probe description put in a condition message (the failure count comes on top). */
export const MAX_MESSAGE_DETAIL = 400;

// C0 and C1 controls, DEL, line/paragraph separators and bidi overrides: nothing in a condition
// message should move a reader's cursor or reorder the text (kubectl prints it raw).
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/**
 * The probers build messages from the operator's own text (the spec's target, status codes,
 * fixed phrases); this is the last line of defence: no control characters, bounded length.
 */
export function conditionMessage(text: string): string {
  const clean = text.replace(UNPRINTABLE, '\uFFFD');
  return clean.length > MAX_MESSAGE_DETAIL ? `${clean.slice(0, MAX_MESSAGE_DETAIL - 1)}…` : clean;
}

function failOpen(seconds: number): DesiredCondition {
  // Stable text on purpose: no per-probe detail, so failing open costs one write.
  return { status: 'True', reason: 'FailOpenTimeout', message: `probe not passing after ${seconds}s; failing open` };
}

function seedState(spec: DebounceSpec, seed: SeedCondition | undefined, runningSince: number | undefined): State {
  const failureThreshold = Math.max(1, spec.probe.failureThreshold ?? 3);
  const base: State = {
    status: 'Unknown',
    successes: 0,
    failures: 0,
    reason: 'ProbeFailed',
    message: '',
    notTrueSince: runningSince,
    everTrue: false,
    failedOpen: false,
    runningSince,
  };
  if (seed?.reason === 'FailOpenTimeout') {
    // It already failed open: keep it open, and keep probing for a real success.
    return {
      ...base,
      status: 'False',
      failures: failureThreshold,
      failedOpen: true,
      everTrue: true,
      message: seed.message ?? '',
    };
  }
  if (seed?.status === 'True') {
    // "True with 0 failures": it takes failureThreshold fresh failures to flip it.
    return {
      ...base,
      status: 'True',
      everTrue: true,
      reason: 'ProbeSucceeded',
      message: seed.message ?? '',
      notTrueSince: undefined,
    };
  }
  if (seed?.status === 'False') {
    const reason = seed.reason === 'ProbeTimeout' ? 'ProbeTimeout' : 'ProbeFailed';
    // Already past the threshold, so the next failure repeats "n/n" and writes nothing new.
    return { ...base, status: 'False', failures: failureThreshold, reason, message: seed.message ?? '' };
  }
  return base;
}
