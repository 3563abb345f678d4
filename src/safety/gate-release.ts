// No pod held NotReady by a ProbePolicy that is gone. A readiness gate under readygate's prefixes
// that no ProbePolicy of the pod's namespace provides any more (the policy was deleted, or its
// selector no longer matches the pod) is orphaned: nothing will ever probe it, so a False left
// on it would hold the pod out of its Services forever. Once a gate has been orphaned for the
// grace period (--release-orphaned-gates-after), as observed by this process, its condition is
// set True with reason GateReleased. The rule is level-triggered: the same after a deletion
// seen live, a selector change, or a restart (the clock then starts at the first look).
//
// What is never written: a condition already True; a gate with no condition at all that the
// pod's author wrote (a gate put into a pod template before its policy exists, or a typo, must not
// turn Ready unprobed), unlike one gate injection added (the pod annotation readygate.dev/injected-gates
// lists it): that gate exists only because a policy did, so it goes with the policy;
// a gate whose policy comes back within the grace (a delete and re-create flips nothing).
// A per-policy "keep" cannot be honoured: the decision is made when the policy is gone, and
// remembering its wish across a restart would need state elsewhere or a finalizer, which hangs
// namespace deletion while the operator is down. Keeping is operator-wide: a grace of 0.
//
// Pure: time is passed in, no I/O; the shell is the pod reconciler (src/controllers/pod.ts).
import type { DesiredPodCondition } from '../api/conditions.ts';

export const RELEASE_REASON = 'GateReleased';
/** How soon a due gate whose policy's probes have not been removed yet is looked at again. */
export const PROBES_CATCH_UP_MS = 1_000;
/** Pods whose orphaned gates are timed at once; beyond it the oldest entry is dropped (its clock restarts). */
export const MAX_TRACKED_PODS = 100_000;

export interface ReleaseInput {
  /** The pod's conditions, as the reconciler sees them (its own unseen writes included). */
  conditions: readonly { type: string; status: string }[];
  /** Gate types under readygate's prefixes that no ProbePolicy of the namespace provides to the pod. */
  orphaned: readonly string[];
  /** Gate types gate injection added to the pod (its readygate.dev/injected-gates annotation). */
  injected?: readonly string[];
  /** Types the probe manager still wants written: their policy's removal has not reached it yet. */
  probed: ReadonlySet<string>;
  /** When this process first saw each of the pod's gates orphaned (the previous decision's `since`). */
  since: ReadonlyMap<string, number> | undefined;
  now: number;
  /** The grace period; 0 or less turns release off. */
  graceMs: number;
}

export interface ReleaseDecision {
  /** Types to set True now. */
  release: string[];
  /** The first-seen times to keep: exactly the types orphaned now. */
  since: Map<string, number>;
  /** When to look again, for a gate still within its grace; undefined when nothing is waiting. */
  requeueAfterMs?: number;
}

/** Pure: which orphaned gates of one pod to release now, and when to look again. */
export function decideRelease(input: ReleaseInput): ReleaseDecision {
  const since = new Map<string, number>();
  const release: string[] = [];
  if (input.graceMs <= 0) return { release, since };
  const status = new Map(input.conditions.map((c) => [c.type, c.status]));
  let wait = Number.POSITIVE_INFINITY;
  for (const type of input.orphaned) {
    if (since.has(type)) continue;
    const first = Math.min(input.since?.get(type) ?? input.now, input.now);
    since.set(type, first);
    const s = status.get(type);
    // True: nothing to release (a later False is released at once). No condition: only an injected gate.
    if (s === 'True' || (s === undefined && !input.injected?.includes(type))) continue;
    const due = first + input.graceMs;
    if (input.now < due) wait = Math.min(wait, due - input.now);
    else if (input.probed.has(type)) wait = Math.min(wait, PROBES_CATCH_UP_MS);
    else release.push(type);
  }
  return Number.isFinite(wait) ? { release, since, requeueAfterMs: wait } : { release, since };
}

/** A duration as the flag takes it: 60s, 1500ms, 2m, 1h. */
export function formatGrace(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** The condition a released gate gets: the same text on every pod of the namespace, so it is written once. */
export function releasedCondition(namespace: string, type: string, graceMs: number): DesiredPodCondition {
  return {
    type,
    status: 'True',
    reason: RELEASE_REASON,
    message: `no ProbePolicy in namespace ${namespace} provides ${type} to this pod any more (deleted, or its selector no longer matches); released after ${formatGrace(graceMs)} so the pod is not held NotReady`,
  };
}

/**
 * The first-seen times of orphaned gates, per pod: keyed by namespace/name, valid for one pod
 * UID (a pod re-created under the name starts afresh). Bounded: beyond MAX_TRACKED_PODS the
 * oldest entry is dropped, which only delays that pod's release.
 */
export class OrphanClock {
  readonly #pods = new Map<string, { uid: string; since: Map<string, number> }>();
  readonly #max: number;

  constructor(max = MAX_TRACKED_PODS) {
    this.#max = max;
  }

  /** The first-seen times of the pod under key, if they belong to this UID. */
  get(key: string, uid: string): ReadonlyMap<string, number> | undefined {
    const entry = this.#pods.get(key);
    return entry?.uid === uid ? entry.since : undefined;
  }

  /** Keeps the pod's times; none drops its entry. */
  set(key: string, uid: string, since: Map<string, number>): void {
    this.#pods.delete(key);
    if (since.size === 0) return;
    this.#pods.set(key, { uid, since });
    if (this.#pods.size > this.#max) this.#pods.delete(this.#pods.keys().next().value as string);
  }

  /** The pod is gone or no longer looked at. */
  forget(key: string): void {
    this.#pods.delete(key);
  }

  get size(): number {
    return this.#pods.size;
  }
}
