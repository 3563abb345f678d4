// Pure: which pods a policy probes. A target is a (policy, pod) pair; this module decides the
// pairs from the informer caches and nothing else, so it is tested without an API server.
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { selectorMatches } from '../api/selector.ts';
import type { ProbePolicy } from '../api/types.ts';

export interface PolicyTargets {
  /** Pods that select into the policy: matching selector, gate listed, not terminating or finished. */
  matched: V1Pod[];
  /** Matched pods with an IP whose condition this policy owns: these are probed. */
  targets: V1Pod[];
  /** Matched pods whose condition an older policy with the same conditionType owns. */
  conflicted: V1Pod[];
  /**
   * Live pods the selector matches that do not list the gate, while the policy counts them
   * (countsUngated): created before gate injection covered them, or where it does not run.
   * readinessGates is immutable, so readygate cannot gate them until they are recreated.
   */
  ungated: V1Pod[];
}

/** Reports whether the pod lists conditionType in spec.readinessGates. */
export function hasGate(pod: V1Pod, conditionType: string): boolean {
  const gates = pod.spec?.readinessGates;
  if (gates === undefined) return false;
  for (const g of gates) if (g.conditionType === conditionType) return true;
  return false;
}

/** Reports whether a pod can be probed at all: not being deleted and not finished. */
export function isLive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return !pod.metadata?.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

/** Reports whether policy selects pod (same namespace, selector, gate, live). */
export function selects(policy: ProbePolicy, pod: V1Pod): boolean {
  return (
    pod.metadata?.namespace === policy.metadata?.namespace &&
    isLive(pod) &&
    hasGate(pod, policy.spec.conditionType) &&
    selectorMatches(policy.spec.selector, pod.metadata?.labels)
  );
}

/** Whether the policy counts the pods it selects that lack its gate: spec.injection Enabled (the default). */
export function countsUngated(policy: ProbePolicy): boolean {
  return policy.spec.injection !== 'Disabled';
}

/** Reports whether the selector matches the live pod of the policy's namespace, whatever its gates. */
export function selectsIgnoringGate(policy: ProbePolicy, pod: V1Pod): boolean {
  return (
    pod.metadata?.namespace === policy.metadata?.namespace &&
    isLive(pod) &&
    selectorMatches(policy.spec.selector, pod.metadata?.labels)
  );
}

/** Orders policies oldest first (creationTimestamp, then name): the older policy wins a conflict. */
export function olderFirst(a: ProbePolicy, b: ProbePolicy): number {
  const ta = String(a.metadata?.creationTimestamp ?? '');
  const tb = String(b.metadata?.creationTimestamp ?? '');
  if (ta !== tb) return ta < tb ? -1 : 1;
  const na = a.metadata?.name ?? '';
  const nb = b.metadata?.name ?? '';
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/**
 * Splits the pods of the policy's namespace into matched, probed, conflicted and ungated, given
 * every policy of that namespace (including policy itself). One pass, and per pod only what
 * `selects` reads; the selector of a pod without the gate is read only to count it as ungated.
 */
export function computeTargets(
  policy: ProbePolicy,
  pods: Iterable<V1Pod>,
  policies: readonly ProbePolicy[],
): PolicyTargets {
  const rivals = policies
    .filter((p) => p.spec.conditionType === policy.spec.conditionType && p.metadata?.uid !== policy.metadata?.uid)
    .filter((p) => olderFirst(p, policy) < 0);
  const namespace = policy.metadata?.namespace;
  const type = policy.spec.conditionType;
  const counting = countsUngated(policy);
  const out: PolicyTargets = { matched: [], targets: [], conflicted: [], ungated: [] };
  for (const pod of pods) {
    if (pod.metadata?.namespace !== namespace || !isLive(pod)) continue;
    // The gate before the selector, as in selects(): it is the cheaper test.
    const gated = hasGate(pod, type);
    if (!gated && !counting) continue;
    if (!selectorMatches(policy.spec.selector, pod.metadata?.labels)) continue;
    if (!gated) {
      out.ungated.push(pod);
      continue;
    }
    out.matched.push(pod);
    if (rivals.some((r) => selects(r, pod))) out.conflicted.push(pod);
    else if (pod.status?.podIP) out.targets.push(pod);
  }
  return out;
}

/**
 * What a pod update means to the policies of its namespace: 'targets' when it may change which
 * pods are matched or probed and how (so it is looked at again at once: time to gate), 'status'
 * when only conditions moved (ready counts in the policy status, batched) or its controller did
 * (the workload an ungated pod's Event names), 'none' otherwise.
 */
export function podChange(old: V1Pod, pod: V1Pod): 'targets' | 'status' | 'none' {
  const a = old.metadata;
  const b = pod.metadata;
  if (
    a?.uid !== b?.uid ||
    a?.namespace !== b?.namespace ||
    Boolean(a?.deletionTimestamp) !== Boolean(b?.deletionTimestamp) ||
    old.status?.phase !== pod.status?.phase ||
    old.status?.podIP !== pod.status?.podIP ||
    !sameLabels(a?.labels, b?.labels) ||
    !sameGates(old, pod)
  ) {
    return 'targets';
  }
  if (controllerOf(old)?.uid !== controllerOf(pod)?.uid) return 'status';
  const ca = old.status?.conditions ?? [];
  const cb = pod.status?.conditions ?? [];
  if (ca.length !== cb.length) return 'status';
  for (let i = 0; i < ca.length; i++) {
    if (ca[i]?.type !== cb[i]?.type || ca[i]?.status !== cb[i]?.status) return 'status';
  }
  return 'none';
}

/** The pod's controller: the ownerReference with controller true (at most one, by the API's rules). */
export function controllerOf(pod: V1Pod): V1OwnerReference | undefined {
  const refs = pod.metadata?.ownerReferences;
  if (refs === undefined) return undefined;
  for (const r of refs) if (r.controller) return r;
  return undefined;
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === b) return true;
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

function sameGates(a: V1Pod, b: V1Pod): boolean {
  const ga = a.spec?.readinessGates ?? [];
  const gb = b.spec?.readinessGates ?? [];
  return ga.length === gb.length && ga.every((g, i) => g.conditionType === gb[i]?.conditionType);
}
