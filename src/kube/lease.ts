// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// only the leader probes and writes; a standby takes over once the lease has not been renewed
// for leaseDuration. Expiry of another's lease is judged by when *this process observed* the
// record change, not by the timestamps in it, so clock skew between replicas cannot cause two
// leaders. What makes one writer at a time hold under faults lives in src/safety/fencing.ts:
// every lease call here is bounded by what is left of the renew deadline, and the fence steps
// down on a timer, whatever state a call is in. client-node has no leader election, hence this
// small module; its calls go through rest() because client-node's typed calls take no signal.
// The shard leases (src/kube/shard-leases.ts) share its rules through the helpers below the
// clients: how a held or released lease is written, when a lease has expired, how a call is bounded.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, TimerHandle } from '../runtime/clock.ts';
import type { Fence } from '../safety/fencing.ts';
import { isConflict, isNotFound } from './errors.ts';
import { rest } from './rest.ts';

/** The fields of a coordination.k8s.io/v1 Lease this module reads and writes. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
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

/** Lists, creates and replaces the Leases of one namespace; every call takes a signal that bounds it. */
export interface LeaseSetClient {
  /** The namespace's Leases that match a label selector. */
  list(labelSelector: string, signal: AbortSignal): Promise<Lease[]>;
  /** Creates the lease (a 409 Conflict when it exists) and returns it as stored. */
  create(lease: Lease, signal: AbortSignal): Promise<Lease>;
  /** Replaces the lease and returns it as stored; its resourceVersion makes a concurrent change a 409 Conflict. */
  update(lease: Lease, signal: AbortSignal): Promise<Lease>;
}

// Listed items carry no apiVersion and kind; a body sent back says what it is.
const LEASE_TYPE = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' };

const leasesPath = (namespace: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;

/** Told each Lease call's verb, result (ok, conflict, notfound, aborted, error) and duration in seconds. */
export type LeaseCallObserver = (verb: 'get' | 'list' | 'create' | 'update', result: string, seconds: number) => void;

/** `work`, reported to `observe` when it ends: how long the renewals take shows before one misses its deadline. */
async function observed<T>(
  verb: Parameters<LeaseCallObserver>[0],
  observe: LeaseCallObserver | undefined,
  signal: AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  if (!observe) return work();
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  try {
    const value = await work();
    observe(verb, 'ok', seconds());
    return value;
  } catch (err) {
    const result = signal.aborted ? 'aborted' : isConflict(err) ? 'conflict' : isNotFound(err) ? 'notfound' : 'error';
    observe(verb, result, seconds());
    throw err;
  }
}

/** A LeaseSetClient over the API server; `observe` is told of every call. */
export function restLeaseSetClient(kc: KubeConfig, namespace: string, observe?: LeaseCallObserver): LeaseSetClient {
  const base = leasesPath(namespace);
  const path = (lease: Lease) => `${base}/${encodeURIComponent(lease.metadata.name)}`;
  return {
    list: async (labelSelector, signal) => {
      const text = await observed('list', observe, signal, () =>
        rest(kc, { method: 'GET', path: base, query: { labelSelector }, signal }),
      );
      return (JSON.parse(text) as { items?: Lease[] }).items ?? [];
    },
    create: async (lease, signal) => {
      const body = { ...LEASE_TYPE, ...lease };
      return JSON.parse(
        await observed('create', observe, signal, () => rest(kc, { method: 'POST', path: base, body, signal })),
      ) as Lease;
    },
    update: async (lease, signal) => {
      const body = { ...LEASE_TYPE, ...lease };
      const text = await observed('update', observe, signal, () =>
        rest(kc, { method: 'PUT', path: path(lease), body, signal }),
      );
      return JSON.parse(text) as Lease;
    },
  };
}

/** A LeaseClient over the API server; `observe` is told of every call. */
export function restLeaseClient(
  kc: KubeConfig,
  namespace: string,
  name: string,
  observe?: LeaseCallObserver,
): LeaseClient {
  const path = `${leasesPath(namespace)}/${encodeURIComponent(name)}`;
  const set = restLeaseSetClient(kc, namespace, observe);
  return {
    get: async (signal) => {
      try {
        return JSON.parse(
          await observed('get', observe, signal, () => rest(kc, { method: 'GET', path, signal })),
        ) as Lease;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    create: async (lease, signal) => {
      await set.create(lease, signal);
    },
    update: async (lease, signal) => {
      await set.update(lease, signal);
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

/** The spec of a lease held by `identity`, renewed at `t`; `prev` is the spec it replaces, if any. */
export function heldSpec(identity: string, leaseDurationMs: number, t: number, prev?: Lease['spec']): Lease['spec'] {
  const mine = prev?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    renewTime: microTime(t),
    acquireTime: mine && prev?.acquireTime ? prev.acquireTime : microTime(t),
    leaseTransitions: prev ? (prev.leaseTransitions ?? 0) + (mine ? 0 : 1) : 0,
  };
}

/** The lease handed back at `t` (ReleaseOnCancel): no holder, and a duration of 1 s, as client-go releases. */
export function releasedLease(lease: Lease, t: number): Lease {
  return { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(t) } };
}

/** The part of a lease whose change shows its holder is alive. */
export function leaseRecord(lease: Lease): string {
  return `${lease.spec?.holderIdentity ?? ''}@${lease.spec?.renewTime ?? ''}`;
}

/**
 * When this process saw each lease's record change. A lease expires its duration after that,
 * whatever the timestamps in it say: the clocks of other replicas may be skewed.
 */
export class LeaseObservations {
  readonly #seen = new Map<string, { record: string; at: number }>();

  /** Notes the record of lease `name` as seen at `at`; an unchanged record keeps its first sighting. */
  observe(name: string, record: string, at: number): void {
    if (this.#seen.get(name)?.record === record) return;
    this.#seen.set(name, { record, at });
  }

  /** When lease `name` expires if it stays unchanged: its duration (the lease's own, else `fallbackMs`) after it was seen to change. */
  expiresAt(name: string, lease: Lease | undefined, now: number, fallbackMs: number): number {
    const at = this.#seen.get(name)?.at ?? now;
    return at + ((lease?.spec?.leaseDurationSeconds ?? 0) * 1000 || fallbackMs);
  }

  /** Whether lease `name` was seen unchanged for its duration by `now`. */
  expired(name: string, lease: Lease | undefined, now: number, fallbackMs: number): boolean {
    return this.expiresAt(name, lease, now, fallbackMs) <= now;
  }

  /** Forgets the leases not in `names` (deleted ones), so the map does not grow. */
  retain(names: ReadonlySet<string>): void {
    for (const name of this.#seen.keys()) if (!names.has(name)) this.#seen.delete(name);
  }
}

/** How a bounded lease call ended; a conflict means another process wrote the lease first. */
export type LeaseCallOutcome<T> = { ok: true; value: T } | { ok: false; conflict: boolean };

/**
 * Runs call with a signal aborted after budgetMs or with parent: a lease call that outlives what
 * is left of its renew deadline is worthless. Failures are returned, and logged unless a
 * conflict or the parent aborted.
 */
export async function boundedLeaseCall<T>(
  clock: Clock,
  parent: AbortSignal,
  budgetMs: number,
  call: (signal: AbortSignal) => Promise<T>,
  log?: (msg: string, err?: unknown) => void,
): Promise<LeaseCallOutcome<T>> {
  if (budgetMs <= 0 || parent.aborted) return { ok: false, conflict: false };
  const timeout = new AbortController();
  const timer: TimerHandle = clock.setTimeout(() => timeout.abort(), budgetMs);
  try {
    return { ok: true, value: await call(AbortSignal.any([parent, timeout.signal])) };
  } catch (err) {
    const conflict = isConflict(err);
    if (!conflict && !parent.aborted)
      log?.(timeout.signal.aborted ? 'lease call timed out' : 'lease update failed', err);
    return { ok: false, conflict };
  } finally {
    clock.clearTimeout(timer);
  }
}

/** Runs leader election for one identity; see the module comment. */
export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  readonly #observed = new LeaseObservations();
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

  /** Runs call bounded by budgetMs and parent (boundedLeaseCall); false on any failure. */
  async #bounded(parent: AbortSignal, budgetMs: number, call: (s: AbortSignal) => Promise<boolean>): Promise<boolean> {
    const outcome = await boundedLeaseCall(this.#o.clock, parent, budgetMs, call, this.#o.log);
    return outcome.ok && outcome.value;
  }

  async #tryAcquireOrRenew(t: number, signal: AbortSignal): Promise<boolean> {
    const o = this.#o;
    const lease = await o.client.get(signal);
    if (!lease) {
      const body = {
        metadata: { name: o.name, namespace: o.namespace },
        spec: heldSpec(o.identity, o.leaseDurationMs, t),
      };
      await o.client.create({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...body }, signal);
      this.#observed.observe(o.name, leaseRecord(body), t);
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    // Seen when the answer came back, not when the GET was sent: a slow GET can carry a renew
    // sent after it, and stamping that renew with the earlier time would shorten its lease.
    const seenAt = o.clock.now();
    this.#observed.observe(o.name, leaseRecord(lease), seenAt);
    if (holder) this.#newLeader(holder);
    if (holder !== '' && holder !== o.identity && !this.#observed.expired(o.name, lease, seenAt, o.leaseDurationMs)) {
      return false;
    }
    const renewed = { ...lease, spec: heldSpec(o.identity, o.leaseDurationMs, t, lease.spec) };
    await o.client.update(renewed, signal);
    this.#observed.observe(o.name, leaseRecord(renewed), t);
    return true;
  }

  /** ReleaseOnCancel: hands the lease back so a standby does not wait out leaseDuration. */
  async #release(signal: AbortSignal): Promise<boolean> {
    const o = this.#o;
    const lease = await o.client.get(signal);
    if (lease?.spec?.holderIdentity !== o.identity) return false;
    await o.client.update(releasedLease(lease, o.clock.now()), signal);
    return true;
  }

  #newLeader(identity: string): void {
    if (identity === this.#lastLeader) return;
    this.#lastLeader = identity;
    this.#o.onNewLeader?.(identity);
  }
}
