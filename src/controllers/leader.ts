// Leader election as the operator uses it: the fence every write goes through and the Lease-based
// election the Manager runs its leader-only Runnables under (src/runtime/manager.ts).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OperatorOptions } from '../cli/options.ts';
import { statusCode } from '../kube/errors.ts';
import {
  LeaderElector,
  type Lease,
  LeaseObservations,
  type LeaseSetClient,
  leaseRecord,
  restLeaseClient,
} from '../kube/lease.ts';
import { SHARD_BUCKET_LABEL } from '../kube/shard-leases.ts';
import { leaseCallMetrics, type Metrics } from '../observability/metrics.ts';
import type { Clock } from '../runtime/clock.ts';
import type { LeaderElection, Runnable } from '../runtime/manager.ts';
import { Fence } from '../safety/fencing.ts';

/** The fence every write goes through when leader election is on (src/safety/fencing.ts). */
export function leaseFence(opts: OperatorOptions, clock: Clock): Fence {
  // A write must be able to finish before the deadline: a quarter of the renew deadline, at most 1 s.
  return new Fence({
    clock,
    renewDeadlineMs: opts.renewDeadlineMs,
    marginMs: Math.min(1_000, opts.renewDeadlineMs / 4),
  });
}

/** The Lease-based election the Manager runs leader-only Runnables under. */
export function leaderElection(
  kc: KubeConfig,
  opts: OperatorOptions,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
  fence: Fence,
  onNewLeader?: (identity: string) => void,
): LeaderElection {
  const elector = new LeaderElector({
    client: restLeaseClient(kc, opts.leaderElectionNamespace, opts.leaderElectionId, leaseCallMetrics(metrics)),
    namespace: opts.leaderElectionNamespace,
    name: opts.leaderElectionId,
    identity: opts.identity,
    leaseDurationMs: opts.leaseDurationMs,
    renewDeadlineMs: opts.renewDeadlineMs,
    retryPeriodMs: opts.retryPeriodMs,
    clock,
    fence,
    onNewLeader: (id) => {
      log.info({ leader: id }, 'leader observed');
      onNewLeader?.(id);
    },
    log: (msg, err) => log.warn({ err: String(err) }, msg),
  });
  // client-go's leaderelection gauge, named after the Lease; 0 until this process leads.
  const master = metrics.leaderElectionMasterStatus.labels({ name: opts.leaderElectionId });
  master.set(0);
  return {
    run: (signal: AbortSignal, hooks: { onStartedLeading(): void; onStoppedLeading(): void }) =>
      elector.run(signal, {
        onStartedLeading: () => {
          log.info({ identity: opts.identity }, 'became leader; starting controllers');
          metrics.leader.set(1);
          master.set(1);
          hooks.onStartedLeading();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          master.set(0);
          log.warn({ identity: opts.identity }, 'stopped leading');
          hooks.onStoppedLeading();
        },
      }),
  };
}

/**
 * Sharded, the leader Lease only chooses who writes ProbePolicy status (docs/sharding.md,
 * decision 3): every replica probes its share either way, so losing the Lease ends no process.
 * A lost term campaigns again after a retry period; stopping releases the Lease.
 */
export function statusLeader(
  election: LeaderElection,
  clock: Clock,
  retryPeriodMs: number,
  onStartedLeading: () => void,
): Runnable {
  return {
    start: async (signal) => {
      while (!signal.aborted) {
        await election.run(signal, { onStartedLeading, onStoppedLeading: () => {} });
        await clock.sleep(retryPeriodMs, signal).catch(() => {});
      }
    },
  };
}

export interface NoShardsWait {
  client: Pick<LeaseSetClient, 'list'>;
  clock: Clock;
  leaseDurationMs: number;
  retryPeriodMs: number;
  log: Logger;
}

/**
 * Unsharded, the leader probes every pod, so it starts only once no shard bucket Lease is live
 * (decision 6 of docs/sharding.md): when sharding is turned off in a rolling update, the old
 * replicas keep their buckets until they stop, and two writers must not overlap. A Lease is live
 * while held and seen renewed within its duration, judged as the elector judges (src/kube/lease.ts).
 * Without leave to list Leases (a 403: RBAC from before this check) it warns and goes on.
 */
export async function waitForNoLiveShards(w: NoShardsWait, signal: AbortSignal): Promise<void> {
  const observed = new LeaseObservations();
  let said = false;
  while (!signal.aborted) {
    let leases: Lease[];
    try {
      leases = await w.client.list(SHARD_BUCKET_LABEL, signal);
    } catch (err) {
      if (statusCode(err) === 403) {
        w.log.warn('cannot list Leases to check that no shard bucket is held (grant leases list); not waiting');
        return;
      }
      if (signal.aborted) return;
      w.log.warn({ err: String(err) }, 'listing shard Leases failed; retrying');
      await w.clock.sleep(w.retryPeriodMs, signal).catch(() => {});
      continue;
    }
    const now = w.clock.now();
    observed.retain(new Set(leases.map((l) => l.metadata.name)));
    const live = leases.filter((l) => {
      observed.observe(l.metadata.name, leaseRecord(l), now);
      return (l.spec?.holderIdentity ?? '') !== '' && !observed.expired(l.metadata.name, l, now, w.leaseDurationMs);
    });
    if (live.length === 0) return;
    if (!said) {
      const holders = [...new Set(live.map((l) => l.spec?.holderIdentity))].join(', ');
      w.log.warn({ holders, leases: live.length }, 'waiting for sharded replicas to release their bucket Leases');
      said = true;
    }
    await w.clock.sleep(w.retryPeriodMs, signal).catch(() => {});
  }
}
