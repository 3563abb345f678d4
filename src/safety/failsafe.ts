// The failsafe: readygate must never empty Services because of itself. It decides, for each
// True→False flip the debouncer wants, whether the flip may be written now. Two rules, one home:
//
// 1. Per policy, a sliding window. At most maxUnavailable flips (int or percent of the policy's
//    targets, rounded up) are admitted within any window of failureThreshold × period, the time
//    a mass outage needs to reach every target's threshold whatever the phase spread. The window
//    slides over the admitted flips themselves, so it starts at the first flip: fixed windows
//    that start when the state is created let a burst straddle two of them (40 of 42 pods
//    flipped after a restart). Flips the previous leader made are seeded from the pods' own
//    conditions (lastTransitionTime), so a restart or failover does not start with a fresh budget;
//    a seed counts for two windows, not one: the new process needs up to a window to take over
//    (a lease duration) and another to see the same outage reach failureThreshold.
//    One flip refused trips the policy: every flip is held until a whole window passes in which
//    no target of the policy wants to flip.
//    Sharded (docs/sharding.md, decision 4), maxUnavailable is taken of the policy's targets in
//    all buckets, and a replica admits at most its share of it, rounded up. The flips other
//    replicas made (seen in the pod cache) count against the whole for two windows, like seeds.
// 2. A global view across policies. When most targets could not be looked at (connect timeouts,
//    unreachable networks, operator-side errors: ProbeResult.couldNotLook), the operator is the
//    likely cause, so every flip to False is held everywhere until most targets can be looked at
//    again. Right after start, while fewer than half the targets have been observed, a flip
//    whose own latest result could not look is held too: the global view cannot judge yet.
//    While blind, a result that could not look does not count toward failureThreshold either.
//
// Pure: time is passed in, no I/O. The caller (src/controllers/probe-runner.ts) turns the
// transitions it returns into log lines, Events, metrics and policy status reconciles.

/** Why flips of a policy are held: its own window, or the global view. */
export type HoldReason = 'Failsafe' | 'CouldNotLook';

/** Below this many observed targets the global view never calls the operator blind: one hung pod is not "most". */
export const GLOBAL_VIEW_MIN_TARGETS = 10;

export interface PolicyLimits {
  /** failureThreshold × periodSeconds, in ms. */
  windowMs: number;
  /** spec.failsafe.maxUnavailable (int or "N%"). */
  maxUnavailable: number | string;
  /** The policy's targets on this replica now (what a percentage is taken of when unsharded). */
  targets: number;
  /**
   * Sharded: the policy's targets in all buckets, counted before this replica kept its own.
   * A percentage is taken of these, and this replica admits at most its share of the result.
   * Absent, or equal to `targets`: unsharded.
   */
  globalTargets?: number;
}

/** A policy whose hold began or ended; the caller reports it (Event on hold, status either way). */
export interface FailsafeTransition {
  policy: string;
  /** The reason now held for, or undefined when the hold ended. */
  reason: HoldReason | undefined;
  message: string;
}

export type FlipVerdict = { admit: true } | { admit: false; reason: HoldReason };

interface PolicyState {
  /** When each admitted (or seeded) flip stops counting; pruned as they pass. */
  admitted: number[];
  /** Held targets and why each is held. */
  held: Map<string, HoldReason>;
  tripped: boolean;
  /** The last time a flip was held: a trip clears one window after it. */
  lastHeldAt: number;
  windowMs: number;
  /** maxUnavailable over every replica's targets of the policy. */
  max: number;
  /** What this replica may admit itself: its share of `max`, rounded up. */
  localMax: number;
  targets: number;
  globalTargets: number;
  /** Pod uid → when another replica's flip of it stops counting (its time + 2 windows). */
  foreign: Map<string, number>;
  /** No entry of `foreign` expires before this: pruning costs nothing until then. */
  foreignNext: number;
  /** The reason last reported, to report each change exactly once. */
  reported: HoldReason | undefined;
}

/** The failsafe of one operator process; see the module comment. */
export class Failsafe {
  readonly #policies = new Map<string, PolicyState>();
  /** Target key → its latest result could not look (absent: not observed yet). */
  readonly #looks = new Map<string, boolean>();
  readonly #known = new Set<string>();
  #couldNotLook = 0;

  /** Starts tracking a policy; `recentFlips` are the times of flips to False already on its pods. */
  addPolicy(policy: string, recentFlips: readonly number[], now: number, limits: PolicyLimits): void {
    if (this.#policies.has(policy)) return;
    const budget = budgetOf(limits); // throws on bad limits before anything is kept
    const state: PolicyState = {
      admitted: recentFlips.filter((t) => t <= now).map((t) => t + 2 * limits.windowMs),
      held: new Map(),
      tripped: false,
      lastHeldAt: 0,
      windowMs: limits.windowMs,
      ...budget,
      targets: limits.targets,
      foreign: new Map(),
      foreignNext: Number.POSITIVE_INFINITY,
      reported: undefined,
    };
    this.#policies.set(policy, state);
  }

  /** Takes a policy's new window, maxUnavailable or target counts. */
  updateLimits(policy: string, limits: PolicyLimits): void {
    const state = this.#policies.get(policy);
    if (!state) return;
    Object.assign(state, budgetOf(limits));
    state.windowMs = limits.windowMs;
    state.targets = limits.targets;
  }

  /** Stops tracking a policy (deleted or no longer probing), with the foreign flips noted for it. */
  removePolicy(policy: string): void {
    this.#policies.delete(policy);
  }

  /**
   * Records a flip to False of `podUid` that another replica made at `at` (seen in the pod
   * cache). It counts against the policy's budget over all replicas until `at` + 2 windows, once
   * per pod however often it flips. For pods this replica does not own only; a policy not
   * tracked yet is ignored (note its foreign flips right after addPolicy).
   */
  noteForeignFlip(policy: string, podUid: string, at: number): void {
    if (!Number.isFinite(at)) throw new RangeError(`foreign flip time ${at} must be a finite time in ms`);
    const state = this.#policies.get(policy);
    if (!state) return;
    const until = at + 2 * state.windowMs;
    if (until > (state.foreign.get(podUid) ?? Number.NEGATIVE_INFINITY)) state.foreign.set(podUid, until);
    state.foreignNext = Math.min(state.foreignNext, until);
    // The flip's own time as "now": memory stays bounded even if this replica never flips.
    pruneForeign(state, at);
  }

  /** Registers a target for the global view. */
  addTarget(target: string): void {
    this.#known.add(target);
  }

  /** Forgets a target (removed); a flip it held is released. */
  removeTarget(policy: string, target: string, now: number): FailsafeTransition[] {
    this.#known.delete(target);
    if (this.#looks.get(target) === true) this.#couldNotLook--;
    this.#looks.delete(target);
    return this.release(policy, target, now);
  }

  /**
   * Records a target's latest result for the global view; returns the holds this began or ended.
   * While blind, a target of `policy` that could not look is held too, so its policy says why
   * its gates are not judged (its debouncer does not count such results, see isObservation).
   */
  observe(target: string, couldNotLook: boolean, policy?: string): FailsafeTransition[] {
    if (!this.#known.has(target)) return [];
    const before = this.#viewHolds();
    const prior = this.#looks.get(target);
    if (prior === true) this.#couldNotLook--;
    this.#looks.set(target, couldNotLook);
    if (couldNotLook) this.#couldNotLook++;
    const after = this.#viewHolds();
    // The view can judge again: its holds end, and each held target's next result asks anew.
    if (before !== after && (before === 'warm-up' || (before === 'blind' && after !== 'blind'))) this.#dropViewHolds();
    const state = policy === undefined ? undefined : this.#policies.get(policy);
    if (state && after === 'blind' && couldNotLook) state.held.set(target, 'CouldNotLook');
    if (before !== after) return this.#reportAll();
    return state && policy !== undefined ? this.#report(policy, state) : [];
  }

  /** True when most observed targets could not be looked at (and enough were observed to say so). */
  blind(): boolean {
    const observed = this.#looks.size;
    return observed >= GLOBAL_VIEW_MIN_TARGETS && this.#couldNotLook * 2 > observed;
  }

  /**
   * Whether a result counts toward the debouncer's thresholds. While the operator is blind, a
   * result that could not look is no observation of the pod: counted, it would leave every gate
   * past failureThreshold when the outage ends, and the first real failure would flip it at once.
   */
  isObservation(couldNotLook: boolean): boolean {
    return !(couldNotLook && this.blind());
  }

  /** Whether too few targets have been observed for the global view to judge (right after start). */
  warmingUp(): boolean {
    return this.#looks.size * 2 < this.#known.size;
  }

  /**
   * Decides one True→False flip of `target` in `policy`. Admitted flips count against the
   * policy's window; a held one keeps the pod's current status and is asked again on the
   * target's next result.
   */
  requestFlip(
    policy: string,
    target: string,
    now: number,
  ): { verdict: FlipVerdict; transitions: FailsafeTransition[] } {
    const state = this.#policies.get(policy);
    if (!state) return { verdict: { admit: true }, transitions: [] };
    const hold = (reason: HoldReason) => {
      state.held.set(target, reason);
      state.lastHeldAt = now;
      return { verdict: { admit: false, reason } as FlipVerdict, transitions: this.#report(policy, state) };
    };
    if (this.blind() || (this.warmingUp() && this.#looks.get(target) === true)) return hold('CouldNotLook');
    prune(state, now);
    const own = state.admitted.length;
    if (!state.tripped && own < state.localMax && own + state.foreign.size < state.max) {
      state.admitted.push(now + state.windowMs);
      state.held.delete(target);
      return { verdict: { admit: true }, transitions: this.#report(policy, state) };
    }
    state.tripped = true;
    return hold('Failsafe');
  }

  /** The target no longer wants to flip (it recovered, or its flip was written). */
  release(policy: string, target: string, now: number): FailsafeTransition[] {
    const state = this.#policies.get(policy);
    if (!state?.held.delete(target)) return [];
    state.lastHeldAt = now; // it was held until now: a trip clears a whole window later
    return this.#report(policy, state);
  }

  /** Ends trips whose window passed with nothing held; call on every result and periodically. */
  tick(policy: string, now: number): FailsafeTransition[] {
    const state = this.#policies.get(policy);
    if (!state) return [];
    pruneForeign(state, now);
    if (!state.tripped) return [];
    if (state.held.size > 0) state.lastHeldAt = now;
    else if (now - state.lastHeldAt > state.windowMs) state.tripped = false;
    return this.#report(policy, state);
  }

  /** The hold a policy is under now, for its status, or undefined. */
  status(policy: string): { reason: HoldReason; message: string } | undefined {
    const state = this.#policies.get(policy);
    const reason = state && reasonOf(state, this.blind());
    return state && reason ? { reason, message: messageOf(reason, state) } : undefined;
  }

  /** Targets held now, by reason (for metrics). */
  heldTargets(): Record<HoldReason, number> {
    const out: Record<HoldReason, number> = { Failsafe: 0, CouldNotLook: 0 };
    const blind = this.blind();
    for (const state of this.#policies.values()) {
      const reason = reasonOf(state, blind);
      if (reason) out[reason] += state.held.size;
    }
    return out;
  }

  /** The share of observed targets whose latest result could not look (0 when none observed). */
  couldNotLookRatio(): number {
    return this.#looks.size === 0 ? 0 : this.#couldNotLook / this.#looks.size;
  }

  /** Whether the global view holds flips now, and why. */
  #viewHolds(): 'blind' | 'warm-up' | undefined {
    return this.blind() ? 'blind' : this.warmingUp() ? 'warm-up' : undefined;
  }

  #dropViewHolds(): void {
    for (const state of this.#policies.values()) {
      for (const [target, reason] of state.held) if (reason === 'CouldNotLook') state.held.delete(target);
    }
  }

  #report(policy: string, state: PolicyState): FailsafeTransition[] {
    const reason = reasonOf(state, this.blind());
    if (reason === state.reported) return [];
    state.reported = reason;
    return [{ policy, reason, message: reason ? messageOf(reason, state) : '' }];
  }

  #reportAll(): FailsafeTransition[] {
    const out: FailsafeTransition[] = [];
    for (const [policy, state] of this.#policies) out.push(...this.#report(policy, state));
    return out;
  }
}

function prune(state: PolicyState, now: number): void {
  // At most maxUnavailable + seeds entries: a filter is cheaper than keeping them ordered.
  if (state.admitted.some((until) => until <= now)) state.admitted = state.admitted.filter((until) => until > now);
  pruneForeign(state, now);
}

function pruneForeign(state: PolicyState, now: number): void {
  if (now < state.foreignNext) return;
  let next = Number.POSITIVE_INFINITY;
  for (const [uid, until] of state.foreign) {
    if (until <= now) state.foreign.delete(uid);
    else next = Math.min(next, until);
  }
  state.foreignNext = next;
}

/** maxUnavailable over all targets, and this replica's share of it (rounded up: see docs/sharding.md §5, risk 5). */
function budgetOf(limits: PolicyLimits): { max: number; localMax: number; globalTargets: number } {
  const { targets, globalTargets = targets } = limits;
  if (!Number.isInteger(globalTargets) || globalTargets < targets) {
    throw new RangeError(`globalTargets ${globalTargets} must be an integer, at least targets (${targets})`);
  }
  const max = scaledMaxUnavailable(limits.maxUnavailable, globalTargets);
  const localMax = globalTargets === 0 ? max : Math.min(max, Math.ceil((max * targets) / globalTargets));
  return { max, localMax, globalTargets };
}

function reasonOf(state: PolicyState, blind: boolean): HoldReason | undefined {
  if (state.held.size === 0) return state.tripped ? 'Failsafe' : undefined;
  if (blind) return 'CouldNotLook';
  if (state.tripped) return 'Failsafe';
  return 'CouldNotLook'; // held while the global view warmed up
}

// Stable texts: a count in the message would rewrite the policy status on every change.
function messageOf(reason: HoldReason, state: PolicyState): string {
  const windowS = Math.round(state.windowMs / 1000);
  const of =
    state.globalTargets === state.targets
      ? `${state.max} of ${state.targets} pods`
      : `${state.max} of ${state.globalTargets} pods, across replicas`;
  return reason === 'Failsafe'
    ? `more than maxUnavailable (${of}) would flip to False within ${windowS}s; holding their current status until a whole window passes with no pod failing. Check connectivity from the operator to the pods.`
    : 'most probe targets could not be looked at from the operator (connect timeouts, unreachable networks, operator errors), so no gate is flipped to False until they can; check the operator pod and its network.';
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
