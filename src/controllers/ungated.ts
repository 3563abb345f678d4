// Pure: what to tell about the pods a policy selects that do not list its gate (computeTargets'
// `ungated`). readinessGates is immutable, so such a pod is gated only once it is recreated, and
// recreating is done through the workload that owns it: the Events name the workload and the
// command. The workload is read from the pod alone (ownerReference and pod-template-hash label),
// so the operator needs no permission on Deployments, ReplicaSets or Jobs.
import type { V1Pod } from '@kubernetes/client-node';
import { controllerOf } from './targets.ts';

/** The Event reason, recorded on the ProbePolicy: one per workload with ungated pods. */
export const PODS_NOT_GATED = 'PodsNotGated';
/** At most this many workloads get an Event of their own per policy pass; the rest share one. */
export const UNGATED_EVENTS_CAP = 10;
/** An unchanged or shrinking workload is announced again after this long, the event sink's dedupe window. */
export const UNGATED_REMIND_MS = 10 * 60_000;

/** The object that owns a pod, as `kubectl` names it. */
export interface Workload {
  apiVersion: string;
  kind: string;
  name: string;
}

/** Kinds whose pods `kubectl rollout restart` recreates. */
const RESTARTABLE = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

/**
 * The workload that owns the pod: a ReplicaSet named `<deployment>-<pod-template-hash>` is that
 * Deployment's (the name the Deployment controller gives it); any other controller is itself; a
 * pod without a controller is its own.
 */
export function owningWorkload(pod: V1Pod): Workload {
  const ref = controllerOf(pod);
  if (!ref) return { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '' };
  if (ref.kind === 'ReplicaSet' && isApps(ref.apiVersion)) {
    const hash = pod.metadata?.labels?.['pod-template-hash'];
    if (hash && ref.name.length > hash.length + 1 && ref.name.endsWith(`-${hash}`)) {
      return { apiVersion: ref.apiVersion, kind: 'Deployment', name: ref.name.slice(0, -hash.length - 1) };
    }
  }
  return { apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name };
}

const isApps = (apiVersion: string) => apiVersion.startsWith('apps/');
const isBuiltIn = (w: Workload) =>
  w.apiVersion === 'v1' || isApps(w.apiVersion) || (w.kind === 'Job' && w.apiVersion.startsWith('batch/'));

/** `deployment/web` for Kubernetes' own kinds; `Rollout web (argoproj.io/v1alpha1)` for others. */
export function workloadName(w: Workload): string {
  return isBuiltIn(w) ? `${w.kind.toLowerCase()}/${w.name}` : `${w.kind} ${w.name} (${w.apiVersion})`;
}

/** What recreates the workload's pods with the gate, in words, with the command where there is one. */
export function recreateAdvice(w: Workload, namespace: string): string {
  const name = workloadName(w);
  if (RESTARTABLE.has(w.kind) && isApps(w.apiVersion)) return `kubectl rollout restart ${name} -n ${namespace}`;
  if (w.kind === 'Pod' && w.apiVersion === 'v1') {
    return `delete and recreate the pod (kubectl delete ${name} -n ${namespace}, then create it again from its manifest)`;
  }
  if (w.kind === 'ReplicaSet' && isApps(w.apiVersion)) {
    return `delete its pods one at a time (kubectl delete pod NAME -n ${namespace}); ${name} creates them again`;
  }
  if (w.kind === 'Job' && isBuiltIn(w)) return `delete and recreate ${name} in namespace ${namespace}`;
  return `recreate its pods through their controller, ${name}`;
}

export interface UngatedGroup {
  workload: Workload;
  pods: number;
}

export interface UngatedGroups {
  /** The workloads with the most ungated pods, most first (then by kind and name), at most the cap. */
  top: UngatedGroup[];
  /** The workloads and pods left out of `top`. */
  more: { workloads: number; pods: number };
}

/**
 * Groups ungated pods by owning workload. Pods are first counted per controller UID (no string
 * built per pod), then the few controllers are named: a Deployment's old and new ReplicaSets fold
 * into one Deployment.
 */
export function groupUngated(pods: readonly V1Pod[], cap = UNGATED_EVENTS_CAP): UngatedGroups {
  const byController = new Map<string, { sample: V1Pod; pods: number }>();
  for (const pod of pods) {
    const key = controllerOf(pod)?.uid || `pod/${pod.metadata?.uid || pod.metadata?.name}`;
    const entry = byController.get(key);
    if (entry) entry.pods++;
    else byController.set(key, { sample: pod, pods: 1 });
  }
  const byWorkload = new Map<string, UngatedGroup>();
  for (const { sample, pods: n } of byController.values()) {
    const workload = owningWorkload(sample);
    const key = `${workload.apiVersion}/${workload.kind}/${workload.name}`;
    const group = byWorkload.get(key);
    if (group) group.pods += n;
    else byWorkload.set(key, { workload, pods: n });
  }
  const all = [...byWorkload.values()].sort(
    (a, b) => b.pods - a.pods || compare(a.workload.kind, b.workload.kind) || compare(a.workload.name, b.workload.name),
  );
  const top = all.slice(0, cap);
  let morePods = 0;
  for (const g of all.slice(cap)) morePods += g.pods;
  return { top, more: { workloads: all.length - top.length, pods: morePods } };
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** Said in every PodsNotGated Event: where injection does not run, recreating adds no gate. */
const NO_INJECTION_HINT =
  'Without gate injection (chart value injection.enabled), list the gate in the pod template or set spec.injection: Disabled.';

/** The PodsNotGated Event message for one workload; at most ~1,000 characters with names of the longest valid lengths. */
export function ungatedMessage(g: UngatedGroup, conditionType: string, namespace: string): string {
  const w = g.workload;
  const one = g.pods === 1;
  const pods =
    w.kind === 'Pod' && w.apiVersion === 'v1'
      ? `pod ${w.name} is`
      : `${plural(g.pods, 'pod', 'pods')} of ${workloadName(w)} ${one ? 'is' : 'are'}`;
  const them = one ? 'it' : 'them';
  return `${pods} selected but ${one ? 'does' : 'do'} not list ${conditionType} in spec.readinessGates (created before gate injection covered ${them}, or the namespace opts out): readygate does not gate ${them}. To gate ${them}: ${recreateAdvice(w, namespace)}. ${NO_INJECTION_HINT}`;
}

/** The PodsNotGated Event message for the workloads beyond the cap. */
export function ungatedMoreMessage(more: UngatedGroups['more'], conditionType: string, shown: number): string {
  return `${plural(more.workloads, 'more workload has', 'more workloads have')} ${plural(more.pods, 'pod', 'pods')} selected that do not list ${conditionType} in spec.readinessGates; Events name only the ${shown} workloads with the most (status.ungatedPods counts them all; readygate explain pod NAME says what to do for a pod).`;
}

/** What was last announced for one key of a policy: the pod count and when. */
export interface Announced {
  pods: number;
  at: number;
}

export interface Announcement {
  key: string;
  pods: number;
  message: string;
}

/**
 * Pure: which of a policy's PodsNotGated Events to record now, and what to remember. A workload is
 * announced when it is new, when it has more ungated pods than last said, or once UNGATED_REMIND_MS
 * passed since: a restart that gates its pods one by one is progress, not news, and must not
 * record an Event per pod replaced. Only current keys are remembered: a workload that comes back
 * is news again.
 */
export function dueAnnouncements(
  groups: UngatedGroups,
  conditionType: string,
  namespace: string,
  last: ReadonlyMap<string, Announced> | undefined,
  now: number,
): { due: Announcement[]; next: Map<string, Announced> } {
  const due: Announcement[] = [];
  const next = new Map<string, Announced>();
  // The message is built only when due: this runs on every pass of the status writer.
  const consider = (key: string, pods: number, message: () => string) => {
    const before = last?.get(key);
    if (!before || pods > before.pods || now - before.at >= UNGATED_REMIND_MS) {
      due.push({ key, pods, message: message() });
      next.set(key, { pods, at: now });
    } else next.set(key, { pods, at: before.at });
  };
  for (const g of groups.top) {
    const w = g.workload;
    consider(`${w.apiVersion}/${w.kind}/${w.name}`, g.pods, () => ungatedMessage(g, conditionType, namespace));
  }
  const { more } = groups;
  if (more.workloads > 0) {
    consider('', more.pods, () => ungatedMoreMessage(more, conditionType, groups.top.length));
  }
  return { due, next };
}
