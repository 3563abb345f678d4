// Event handlers: map informer events to the keys to reconcile, as controller-runtime's
// handlers and predicates do. Reconcile keys, not events: an event only says which keys to look at
// again; the reconcilers read the whole state from the caches.
import type { V1Pod } from '@kubernetes/client-node';
import type { ProbePolicy } from '../api/types.ts';
import type { Request } from '../runtime/controller.ts';
import { hasGate, podChange } from './targets.ts';

/** How long a policy's ready counts may lag behind its pods' conditions, at least. */
export const POLICY_STATUS_BATCH_MS = 1_000;
/** ... and at most, however costly a pass over the namespace's pods is. */
export const MAX_POLICY_STATUS_BATCH_MS = 10_000;
/** A batch lasts this many times the namespace's last pass: status-only passes take at most 1/20 of the loop. */
export const STATUS_BATCH_COST_FACTOR = 20;

/**
 * The batch period of status-only policy reconciles per namespace, from what its last pass cost.
 * A pass reads every pod of the namespace: 130 ms of CPU at 30,000 pods, which at one pass a
 * second took 13 % of the operator's CPU, plus its garbage, in the 30,000-pod start-up profile.
 */
export class StatusBatch {
  readonly #passMs = new Map<string, number>();

  /** Records the CPU time of one policy pass in namespace. */
  record(namespace: string, ms: number): void {
    this.#passMs.set(namespace, ms);
  }

  /** Pure rule: how long the namespace's status-only reconciles wait. */
  delayMs(namespace: string): number {
    const ms = (this.#passMs.get(namespace) ?? 0) * STATUS_BATCH_COST_FACTOR;
    return Math.min(MAX_POLICY_STATUS_BATCH_MS, Math.max(POLICY_STATUS_BATCH_MS, Math.round(ms)));
  }
}

interface Queue {
  enqueue(req: Request): void;
  enqueueAfter(req: Request, delayMs: number): void;
}

interface Source<T> {
  on(handlers: { add(obj: T): void; update(obj: T, old: T): void; delete(obj: T): void }): void;
}

/**
 * Like controller-runtime's GenerationChangedPredicate: an update that leaves the spec's generation
 * (and deletion) alone is a status write, most often our own; reconciling on it would turn every
 * status write into another full pass, and another write.
 */
export function generationChanged(p: ProbePolicy, old: ProbePolicy): boolean {
  return (
    p.metadata?.generation !== old.metadata?.generation ||
    Boolean(p.metadata?.deletionTimestamp) !== Boolean(old.metadata?.deletionTimestamp)
  );
}

/** Sharded (docs/sharding.md): which pods this replica writes, and whether it writes policy status. */
export interface ShardFilter {
  owns(podUid: string): boolean;
  isStatusWriter(): boolean;
  /** Whether this replica counts its share for the status writer (it caches only its buckets' pods). */
  countsShare?(): boolean;
  /** Another replica's pod changed: its flips count against the shared failsafe budget. */
  foreignPod?(pod: V1Pod, old: V1Pod | undefined): void;
}

/**
 * Whether a policy update may leave pods without it: its selector changed (conditionType is
 * immutable), or it is being deleted. Those pods are looked at again, for their gate's release.
 */
export function mayDropPods(p: ProbePolicy, old: ProbePolicy): boolean {
  return (
    JSON.stringify(p.spec?.selector ?? {}) !== JSON.stringify(old.spec?.selector ?? {}) ||
    p.spec?.conditionType !== old.spec?.conditionType ||
    (Boolean(p.metadata?.deletionTimestamp) && !old.metadata?.deletionTimestamp)
  );
}

/** Wires pod and policy events to the pod and policy queues. */
export function watchForKeys(
  pods: Source<V1Pod> & { list(ns: string): V1Pod[] },
  policies: Source<ProbePolicy> & { list(ns: string): ProbePolicy[] },
  podQueue: Pick<Queue, 'enqueue'>,
  policyQueue: Queue,
  batch: Pick<StatusBatch, 'delayMs'> = new StatusBatch(),
  shards?: ShardFilter,
): void {
  const policiesOf = (ns: string, delayMs = 0) => {
    for (const p of policies.list(ns))
      policyQueue.enqueueAfter({ namespace: ns, name: p.metadata?.name ?? '' }, delayMs);
  };
  const onPod = (pod: V1Pod, old?: V1Pod) => {
    const ns = pod.metadata?.namespace ?? '';
    // Another replica's pod: it alone writes it; its status moves only the leader's counts.
    if (!shards || shards.owns(pod.metadata?.uid ?? '')) {
      podQueue.enqueue({ namespace: ns, name: pod.metadata?.name ?? '' });
    } else shards.foreignPod?.(pod, old);
    // A policy reconcile reads every pod of the namespace: run it at once only when targets may
    // change; a condition change only moves the ready counts, which wait up to a batch period
    // (as the EndpointSlice controller batches pod updates), or 10,000 pods flipping one by one
    // would mean 10,000 full passes; a costly namespace waits longer (StatusBatch).
    const change = old === undefined ? 'targets' : podChange(old, pod);
    if (change === 'targets') policiesOf(ns);
    else if (change === 'status' && (!shards || shards.isStatusWriter() || shards.countsShare?.())) {
      policiesOf(ns, batch.delayMs(ns));
    }
  };
  pods.on({ add: (pod) => onPod(pod), update: (pod, old) => onPod(pod, old), delete: (pod) => onPod(pod) });
  const onPolicy = (p: ProbePolicy) => {
    const ns = p.metadata?.namespace ?? '';
    // Conflicts depend on every policy of the namespace, so look at all of them again.
    policyQueue.enqueue({ namespace: ns, name: p.metadata?.name ?? '' });
    policiesOf(ns);
  };
  // The pods of the namespace that list the policy's gate, which it may have stopped providing:
  // their pod reconcile starts the release clock now, not at their next event or the resync.
  // One pass over the namespace's cached pods; the queue collapses repeated keys.
  const podsWithGate = (p: ProbePolicy) => {
    const ns = p.metadata?.namespace ?? '';
    const type = p.spec?.conditionType ?? '';
    for (const pod of pods.list(ns)) {
      if (!hasGate(pod, type) || (shards && !shards.owns(pod.metadata?.uid ?? ''))) continue;
      podQueue.enqueue({ namespace: ns, name: pod.metadata?.name ?? '' });
    }
  };
  policies.on({
    add: onPolicy,
    update: (p, old) => {
      if (!generationChanged(p, old)) return;
      onPolicy(p);
      if (mayDropPods(p, old)) podsWithGate(old);
    },
    delete: (p) => {
      onPolicy(p);
      podsWithGate(p);
    },
  });
}
