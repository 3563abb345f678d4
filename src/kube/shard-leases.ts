// Shard coordination on coordination.k8s.io/v1 Leases: one Lease per bucket, as Knative and
// Tekton shard their controllers, so that each bucket has a fence of its own (why not a
// membership list with consistent hashing: src/safety/sharding.ts). The rules are there; this is
// the shell that does the I/O.
//
// Each replica renews a member Lease of its own (<leaseId>-member-<hash of identity>) so the
// others can count the live members and so their fair share; it acquires no bucket before it has
// seen its member Lease in a LIST. Every retry period a round:
// - LIST every shard bucket Lease (selected on the label's existence, so other lease sets show
//   too) and this set's member Leases: two calls, however many buckets. Note when each record
//   changed as this process saw it: expiry counts from the moment the LIST came back, never from
//   the timestamps in a record, as the leader elector judges (src/kube/lease.ts). A member whose
//   bucket lease expired counts as gone (countLiveMembers), so the others' share grows in the
//   round they may take its buckets over, whatever its member Lease says. `onMembers` listeners
//   get what the LIST showed (ShardView), and `mayAcquire` may veto this round's acquires.
// - With the LIST, not after it, renew every held bucket and the member Lease (with
//   `memberAnnotations`), each a PUT over the Lease as this replica's last write of it came back.
//   Under load a LIST took 2–4 s, and renewals that waited for it came within a second of their
//   fences' deadline (docs/sharding.md, risk 10). A 409 there loses nothing yet: an earlier PUT
//   that timed out may have landed. Once the LIST is back, such a lease, and one this replica has
//   not written yet, is renewed with the listed resourceVersion if the LIST shows it still ours.
// - Plan (planBuckets), then release the excess and strays, and acquire the planned ones (PUT with
//   the listed resourceVersion, POST for a bucket with no Lease yet; a 409 loses the race).
//   A release closes the bucket's fence and hands the lease back once the writes in flight have
//   settled (#release), apart from the round; a bucket lost otherwise (expired, taken, or at
//   stop) has its fence revoked at once. A replica that holds no bucket and could write no
//   bucket lease in a round hands its member Lease back instead, for a lease duration, doubling
//   while it still cannot: as a member it would be handed buckets that then sit unwritten.
// Each bucket's Fence is renewed with the time its renew was sent and expires on its own timer,
// so a replica whose calls hang stops writing a bucket renewDeadline after its last renew, before
// another may take it over (a lease duration after it saw that renew). Every call is bounded by
// what is left of the round's renew deadline (for a renew, of that bucket's fence).
//
// Cost per replica, each retry period: 2 LISTs + one PUT per held bucket + one PUT for the
// member Lease (its annotations ride on it), and a second PUT for a renew that conflicted. A round
// lasts as long as its slowest call, so renewals go out every max(retry period, LIST time). 16 buckets at the default 15 s / 10 s / 2 s: 9.5
// calls/s for one replica holding all 16; with three replicas, at most (2 + 6 + 1) / 2 s = 4.5
// calls/s each.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../runtime/clock.ts';
import { Fence } from '../safety/fencing.ts';
import {
  checkBucketCount,
  countLiveMembers,
  fnv1a32,
  type LeaseHolder,
  liveMemberIdentities,
  planBuckets,
} from '../safety/sharding.ts';
import {
  boundedLeaseCall,
  heldSpec,
  type Lease,
  type LeaseCallOutcome,
  LeaseObservations,
  type LeaseSetClient,
  leaseRecord,
  releasedLease,
  restLeaseSetClient,
} from './lease.ts';

/** Label on member Leases; its value is the leaseId. */
export const SHARD_MEMBER_LABEL = 'readygate.dev/shard-member';
/** Label on bucket Leases; its value is the leaseId. */
export const SHARD_BUCKET_LABEL = 'readygate.dev/shard-bucket';
/** Label on bucket Leases; its value is the bucket count, so another set's count can be read from its leases. */
export const SHARD_BUCKETS_LABEL = 'readygate.dev/shard-buckets';

export interface ShardCoordinatorOptions {
  /** The lease client; without it, one over the API server of `kubeConfig`. */
  client?: LeaseSetClient;
  kubeConfig?: KubeConfig;
  namespace: string;
  /** Prefix of every Lease's name and the value of their labels. */
  leaseId: string;
  identity: string;
  buckets: number;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  clock: Clock;
  /** A write must be able to finish this long before a bucket's deadline; default min(1 s, renewDeadline / 4). */
  fenceMarginMs?: number;
  /** Asked each round before acquiring; false acquires nothing, while held buckets are still renewed. */
  mayAcquire?: (view: ShardView) => boolean;
  /** Annotations written onto this replica's member Lease at each renew (merged: other keys are kept). */
  memberAnnotations?: () => Record<string, string>;
  log?: (msg: string, err?: unknown) => void;
}

/** A live member of the lease set, as its member Lease shows it. */
export interface ShardMember {
  identity: string;
  annotations: Readonly<Record<string, string>>;
}

/** The lease set as one LIST showed it, judged when the answer came back. */
export interface ShardView {
  /** Live members (see liveMemberIdentities), this replica among them once its member Lease is listed. */
  members: ShardMember[];
  /** Bucket → its lease's holder ('' when handed back); a bucket with no Lease yet is absent. */
  holders: ReadonlyMap<number, LeaseHolder>;
  /** Whether a bucket Lease of another set (another leaseId or bucket count) is held and not expired. */
  otherSets: boolean;
}

export const bucketLeaseName = (leaseId: string, bucket: number) => `${leaseId}-bucket-${bucket}`;

/** The member Lease of `identity`; a 32-bit hash keeps the name short and valid for any identity. */
export const memberLeaseName = (leaseId: string, identity: string) =>
  `${leaseId}-member-${fnv1a32(identity).toString(16).padStart(8, '0')}`;

/** What one LIST of the leases showed, judged when it came back. */
interface RoundView {
  bucketLeases: Map<number, Lease>;
  member: Lease | undefined;
  holders: Map<number, LeaseHolder>;
  liveMembers: number;
  /** When the first bucket lease another replica holds expires, if it is not renewed (Infinity: none). */
  nextExpiry: number;
  shard: ShardView;
}

type Listener = (bucket: number) => void;

/** A lease's name, the labels it carries, and the annotations this replica writes onto it. */
interface LeaseRef {
  name: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The Leases of one LIST round: this set's bucket and member Leases, and other sets' bucket Leases. */
interface Listed {
  buckets: Lease[];
  members: Lease[];
  others: Lease[];
}

/** The longest a replica that cannot write bucket leases stays out of the membership, in lease durations. */
const MAX_HOLD_OFF_LEASES = 8;

const LEASE_ID = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkOptions(o: ShardCoordinatorOptions): void {
  if (!o.client && !o.kubeConfig) throw new Error('shard coordination needs a lease client or a kubeconfig');
  // It is the value of the leases' labels too: a DNS label of at most 63 characters fits both.
  if (!LEASE_ID.test(o.leaseId) || o.leaseId.length > 63) {
    throw new Error(`leaseId ${JSON.stringify(o.leaseId)} must be a DNS label (a-z, 0-9, '-', at most 63 characters)`);
  }
  if (o.identity === '') throw new Error('shard coordination needs an identity');
  if (!(o.retryPeriodMs > 0 && o.retryPeriodMs < o.renewDeadlineMs && o.renewDeadlineMs < o.leaseDurationMs)) {
    throw new Error('shard coordination needs 0 < retry-period < renew-deadline < lease-duration');
  }
  const margin = o.fenceMarginMs ?? 0;
  if (!(margin >= 0 && margin < o.renewDeadlineMs))
    throw new Error('the fence margin must be below the renew deadline');
}

/** Acquires, renews and releases a fair share of the bucket Leases; see the module comment. */
export class ShardCoordinator {
  readonly #o: ShardCoordinatorOptions;
  readonly #client: LeaseSetClient;
  readonly #fences: Fence[];
  readonly #marginMs: number;
  readonly #owned = new Set<number>();
  /** Buckets being handed back (see #release), each until its hand-back has ended. */
  readonly #releasing = new Map<number, Promise<void>>();
  readonly #observed = new LeaseObservations();
  /** Lease name → the lease as this replica's last write of it (as held) came back; see #round. */
  readonly #written = new Map<string, Lease>();
  readonly #acquired = new Set<Listener>();
  readonly #lost = new Set<Listener>();
  readonly #members = new Set<(view: ShardView) => void>();
  #running = false;
  /** Until when this replica stays out of the membership, and how long it stays out next time. */
  #heldOffUntil = 0;
  #holdOffMs: number;

  constructor(opts: ShardCoordinatorOptions) {
    checkOptions(opts);
    checkBucketCount(opts.buckets);
    this.#o = opts;
    this.#holdOffMs = opts.leaseDurationMs;
    this.#client = opts.client ?? restLeaseSetClient(opts.kubeConfig!, opts.namespace);
    const marginMs = opts.fenceMarginMs ?? Math.min(1_000, opts.renewDeadlineMs / 4);
    this.#marginMs = marginMs;
    this.#fences = Array.from(
      { length: opts.buckets },
      (_, b) =>
        new Fence({
          clock: opts.clock,
          renewDeadlineMs: opts.renewDeadlineMs,
          marginMs,
          lease: `the lease of shard bucket ${b}`,
        }),
    );
  }

  /** The buckets held now (a live view): acquired, and neither released, conflicted nor expired since. */
  owned(): ReadonlySet<number> {
    return this.#owned;
  }

  /** The fence every write to a pod of `bucket` goes through. */
  fence(bucket: number): Fence {
    const fence = this.#fences[bucket];
    if (!fence) throw new RangeError(`bucket ${bucket} is not in 0..${this.#fences.length - 1}`);
    return fence;
  }

  /** Calls listener with each bucket acquired; returns an unsubscribe. */
  onAcquired(listener: Listener): () => void {
    this.#acquired.add(listener);
    return () => this.#acquired.delete(listener);
  }

  /** Calls listener with each bucket lost: released, taken (409) or expired; returns an unsubscribe. */
  onLost(listener: Listener): () => void {
    this.#lost.add(listener);
    return () => this.#lost.delete(listener);
  }

  /** Calls listener with the lease set after each round's LIST; returns an unsubscribe. */
  onMembers(listener: (view: ShardView) => void): () => void {
    this.#members.add(listener);
    return () => this.#members.delete(listener);
  }

  /** Runs a round every retry period until `signal` aborts, then releases every lease it holds (ReleaseOnCancel). */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error('this shard coordinator is already running');
    this.#running = true;
    const { clock, retryPeriodMs } = this.#o;
    // A bucket whose fence expires is lost at once, on the fence's timer: a call can hang for minutes.
    const unsubscribe = this.#fences.map((fence, b) => fence.onExpire(() => this.#lose(b, 'its lease expired')));
    try {
      while (!signal.aborted) {
        const startedAt = clock.now();
        const nextExpiry = await this.#round(signal, startedAt);
        // Rounds start every retry period (at once after one that overran it), and when a bucket
        // lease another replica holds would expire: a dead replica's buckets are taken over then,
        // not up to a retry period later.
        const wake = Math.min(startedAt + retryPeriodMs, nextExpiry);
        await clock.sleep(wake - clock.now(), signal).catch(() => {});
      }
    } finally {
      for (const off of unsubscribe) off();
      await Promise.all(this.#releasing.values()); // cut short by `signal`: #releaseAll hands them back
      await this.#releaseAll();
      this.#running = false;
    }
  }

  /** One round; resolves to when the next must start at the latest to catch an expiry (Infinity: none). */
  async #round(signal: AbortSignal, startedAt: number): Promise<number> {
    const { identity, leaseId, renewDeadlineMs } = this.#o;
    const deadline = startedAt + renewDeadlineMs;
    // Renewals go out with the LIST, over the leases this replica last wrote, not after it: under
    // load a LIST took 2–4 s, and renewals sent after it came too close to their fences' deadline.
    const [view, early] = await Promise.all([this.#list(signal, deadline), this.#renewWritten(signal, deadline)]);
    if (!view || signal.aborted) return Number.POSITIVE_INFINITY;
    this.#notify(this.#members, view.shard, 'the lease set');
    for (const b of this.#owned) {
      const holder = view.holders.get(b)?.holder;
      if (holder !== identity) this.#lose(b, `its lease is held by ${holder ? holder : 'no one'} now`);
    }
    const plan = planBuckets({
      buckets: this.#o.buckets,
      self: identity,
      liveMembers: view.liveMembers,
      holders: view.holders,
      held: this.#owned,
    });
    // No bucket is acquired before this replica's member lease is seen in a LIST: by then the
    // replicas that started with it are members too, and it does not take every bucket only to
    // hand most back a round later.
    const joined = view.member?.spec?.holderIdentity === identity;
    const mayAcquire = joined && this.#mayAcquire(view.shard);
    const lease = (b: number) => this.#latest(bucketLeaseName(leaseId, b), view.bucketLeases.get(b));
    // A bucket still being released is on record as ours: neither a stray nor one to take back.
    const idle = (b: number) => !this.#releasing.has(b);
    // Released first: they leave #owned before it is read for the renewals.
    for (const b of plan.release.filter(idle)) this.#startRelease(b, lease(b)!, signal);
    // Renewed over the listed lease: a bucket with no write of ours to renew over (the first round
    // after a restart), and one whose renew conflicted (an earlier write of ours that timed out may
    // have landed); the LIST above has shown it is still ours, so a conflict now loses it.
    const late = [...this.#owned].filter((b) => (early.buckets.get(b) ?? 'conflict') === 'conflict');
    const results = await Promise.all([
      ...late.map((b) => this.#renew(b, lease(b)!, signal, deadline, true)),
      ...(mayAcquire ? plan.acquire.filter(idle) : []).map((b) => this.#acquire(b, lease(b), signal, deadline)),
    ]);
    const member = this.#latest(memberLeaseName(leaseId, identity), view.member);
    await this.#membership([...early.buckets.values(), ...results], member, early.member, signal, deadline);
    return view.nextExpiry;
  }

  /**
   * Renews each held bucket, and the member lease, over the lease this replica last wrote (one it
   * has not written yet waits for the LIST). A conflict here loses nothing: the LIST tells whether
   * the lease is still ours.
   */
  async #renewWritten(signal: AbortSignal, deadline: number): Promise<EarlyRenewals> {
    const { clock, identity, leaseId } = this.#o;
    const written = (name: string) => this.#written.get(name);
    const buckets = [...this.#owned].filter((b) => written(bucketLeaseName(leaseId, b)));
    const member = written(memberLeaseName(leaseId, identity));
    const renewMember = member && clock.now() >= this.#heldOffUntil;
    const [memberResult, ...results] = await Promise.all([
      renewMember ? this.#renewMember(member, signal, deadline) : undefined,
      ...buckets.map((b) => this.#renew(b, written(bucketLeaseName(leaseId, b))!, signal, deadline, false)),
    ]);
    return {
      buckets: new Map(buckets.map((b, i) => [b, results[i]!])),
      member: memberResult !== undefined && memberResult !== 'conflict',
    };
  }

  /**
   * Renews the member lease (unless `renewed`: done with the LIST), unless this replica holds no
   * bucket and could write no bucket lease this round: then it leaves the membership (hands its
   * member lease back) for a while, doubling while it still cannot. As a member it would have the others keep its share for it,
   * and release buckets to it that it cannot take, so they would sit unwritten. (One holding
   * buckets stays: a failed round or two costs it nothing, and its fences end a longer outage.)
   */
  async #membership(
    results: CallResult[],
    member: Lease | undefined,
    renewed: boolean,
    signal: AbortSignal,
    deadline: number,
  ) {
    const { clock, identity, leaseDurationMs, log } = this.#o;
    if (results.includes('ok')) this.#holdOffMs = leaseDurationMs;
    else if (results.includes('failed') && this.#owned.size === 0) {
      this.#heldOffUntil = clock.now() + this.#holdOffMs;
      log?.(`no bucket lease could be written: leaving the membership for ${this.#holdOffMs} ms`);
      this.#holdOffMs = Math.min(2 * this.#holdOffMs, MAX_HOLD_OFF_LEASES * leaseDurationMs);
      // With a deadline of its own: the round's was spent on the calls that failed.
      const until = clock.now() + this.#o.renewDeadlineMs;
      if (member?.spec?.holderIdentity === identity) await this.#handBack(member, signal, until);
      return;
    }
    if (!renewed && clock.now() >= this.#heldOffUntil) await this.#renewMember(member, signal, deadline);
  }

  /** The freshest record of a lease: the one this replica last wrote, unless the LIST shows another holder. */
  #latest(name: string, listed: Lease | undefined): Lease | undefined {
    const written = this.#written.get(name);
    if (!written) return listed;
    return listed && listed.spec?.holderIdentity !== this.#o.identity ? listed : written;
  }

  /** LISTs the leases (two calls) and judges them as of when the answer came. */
  async #list(signal: AbortSignal, deadline: number): Promise<RoundView | undefined> {
    const listed = await this.#listLeases(signal, deadline);
    if (!listed) return undefined;
    const { clock, identity } = this.#o;
    const at = clock.now();
    const all = [...listed.buckets, ...listed.members, ...listed.others];
    this.#observed.retain(new Set(all.map((l) => l.metadata.name)));
    let nextExpiry = Number.POSITIVE_INFINITY;
    const bucketLeases = new Map<number, Lease>();
    const holders = new Map<number, LeaseHolder>();
    for (const l of listed.buckets) {
      const b = this.#bucketNumber(l.metadata.name)!;
      const { holder, expired, expiresAt } = this.#judge(l, at);
      bucketLeases.set(b, l);
      holders.set(b, { holder, expired });
      if (holder !== '' && holder !== identity && !expired) nextExpiry = Math.min(nextExpiry, expiresAt);
    }
    const members = listed.members.map((l) => this.#judge(l, at));
    // Another set's lease first seen now counts as live for its duration, as any lease does.
    const otherSets = listed.others.map((l) => this.#judge(l, at)).some((j) => j.holder !== '' && !j.expired);
    const live = liveMemberIdentities(members, holders);
    const shardMembers: ShardMember[] = [];
    for (const [i, l] of listed.members.entries()) {
      const { holder } = members[i]!;
      if (live.delete(holder)) shardMembers.push({ identity: holder, annotations: { ...l.metadata.annotations } });
    }
    const ownName = memberLeaseName(this.#o.leaseId, identity);
    const member = listed.members.find((l) => l.metadata.name === ownName);
    const liveMembers = countLiveMembers(identity, members, holders);
    const shard = { members: shardMembers, holders, otherSets };
    return { bucketLeases, member, holders, liveMembers, nextExpiry, shard };
  }

  /** Notes lease l's record as seen at `at`, and says whether its holder is gone. */
  #judge(l: Lease, at: number): LeaseHolder & { expiresAt: number } {
    this.#observed.observe(l.metadata.name, leaseRecord(l), at);
    const holder = l.spec?.holderIdentity ?? '';
    const expiresAt = this.#observed.expiresAt(l.metadata.name, l, at, this.#o.leaseDurationMs);
    return { holder, expired: holder !== '' && expiresAt <= at, expiresAt };
  }

  /**
   * One LIST of every shard bucket Lease (selected on the label's existence, so other sets show
   * too), sorted by set, and one of this set's member Leases.
   */
  async #listLeases(signal: AbortSignal, deadline: number): Promise<Listed | undefined> {
    const outcome = await this.#bounded(signal, deadline, (s) =>
      Promise.all([
        this.#client.list(SHARD_BUCKET_LABEL, s),
        this.#client.list(`${SHARD_MEMBER_LABEL}=${this.#o.leaseId}`, s),
      ]),
    );
    if (!outcome.ok) return undefined;
    const [bucketList, members] = outcome.value;
    const buckets: Lease[] = [];
    const others: Lease[] = [];
    for (const l of bucketList) (this.#ownBucketLease(l) ? buckets : others).push(l);
    return { buckets, members, others };
  }

  /** A bucket lease of this set: its label says our leaseId, its name one of our buckets, its count (if any) ours. */
  #ownBucketLease(l: Lease): boolean {
    const labels = l.metadata.labels ?? {};
    const count = labels[SHARD_BUCKETS_LABEL];
    if (count !== undefined && count !== String(this.#o.buckets)) return false;
    return labels[SHARD_BUCKET_LABEL] === this.#o.leaseId && this.#bucketNumber(l.metadata.name) !== undefined;
  }

  #bucketNumber(name: string): number | undefined {
    const prefix = bucketLeaseName(this.#o.leaseId, 0).slice(0, -1);
    if (!name.startsWith(prefix)) return undefined;
    const digits = name.slice(prefix.length);
    const b = /^(0|[1-9]\d*)$/.test(digits) ? Number(digits) : Number.NaN;
    return b < this.#o.buckets ? b : undefined;
  }

  /** Renews bucket b over `lease`; a conflict loses it only when `final` (see #round). */
  async #renew(b: number, lease: Lease, signal: AbortSignal, deadline: number, final: boolean): Promise<CallResult> {
    const fence = this.#fences[b]!;
    const sentAt = this.#o.clock.now();
    const until = Math.min(deadline, fence.validUntil());
    const outcome = await this.#hold(lease, this.#bucketRef(b), sentAt, signal, until);
    // A renew that came back after the fence expired does not revive it: the next round
    // acquires the lease again (it is still ours on record), and says so.
    if (outcome.ok && this.#owned.has(b)) fence.renewed(sentAt);
    else if (!outcome.ok && outcome.conflict && final) this.#lose(b, 'another replica wrote its lease');
    return result(outcome);
  }

  async #acquire(b: number, lease: Lease | undefined, signal: AbortSignal, deadline: number): Promise<CallResult> {
    const { clock, log } = this.#o;
    const sentAt = clock.now();
    const outcome = await this.#hold(lease, this.#bucketRef(b), sentAt, signal, deadline);
    if (!outcome.ok || signal.aborted) return result(outcome);
    const fence = this.#fences[b]!;
    fence.renewed(sentAt);
    // An acquire that landed with less of its renew deadline left than a write needs is not
    // counted; the next round renews it (it is ours on record) and counts it then.
    if (fence.holds()) this.#gain(b);
    else log?.(`acquired bucket ${b} too late to write with it; renewing it next round`);
    return 'ok';
  }

  /**
   * Hands bucket b back to rebalance. Its writes in flight are let finish, not aborted: an aborted
   * PATCH may still land after the new owner's first write. The lease stays ours meanwhile
   * (renewDeadline < leaseDuration), and a margin more if a write was aborted or outlived the wait.
   */
  async #release(b: number, lease: Lease, signal: AbortSignal): Promise<void> {
    const fence = this.#fences[b]!;
    fence.close();
    this.#lose(b, 'released to rebalance', false);
    const { aborted, settled } = await this.#settle(fence, signal);
    fence.revoke();
    const { clock, renewDeadlineMs } = this.#o;
    if (aborted || !settled) await clock.sleep(this.#marginMs, signal).catch(() => {});
    await this.#handBack(lease, signal, clock.now() + renewDeadlineMs);
  }

  /** Starts #release(b) apart from the round: a write that takes its time must not delay the renewals. */
  #startRelease(b: number, lease: Lease, signal: AbortSignal): void {
    const released = this.#release(b, lease, signal).finally(() => this.#releasing.delete(b));
    this.#releasing.set(b, released);
  }

  /** Waits for the fence's writes in flight, at most until it would expire anyway (or `signal` aborts). */
  async #settle(fence: Fence, signal: AbortSignal): Promise<{ aborted: boolean; settled: boolean }> {
    const { clock } = this.#o;
    const done = new AbortController();
    const bound = clock.sleep(fence.validUntil() - clock.now(), AbortSignal.any([signal, done.signal])).then(
      () => undefined,
      () => undefined,
    );
    try {
      const idle = fence.idle().then((r) => ({ ...r, settled: true }));
      return (await Promise.race([idle, bound])) ?? { aborted: false, settled: false };
    } finally {
      done.abort(); // clears the bound's timer
    }
  }

  async #renewMember(member: Lease | undefined, signal: AbortSignal, deadline: number): Promise<CallResult> {
    const { clock, identity, leaseId, log, memberAnnotations } = this.#o;
    let annotations: Record<string, string> | undefined;
    try {
      annotations = memberAnnotations?.();
    } catch (err) {
      log?.('memberAnnotations threw; renewing the member lease without them', err);
    }
    const ref = { name: memberLeaseName(leaseId, identity), labels: { [SHARD_MEMBER_LABEL]: leaseId }, annotations };
    return result(await this.#hold(member, ref, clock.now(), signal, deadline));
  }

  #mayAcquire(view: ShardView): boolean {
    try {
      return this.#o.mayAcquire?.(view) ?? true;
    } catch (err) {
      this.#o.log?.('mayAcquire threw; acquiring nothing this round', err);
      return false;
    }
  }

  /** ReleaseOnCancel: every bucket and the member lease handed back, so the others need not wait them out. */
  async #releaseAll(): Promise<void> {
    for (const b of [...this.#owned]) this.#lose(b, 'stopping');
    for (const fence of this.#fences) fence.revoke(); // also those of acquires that landed too late
    const { clock, identity, renewDeadlineMs } = this.#o;
    const signal = new AbortController().signal;
    const deadline = clock.now() + renewDeadlineMs;
    const listed = await this.#listLeases(signal, deadline);
    const ours = listed ? [...listed.buckets, ...listed.members] : [];
    const mine = ours.filter((l) => l.spec?.holderIdentity === identity);
    await Promise.all(mine.map((l) => this.#handBack(l, signal, deadline)));
  }

  /**
   * Writes `lease` as held by this replica since `sentAt`: a PUT, or a POST of `ref` when it has
   * no lease yet. `ref`'s labels and annotations are merged over those the lease has.
   */
  async #hold(lease: Lease | undefined, ref: LeaseRef, sentAt: number, signal: AbortSignal, until: number) {
    const { identity, leaseDurationMs, namespace } = this.#o;
    const spec = heldSpec(identity, leaseDurationMs, sentAt, lease?.spec);
    const was = lease?.metadata ?? { name: ref.name, namespace };
    const annotations = ref.annotations && { annotations: { ...was.annotations, ...ref.annotations } };
    const metadata = { ...was, labels: { ...was.labels, ...ref.labels }, ...annotations };
    const outcome = await this.#bounded(signal, until, (s) =>
      lease ? this.#client.update({ ...lease, metadata, spec }, s) : this.#client.create({ metadata, spec }, s),
    );
    // Kept to renew over next round; after a failure the record on the server is unknown.
    if (outcome.ok) this.#written.set(ref.name, outcome.value);
    else this.#written.delete(ref.name);
    return outcome;
  }

  #bucketRef(b: number): LeaseRef {
    const { buckets, leaseId } = this.#o;
    const labels = { [SHARD_BUCKET_LABEL]: leaseId, [SHARD_BUCKETS_LABEL]: String(buckets) };
    return { name: bucketLeaseName(leaseId, b), labels };
  }

  #handBack(lease: Lease, signal: AbortSignal, until: number) {
    this.#written.delete(lease.metadata.name);
    const now = this.#o.clock.now();
    return this.#bounded(signal, until, (s) => this.#client.update(releasedLease(lease, now), s));
  }

  /** A lease call bounded by `until` (and `signal`); see boundedLeaseCall. */
  #bounded<T>(signal: AbortSignal, until: number, call: (s: AbortSignal) => Promise<T>) {
    const { clock, log } = this.#o;
    return boundedLeaseCall(clock, signal, until - clock.now(), call, log);
  }

  #gain(b: number): void {
    if (this.#owned.has(b)) return;
    this.#owned.add(b);
    this.#notify(this.#acquired, b);
  }

  /** Stops counting bucket b as held; its fence is revoked first unless the caller closed it (a release). */
  #lose(b: number, why: string, revoke = true): void {
    if (!this.#owned.delete(b)) return;
    if (revoke) this.#fences[b]!.revoke();
    this.#o.log?.(`lost bucket ${b}: ${why}`);
    this.#notify(this.#lost, b);
  }

  #notify<T>(listeners: Set<(value: T) => void>, value: T, what = `bucket ${value}`): void {
    for (const listener of [...listeners]) {
      try {
        listener(value);
      } catch (err) {
        this.#o.log?.(`a listener of ${what} threw`, err);
      }
    }
  }
}

/** How a bucket lease call ended; a conflict is no failure (a race lost), nor proof of being able to write. */
type CallResult = 'ok' | 'conflict' | 'failed';

/** What the renewals sent with the LIST came to: by bucket, and whether the member lease needs no other renew. */
interface EarlyRenewals {
  buckets: Map<number, CallResult>;
  member: boolean;
}

const result = (outcome: LeaseCallOutcome<unknown>): CallResult =>
  outcome.ok ? 'ok' : outcome.conflict ? 'conflict' : 'failed';
