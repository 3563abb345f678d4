// Pure helpers for the two kinds of conditions the operator writes: the gate condition on pods
// (core/v1 PodCondition) and metav1.Condition on the ProbePolicy status.
import type { Condition } from './types.ts';

/** The gate condition the operator wants on a pod. */
export interface DesiredPodCondition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** A pod condition as observed (timestamps normalised to RFC 3339 strings). */
export interface ObservedPodCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string | Date;
}

/** Reports whether writing desired would change what the pod says (status, reason or message). */
export function podConditionDiffers(desired: DesiredPodCondition, observed: ObservedPodCondition | undefined): boolean {
  return (
    observed === undefined ||
    observed.status !== desired.status ||
    (observed.reason ?? '') !== desired.reason ||
    (observed.message ?? '') !== desired.message
  );
}

/** RFC 3339 with second precision, the format the API server stores for condition times. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Returns conditions with c set, keeping lastTransitionTime when the status does not change
 * (apimachinery meta.SetStatusCondition). The input is not modified.
 */
export function setStatusCondition(
  conditions: readonly Condition[] | undefined,
  c: Omit<Condition, 'lastTransitionTime'>,
  nowMs: number,
): Condition[] {
  const out = [...(conditions ?? [])];
  const i = out.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? out[i] : undefined;
  const next: Condition = {
    ...c,
    lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : rfc3339(nowMs),
  };
  if (i >= 0) out[i] = next;
  else out.push(next);
  return out;
}

/** Compares metav1.Conditions by type, status, reason, message and observedGeneration, ignoring times. */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const key = (c: Condition) =>
    `${c.type}\u0000${c.status}\u0000${c.reason}\u0000${c.message}\u0000${c.observedGeneration ?? ''}`;
  const ka = (a ?? []).map(key).sort();
  const kb = (b ?? []).map(key).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}
