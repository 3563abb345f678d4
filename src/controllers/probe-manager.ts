// The bridge between reconcilers and the probe engine: one scheduled probe per (policy, pod)
// target, a debouncer per target, the failsafe per policy, and the desired gate conditions per pod.
import type { V1Pod } from '@kubernetes/client-node';
import type { DesiredPodCondition } from '../api/conditions.ts';
import type { ProbePolicy } from '../api/types.ts';
import type { OverloadStats } from '../observability/metrics.ts';

/** Per-policy inputs resolved by the policy reconciler (e.g. a CA read from a Secret). */
export interface PolicyProbeConfig {
  caPem?: string;
  /**
   * Sharded, with each replica caching only its buckets' pods: the policy's targets and recent
   * flips in the buckets other replicas hold (src/controllers/share-counts.ts), for the failsafe's
   * global budget. Absent when the cache holds every pod: foreign flips are then seen in it.
   */
  elsewhere?: { targets: number; flips: readonly { id: string; at: number }[] };
}

/** Why a policy's flips to False are held, and the text its Degraded condition shows. */
export interface FailsafeStatus {
  reason: 'Failsafe' | 'CouldNotLook';
  message: string;
}

/** A policy whose settled targets are probed at a stretched period (src/safety/overload.ts). */
export interface OverloadStatus {
  reason: 'Overloaded';
  stretch: number;
  effectivePeriodSeconds: number;
  message: string;
}

export interface ProbeManager {
  /** Makes the scheduled targets of policy exactly these pods (starting, updating, stopping probes). */
  syncPolicy(policy: ProbePolicy, targets: readonly V1Pod[], config: PolicyProbeConfig): void;
  /**
   * Stops probing the pods this replica no longer owns (a bucket released or lost); what they
   * wanted is forgotten, so nothing more is written to them from here.
   */
  releaseUnowned(): void;
  /**
   * Sharded: a pod this replica does not own changed; a flip to False its owner wrote counts
   * against every replica's failsafe budget (src/safety/failsafe.ts).
   */
  foreignFlip(pod: V1Pod, old: V1Pod | undefined): void;
  /** Sharded: whether the next write to this pod must carry its cached resourceVersion (a seed not yet confirmed). */
  writeGuarded(podUid: string): boolean;
  /** A guarded write landed: the seed was current. */
  written(podUid: string): void;
  /** A guarded write met a newer pod: seed again, from this (newer) view, the targets that disagree with it. */
  reseed(pod: V1Pod): void;
  /** Stops every probe of a policy (deleted); the conditions it wrote stay on the pods. */
  removePolicy(policyKey: string): void;
  /** The gate conditions wanted on a pod (by UID), one per policy probing it, excluding dry runs and held flips. */
  desiredFor(podUid: string): DesiredPodCondition[];
  /** The failsafe hold a policy is under, if any (src/safety/failsafe.ts). */
  failsafe(policyKey: string): FailsafeStatus | undefined;
  /** Held targets by reason and the share of targets that could not be looked at, for metrics. */
  failsafeStats(): { held: Record<string, number>; couldNotLookRatio: number };
  /** The overload a policy's probes are under, if any; sharded, the largest of this replica's stretch and `peerStretch`. */
  overload(policyKey: string, peerStretch?: number): OverloadStatus | undefined;
  /** Sharded: what this replica tells the status writer (src/controllers/shard-reports.ts). */
  shardReport(): { stretch: number; held: Map<string, FailsafeStatus['reason']> };
  /** Stretch, loop utilisation and effective periods, for metrics. */
  overloadStats(): OverloadStats;
  /** Stops every probe and timer. */
  stop(): void;
}
