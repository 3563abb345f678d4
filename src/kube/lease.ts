// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// only the leader probes and writes; a standby takes over once the lease has not been renewed
// for leaseDuration. Expiry of another's lease is judged by when *this process observed* the
// record change, not by the timestamps in it, so clock skew between replicas cannot cause two
// leaders. What makes one writer at a time hold under faults lives in src/safety/fencing.ts:
// every lease call here is bounded by what is left of the renew deadline, and the fence steps
// down on a timer, whatever state a call is in. client-node has no leader election, hence this
// small module; its calls go through rest() because client-node's typed calls take no signal.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Fence } from '../safety/fencing.ts';
import { isConflict, isNotFound } from './errors.ts';
import { rest } from './rest.ts';

/** The fields of a coordination.k8s.io/v1 Lease this module reads and writes. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** Reads and writes one Lease; every call takes a signal that bounds it. */
export interface LeaseClient {
  get(signal: AbortSignal): Promise<Lease | undefined>;
  create(lease: Lease, signal: AbortSignal): Promise<void>;
  /** Replaces the lease; the resourceVersion in it makes a concurrent change a 409 Conflict. */
  update(lease: Lease, signal: AbortSignal): Promise<void>;
}

/** A LeaseClient over the API server. */
export function restLeaseClient(kc: KubeConfig, namespace: string, name: string): LeaseClient {
  const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const path = `${base}/${encodeURIComponent(name)}`;
  return {
    get: async (signal) => {
      try {
        return JSON.parse(await rest(kc, { method: 'GET', path, signal })) as Lease;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    create: async (lease, signal) => {
      await rest(kc, { method: 'POST', path: base, body: lease, signal });
    },
    update: async (lease, signal) => {
      await rest(kc, { method: 'PUT', path, body: lease, signal });
    },
  };
}

export interface LeaderElectorOptions {
  client: LeaseClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  clock: Clock;
  /** Renewed on every successful acquire or renew; it steps this elector down when it expires. */
  fence: Fence;
  onNewLeader?: (identity: string) => void;
  log?: (msg: string, err?: unknown) => void;
}

/** What the elector tells its owner (the Manager, src/runtime/manager.ts). */
export interface LeadershipHooks {
  onStartedLeading(): void;
  /** Called once when leadership is lost, expires or is released. */
  onStoppedLeading(): void;
}

/**
 * A metav1.MicroTime value. The API server rejects millisecond precision for MicroTime, so the
 * fraction is padded to microseconds.
 */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Runs leader election for one identity; see the module comment. */
export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  #observedRecord = '';
  #observedAt = 0;
  #lastLeader = '';

  constructor(opts: LeaderElectorOptions) {
    this.#o = opts;
  }

  /**
   * Acquires and renews the lease until `signal` aborts (then releases it, so a standby takes
   * over at once) or leadership is lost (then returns at once). The owner aborts `signal` only
   * after its leader-only work has drained.
   */
  async run(signal: AbortSignal, hooks: LeadershipHooks): Promise<void> {
    const { clock, fence, retryPeriodMs, renewDeadlineMs } = this.#o;
    const lost = new AbortController();
    let leading = false;
    const stepDown = () => {
      if (!leading) return;
      leading = false;
      lost.abort();
      hooks.onStoppedLeading();
    };
    // Step down on the fence's timer, not when some call returns: a call can hang for minutes.
    const unsubscribe = fence.onExpire(stepDown);
    const both = AbortSignal.any([signal, lost.signal]);
    while (!both.aborted) {
      const sentAt = clock.now();
      // Bounded by what is left of the renew deadline: a call that outlives it is worthless.
      const budget = leading ? fence.validUntil() - sentAt : renewDeadlineMs;
      const ok = await this.#bounded(both, budget, (s) => this.#tryAcquireOrRenew(sentAt, s));
      if (ok && !both.aborted) {
        fence.renewed(sentAt);
        // An acquire that landed late (say, through an API server that was paused) may leave
        // less of its renew deadline than a write needs: leading now would mean stepping down
        // at once. The lease is ours, so renew it right away instead (no busy loop: such a call
        // took most of the renew deadline).
        if (!leading && !fence.holds()) continue;
        if (!leading) {
          leading = true;
          this.#newLeader(this.#o.identity);
          hooks.onStartedLeading();
        }
      }
      await clock.sleep(retryPeriodMs, both).catch(() => {}); // rejects when aborted: the loop ends
    }
    unsubscribe();
    if (leading) {
      fence.revoke(); // no write may start or finish once the lease is handed back
      await this.#bounded(new AbortController().signal, renewDeadlineMs, (s) => this.#release(s));
      leading = false;
      hooks.onStoppedLeading();
    }
  }

  /** Runs call with a signal aborted after budgetMs or with parent; false on any failure. */
  async #bounded(parent: AbortSignal, budgetMs: number, call: (s: AbortSignal) => Promise<boolean>): Promise<boolean> {
    if (budgetMs <= 0 || parent.aborted) return false;
    const { clock, log } = this.#o;
    const timeout = new AbortController();
    const timer: TimerHandle = clock.setTimeout(() => timeout.abort(), budgetMs);
    try {
      return await call(AbortSignal.any([parent, timeout.signal]));
    } catch (err) {
      if (!isConflict(err) && !parent.aborted)
        log?.(timeout.signal.aborted ? 'lease call timed out' : 'lease update failed', err);
      return false;
    } finally {
      clock.clearTimeout(timer);
    }
  }

  async #tryAcquireOrRenew(t: number, signal: AbortSignal): Promise<boolean> {
    const o = this.#o;
    const lease = await o.client.get(signal);
    const spec = {
      holderIdentity: o.identity,
      leaseDurationSeconds: Math.ceil(o.leaseDurationMs / 1000),
      renewTime: microTime(t),
    };
    if (!lease) {
      const body = {
        metadata: { name: o.name, namespace: o.namespace },
        spec: { ...spec, acquireTime: microTime(t), leaseTransitions: 0 },
      };
      await o.client.create({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...body }, signal);
      this.#observe(`${o.identity}@${t}`, t);
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    this.#observe(`${holder}@${lease.spec?.renewTime ?? ''}`, t);
    if (holder) this.#newLeader(holder);
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000 || o.leaseDurationMs;
    if (holder !== '' && holder !== o.identity && this.#observedAt + duration > t) return false;
    const mine = holder === o.identity;
    await o.client.update(
      {
        ...lease,
        spec: {
          ...spec,
          acquireTime: mine && lease.spec?.acquireTime ? lease.spec.acquireTime : microTime(t),
          leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      },
      signal,
    );
    this.#observe(`${o.identity}@${t}`, t);
    return true;
  }

  /** ReleaseOnCancel: hands the lease back so a standby does not wait out leaseDuration. */
  async #release(signal: AbortSignal): Promise<boolean> {
    const o = this.#o;
    const lease = await o.client.get(signal);
    if (lease?.spec?.holderIdentity !== o.identity) return false;
    const spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(o.clock.now()) };
    await o.client.update({ ...lease, spec }, signal);
    return true;
  }

  #observe(record: string, at: number): void {
    if (record === this.#observedRecord) return;
    this.#observedRecord = record;
    this.#observedAt = at;
  }

  #newLeader(identity: string): void {
    if (identity === this.#lastLeader) return;
    this.#lastLeader = identity;
    this.#o.onNewLeader?.(identity);
  }
}
