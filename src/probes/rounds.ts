// Per-policy round summaries and the failsafe decision (api.md, "Failsafe"): in one probe
// round, if more than maxUnavailable of the matched pods would flip to False, hold them all.

/** One target's verdict in a round, compared with what the pod currently says. */
export interface RoundEntry {
  /** Target key (e.g. pod UID). */
  key: string;
  /** The condition status on the pod now ('True' | 'False' | undefined when absent). */
  current: string | undefined;
  /** The status the debouncer wants now. */
  desired: 'True' | 'False' | undefined;
  /** The latest result was "could not look" (operator-side). */
  couldNotLook: boolean;
}

export interface RoundSummary {
  policy: string;
  /** Targets whose desired status is False while the pod says True. */
  wouldFlipFalse: string[];
  /** The subset of wouldFlipFalse whose latest result was "could not look". */
  couldNotLook: string[];
}

export interface FailsafeDecision {
  /** True when the round exceeded maxUnavailable: every flip in `hold` must not be written. */
  tripped: boolean;
  /** Keys whose current status must be held this round (empty unless tripped). */
  hold: string[];
  /** The most flips one round may write. */
  allowed: number;
  message: string;
}

/** Summarises one round of a policy: which targets would flip True→False, and how many of those could not look. */
export function summarizeRound(policy: string, entries: Iterable<RoundEntry>): RoundSummary {
  const wouldFlipFalse: string[] = [];
  const couldNotLook: string[] = [];
  for (const e of entries) {
    // Only True→False empties a Service; a missing condition was never Ready through us.
    if (e.current !== 'True' || e.desired !== 'False') continue;
    wouldFlipFalse.push(e.key);
    if (e.couldNotLook) couldNotLook.push(e.key);
  }
  return { policy, wouldFlipFalse, couldNotLook };
}

/**
 * Decides whether a round's flips may be written: if more than maxUnavailable (an int, or a
 * percent of matchedPods rounded up) would flip to False, every flip of the round is held.
 */
export function applyFailsafe(
  summary: RoundSummary,
  matchedPods: number,
  maxUnavailable: number | string,
): FailsafeDecision {
  const allowed = scaledMaxUnavailable(maxUnavailable, matchedPods);
  const flips = summary.wouldFlipFalse.length;
  if (flips <= allowed) return { tripped: false, hold: [], allowed, message: '' };
  const blind = summary.couldNotLook.length;
  return {
    tripped: true,
    hold: [...summary.wouldFlipFalse],
    allowed,
    message:
      `${flips} of ${matchedPods} pods would flip to False in one round, more than maxUnavailable ` +
      `(${maxUnavailable} = ${allowed}); holding their current status` +
      (blind > 0 ? ` (${blind} of them could not be reached from the operator)` : ''),
  };
}

/**
 * Resolves an int-or-percent against `total`, like apimachinery's intstr
 * GetScaledValueFromIntOrPercent with roundUp=true (as PodDisruptionBudget's maxUnavailable).
 * Rounding up on purpose: rounding down would give 0 for small policies (50% of 1 pod), and a
 * failsafe that holds every flip would stop a one-pod policy from ever reporting a failure.
 */
export function scaledMaxUnavailable(value: number | string, total: number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`maxUnavailable ${value} must be a non-negative integer`);
    return value;
  }
  const m = /^(\d+)%$/.exec(value.trim());
  if (!m) {
    // intstr rejects a string that is not a percentage too ("invalid type: string is not a percentage").
    throw new RangeError(`maxUnavailable ${JSON.stringify(value)} must be an integer or a percentage like "50%"`);
  }
  return Math.ceil((Number(m[1]) * total) / 100);
}
