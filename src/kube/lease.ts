// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// only the leader probes and writes; a standby takes over once the lease has not been renewed
// for leaseDuration. Expiry is judged by when *this process observed* the record change, not by
// the timestamps in it, so clock skew between replicas cannot cause two leaders.
// client-node has no leader election, hence this small module.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { isConflict, isNotFound } from './errors.ts';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  onStartedLeading: () => void;
  /** Called once when leadership is lost or released; the process should stop acting as leader. */
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
  log?: (msg: string, err?: unknown) => void;
}

/**
 * A metav1.MicroTime value. client-node passes V1MicroTime through its serializer untouched, so
 * a Date would go out with millisecond precision, which the API server rejects for MicroTime.
 */
export function microTime(ms: number): Date {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Runs the election until signal aborts; on abort a held lease is released so a standby takes over at once. */
export async function runLeaderElection(opts: LeaderElectionOptions, signal: AbortSignal): Promise<void> {
  const leaseDurationMs = opts.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = opts.retryPeriodMs ?? 2_000;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const log = opts.log ?? (() => {});

  let observedRecord = '';
  let observedAt = 0;
  let lastLeader = '';
  let leading = false;
  let lastRenew = 0;

  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const t = now();
    let lease: V1Lease | undefined;
    try {
      lease = await opts.api.readNamespacedLease({ namespace: opts.namespace, name: opts.name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const spec = {
      holderIdentity: opts.identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      renewTime: microTime(t),
    };
    if (!lease) {
      await opts.api.createNamespacedLease({
        namespace: opts.namespace,
        body: {
          metadata: { name: opts.name, namespace: opts.namespace },
          spec: { ...spec, acquireTime: microTime(t), leaseTransitions: 0 },
        },
      });
      observedRecord = `${opts.identity}@${t}`;
      observedAt = t;
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const record = `${holder}@${lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0}`;
    if (record !== observedRecord) {
      observedRecord = record;
      observedAt = t;
    }
    if (holder && holder !== lastLeader) {
      lastLeader = holder;
      opts.onNewLeader?.(holder);
    }
    const heldByOther = holder !== '' && holder !== opts.identity;
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000 || leaseDurationMs;
    if (heldByOther && observedAt + duration > t) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === opts.identity ? 0 : 1);
    await opts.api.replaceNamespacedLease({
      namespace: opts.namespace,
      name: opts.name,
      body: {
        metadata: { ...lease.metadata, name: opts.name, namespace: opts.namespace },
        spec: {
          ...spec,
          acquireTime: holder === opts.identity && lease.spec?.acquireTime ? lease.spec.acquireTime : microTime(t),
          leaseTransitions: transitions,
        },
      },
    });
    observedRecord = `${opts.identity}@${t}`;
    observedAt = t;
    return true;
  };

  while (!signal.aborted) {
    let ok = false;
    try {
      ok = await tryAcquireOrRenew();
    } catch (err) {
      if (!isConflict(err)) log('lease update failed', err);
    }
    const t = now();
    if (ok) {
      lastRenew = t;
      if (!leading) {
        leading = true;
        lastLeader = opts.identity;
        opts.onNewLeader?.(opts.identity);
        opts.onStartedLeading();
      }
    } else if (leading && t - lastRenew > renewDeadlineMs) {
      // Could not renew in time: another replica may take over any moment, so stop now.
      leading = false;
      opts.onStoppedLeading();
      return;
    }
    await sleep(retryPeriodMs, signal);
  }
  if (leading) {
    // ReleaseOnCancel: hand the lease back so a standby does not wait out leaseDuration.
    try {
      const lease = await opts.api.readNamespacedLease({ namespace: opts.namespace, name: opts.name });
      if (lease.spec?.holderIdentity === opts.identity) {
        await opts.api.replaceNamespacedLease({
          namespace: opts.namespace,
          name: opts.name,
          body: {
            ...lease,
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(now()) },
          },
        });
      }
    } catch (err) {
      log('lease release failed', err);
    }
    opts.onStoppedLeading();
  }
}
