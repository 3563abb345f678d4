// Sharding as the operator uses it (docs/sharding.md): the bucket Leases every replica competes
// for, which pods this replica owns now, and the fence each pod write goes through. The rules are
// in src/safety/sharding.ts; the lease I/O in src/kube/shard-leases.ts.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type OperatorOptions, shardLeaseId } from '../cli/options.ts';
import { restLeaseSetClient } from '../kube/lease.ts';
import { ShardCoordinator } from '../kube/shard-leases.ts';
import { leaseCallMetrics, type Metrics } from '../observability/metrics.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Runnable } from '../runtime/manager.ts';
import { Fence } from '../safety/fencing.ts';
import { bucketOf, handoverSince, mayAcquireBuckets } from '../safety/sharding.ts';
import { decodeReport, PeerReports, SHARD_REPORT_ANNOTATION } from './shard-reports.ts';
import { decodeShareCounts, type PeerCounts, SHARE_COUNTS_ANNOTATION } from './share-counts.ts';
import { PODS_NOT_GATED } from './ungated.ts';

export interface Sharding {
  coordinator: ShardCoordinator;
  /** Whether this replica holds the bucket of the pod with this UID now. */
  owns(podUid: string): boolean;
  /**
   * From when the previous holder of this pod's bucket may have stopped probing it (src/safety/sharding.ts,
   * handoverSince); undefined when this replica does not hold the bucket.
   */
  missedSince(podUid: string): number | undefined;
  /** The fence a write to the pod with this UID goes through: its bucket's. */
  fenceFor(podUid: string): Fence;
  /** Whether this replica holds any bucket now (it probes, so it may speak for its share). */
  holdsAny(): boolean;
  /** Runs the coordinator until the signal aborts, then hands every Lease back. */
  runnable: Runnable;
}

export interface ShardingHooks {
  /** Who holds the leader Lease as last seen (undefined: not seen yet), for decision 6. */
  leader(): string | undefined;
  /** Buckets were acquired: every policy is reconciled, which seeds their targets from the pods. */
  onAcquired(): void;
  /** Buckets were lost or released: their targets are dropped before anything else runs. */
  onLost(): void;
  /** This replica's report to the status writer, written on its member Lease (src/controllers/shard-reports.ts). */
  report(): string;
  /** This replica's share counts, published while it caches only its buckets' pods (src/controllers/share-counts.ts). */
  counts?(): string | undefined;
}

/** Builds the coordinator of `opts.shardBuckets` buckets and the ownership view over it. */
export function createSharding(
  kc: KubeConfig,
  opts: OperatorOptions,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
  hooks: ShardingHooks,
): Sharding {
  const buckets = opts.shardBuckets;
  const coordinator = new ShardCoordinator({
    client: restLeaseSetClient(kc, opts.leaderElectionNamespace, leaseCallMetrics(metrics)),
    namespace: opts.leaderElectionNamespace,
    leaseId: shardLeaseId(opts),
    identity: opts.identity,
    buckets,
    leaseDurationMs: opts.leaseDurationMs,
    renewDeadlineMs: opts.renewDeadlineMs,
    retryPeriodMs: opts.retryPeriodMs,
    clock,
    memberAnnotations: () => {
      const counts = hooks.counts?.();
      return {
        [SHARD_REPORT_ANNOTATION]: hooks.report(),
        ...(counts === undefined ? {} : { [SHARE_COUNTS_ANNOTATION]: counts }),
      };
    },
    mayAcquire: (view) =>
      mayAcquireBuckets({
        otherSets: view.otherSets,
        leader: hooks.leader(),
        // A dead leader of this set holds expired bucket Leases: its buckets are taken over
        // at once, not after someone else won the leader Lease.
        members: new Set([...view.members.map((m) => m.identity), ...[...view.holders.values()].map((h) => h.holder)]),
      }),
    log: (msg, err) => (err === undefined ? log.info(msg) : log.warn({ err: String(err) }, msg)),
  });
  const owned = coordinator.owned();
  const acquired = coalesced(hooks.onAcquired);
  // A pod without a UID (never, from the API server) belongs to no bucket: its fence never holds.
  const none = new Fence({ clock, renewDeadlineMs: opts.renewDeadlineMs, marginMs: 0 });
  const handovers = handoverTimes(clock, opts.leaseDurationMs, opts.retryPeriodMs);
  coordinator.onAcquired((b) => {
    handovers.acquired(b);
    metrics.shardBucketChangesTotal.inc({ kind: 'acquired' });
    metrics.shardBucketsOwned.set(owned.size);
    log.info({ bucket: b, owned: owned.size }, 'shard bucket acquired');
    acquired();
  });
  coordinator.onLost((b) => {
    handovers.lost(b);
    metrics.shardBucketChangesTotal.inc({ kind: 'lost' });
    metrics.shardBucketsOwned.set(owned.size);
    log.info({ bucket: b, owned: owned.size }, 'shard bucket lost');
    // At once, not coalesced: the bucket's targets must not run another probe or want a write.
    hooks.onLost();
  });
  return {
    coordinator,
    owns: (uid) => uid !== '' && owned.has(bucketOf(uid, buckets)),
    missedSince: (uid) => (uid === '' ? undefined : handovers.since(bucketOf(uid, buckets))),
    fenceFor: (uid) => (uid === '' ? none : coordinator.fence(bucketOf(uid, buckets))),
    holdsAny: () => owned.size > 0,
    runnable: { start: (signal) => coordinator.run(signal) },
  };
}

/**
 * The other replicas' reports, read from each LIST of the member Leases. `onChange` gets the
 * policies whose merged hold changed, or every policy ('all') when the largest stretch did;
 * `onCounts` the policies whose peers' share counts changed, if `counts` is followed.
 */
export function followPeers(
  sharding: Sharding,
  identity: string,
  onChange: (policies: string[] | 'all') => void,
  counts?: { peers: PeerCounts; onCounts(policies: string[]): void },
): PeerReports {
  const peers = new PeerReports();
  sharding.coordinator.onMembers((view) => {
    const members = view.members.map((m) => ({
      identity: m.identity,
      report: decodeReport(m.annotations[SHARD_REPORT_ANNOTATION]),
    }));
    const { changed, stretchChanged } = peers.update(identity, members);
    if (stretchChanged) onChange('all');
    else if (changed.length > 0) onChange(changed);
    if (!counts) return;
    const shares = view.members.map((m) => ({
      identity: m.identity,
      counts: decodeShareCounts(m.annotations[SHARE_COUNTS_ANNOTATION]),
    }));
    const moved = counts.peers.update(identity, shares);
    if (moved.length > 0) counts.onCounts(moved);
  });
  return peers;
}

/** When each held bucket was acquired, and from when its previous holder may have stopped probing it. */
export function handoverTimes(clock: Clock, leaseDurationMs: number, retryPeriodMs: number) {
  const acquiredAt = new Map<number, number>();
  return {
    acquired: (b: number) => acquiredAt.set(b, clock.now()),
    lost: (b: number) => acquiredAt.delete(b),
    /** Undefined for a bucket not held, or held past the horizon (src/safety/sharding.ts, handoverSince). */
    since(b: number): number | undefined {
      const at = acquiredAt.get(b);
      return at === undefined ? undefined : handoverSince(at, clock.now(), leaseDurationMs, retryPeriodMs);
    },
  };
}

/** `hook` run once for every burst of calls in one turn of the event loop (a round acquires many buckets). */
function coalesced(hook: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      hook();
    });
  };
}

/** Policy Events about the whole policy, recorded by the status writer alone. */
const STATUS_WRITER_REASONS = new Set(['PolicyDeleted', PODS_NOT_GATED]);

/** Which fence guards each write, and who writes what; one home for the rule (docs/sharding.md). */
export interface WriteGuards {
  /** The leader's fence: policy status, and unsharded, every write. */
  statusFence: Fence;
  podFence(podUid: string): Fence;
  /** Whether this replica writes policy status now. */
  writesStatus(): boolean;
  eventAllowed(obj: { kind?: string; uid?: string }, reason: string): boolean;
  shards?: {
    owns(podUid: string): boolean;
    isStatusWriter(): boolean;
    countsShare(): boolean;
  };
}

/**
 * The write guards: the leader fence for everything, or sharded, each pod's bucket fence.
 * `countsShare` says whether this replica caches only its buckets' pods (src/controllers/pod-cache.ts).
 */
export function writeGuards(leader: Fence, sharding: Sharding | undefined, countsShare = () => false): WriteGuards {
  if (!sharding) {
    // Only the leader runs the controllers at all: it always writes status.
    return {
      statusFence: leader,
      podFence: () => leader,
      writesStatus: () => true,
      eventAllowed: () => leader.holds(),
    };
  }
  const writesStatus = () => leader.holds();
  return {
    statusFence: leader,
    podFence: sharding.fenceFor,
    writesStatus,
    // A pod's Events come from its owner; a policy's from any replica probing a share of it
    // (each says which in reportingInstance), but what is about the whole policy (its deletion,
    // its ungated pods) only from the status writer; but with a share-only cache, each replica
    // speaks for the ungated pods it sees, those of its buckets.
    eventAllowed: (obj, reason) =>
      obj.kind === 'Pod'
        ? sharding.fenceFor(obj.uid ?? '').holds()
        : reason === PODS_NOT_GATED && countsShare()
          ? sharding.holdsAny()
          : STATUS_WRITER_REASONS.has(reason)
            ? leader.holds()
            : sharding.holdsAny() || leader.holds(),
    shards: { owns: sharding.owns, isStatusWriter: writesStatus, countsShare },
  };
}
