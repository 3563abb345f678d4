// Containment: no single probe target can take the operator down or wedge the scheduler. A probe
// run that throws, rejects, or resolves with something that is not a ProbeResult becomes a
// failure result of our own, and the crash is reported to the caller (a metric and a log line,
// src/controllers/probe-runner.ts); the scheduler (src/probes/scheduler.ts) runs every probe
// through contain().
//
// The result is `failure` with couldNotLook true, on purpose:
// - `failure` counts toward failureThreshold, so one pod whose probe keeps crashing ends with its
//   gate False after its threshold, like a pod that keeps failing (`unknown` would leave the gate
//   where it was forever);
// - couldNotLook true, because a crash says more about readygate than about the pod. When a
//   readygate bug makes every probe crash, most targets could not look, the failsafe's global view
//   goes blind (src/safety/failsafe.ts, rule 2) and holds every flip to False instead of emptying
//   every Service. The global view only holds while more than half the observed targets (and at
//   least GLOBAL_VIEW_MIN_TARGETS) could not look, so one hostile pod among healthy ones still
//   fails.
//
// The message is ours: a fixed phrase and at most the error's class name. The error's own message
// can quote whatever the pod sent (a parser's "Unexpected token ... in JSON"), and the condition
// message is read by anyone who can read the pod; the operator log carries the error and its stack.

import type { ProbeResult } from '../probes/types.ts';

/**
 * What went wrong: the run threw synchronously, its promise rejected, or it resolved with a
 * non-result; or (result-handler) the code that takes a result threw for it.
 */
export type CrashKind = 'threw' | 'rejected' | 'invalid-result' | 'result-handler';

export interface ProbeCrash {
  kind: CrashKind;
  /** The thrown value, the rejection reason, or (invalid-result) an Error describing the value. */
  error: unknown;
}

const OUTCOMES: ReadonlySet<unknown> = new Set(['success', 'failure', 'timeout', 'unknown']);

/** Longest class name quoted in a crash message. */
const MAX_NAME = 40;

/** True when `value` has the shape of a ProbeResult (what the debouncer and failsafe read). */
export function isProbeResult(value: unknown): value is ProbeResult {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    OUTCOMES.has(r.outcome) &&
    typeof r.couldNotLook === 'boolean' &&
    typeof r.message === 'string' &&
    (r.warning === undefined || typeof r.warning === 'string') &&
    (r.durationMs === undefined || typeof r.durationMs === 'number')
  );
}

/** The failure result that stands for a crashed run; see the module comment. */
export function crashResult(crash: ProbeCrash, durationMs: number): ProbeResult {
  const name = crash.kind === 'invalid-result' ? undefined : errorName(crash.error);
  return {
    outcome: 'failure',
    couldNotLook: true,
    message: `probe crashed inside readygate${name ? ` (${name})` : ''}; see the operator log`,
    durationMs,
  };
}

/**
 * Runs `run` and resolves with its result, or with crashResult() when it throws, rejects or
 * resolves with something else; `onCrash` hears of each crash. Never rejects, whatever `run` or
 * `onCrash` do.
 */
export async function contain(
  run: () => Promise<ProbeResult>,
  onCrash: (crash: ProbeCrash) => void,
  elapsedMs: () => number,
): Promise<ProbeResult> {
  let crash: ProbeCrash;
  let promise: Promise<ProbeResult>;
  try {
    promise = run();
  } catch (error) {
    return crashed({ kind: 'threw', error }, onCrash, elapsedMs);
  }
  try {
    const value: unknown = await promise;
    if (isProbeResult(value)) return value;
    crash = { kind: 'invalid-result', error: new TypeError(`probe resolved with ${kindOf(value)}`) };
  } catch (error) {
    crash = { kind: 'rejected', error };
  }
  return crashed(crash, onCrash, elapsedMs);
}

function crashed(crash: ProbeCrash, onCrash: (crash: ProbeCrash) => void, elapsedMs: () => number): ProbeResult {
  try {
    onCrash(crash);
  } catch {
    // Reporting is best effort: a failing logger or metric must not undo the containment.
  }
  let ms: number;
  try {
    ms = elapsedMs();
  } catch {
    ms = 0;
  }
  return crashResult(crash, Number.isFinite(ms) ? ms : 0);
}

/** The error's class name when it looks like one (TypeError, ProbeConfigError), else undefined. */
function errorName(error: unknown): string | undefined {
  let name: unknown;
  try {
    name = error instanceof Error ? error.name : undefined;
  } catch {
    return undefined; // a getter that throws
  }
  return typeof name === 'string' && name.length <= MAX_NAME && /^[A-Z][A-Za-z0-9]*$/.test(name) ? name : undefined;
}

/** A short, tenant-free description of a value that is not a ProbeResult (its type only). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object that is not a ProbeResult' : `a ${typeof value}`;
}

/**
 * Bounds the crash log: at most `burst` lines per `windowMs`; the crashes left out are counted and
 * reported with the next line let through. A readygate bug that throws for every one of 10,000
 * targets would otherwise write 10,000 stack traces per period. Time is passed in.
 */
export class CrashLogLimiter {
  readonly #burst: number;
  readonly #windowMs: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #inWindow = 0;
  #suppressed = 0;

  constructor(burst = 10, windowMs = 60_000) {
    if (!(Number.isInteger(burst) && burst >= 1)) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    this.#burst = burst;
    this.#windowMs = windowMs;
  }

  /**
   * Whether a crash at `now` may be logged; when it may, `suppressed` is how many were left out
   * since the last line logged.
   */
  admit(now: number): { log: true; suppressed: number } | { log: false } {
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.#burst) {
      this.#suppressed++;
      return { log: false };
    }
    this.#inWindow++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { log: true, suppressed };
  }
}
