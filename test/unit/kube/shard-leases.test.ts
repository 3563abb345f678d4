import { describe, expect, it } from 'vitest';
import type { Lease, LeaseSetClient } from '../../../src/kube/lease.ts';
import {
  bucketLeaseName,
  memberLeaseName,
  SHARD_BUCKET_LABEL,
  SHARD_BUCKETS_LABEL,
  SHARD_MEMBER_LABEL,
  ShardCoordinator,
  type ShardCoordinatorOptions,
  type ShardView,
} from '../../../src/kube/shard-leases.ts';
import { FakeClock, flushPromises } from '../../../src/runtime/clock.ts';

const conflict = (what: string) => Object.assign(new Error(`conflict: ${what}`), { code: 409 });

/** The Leases of one namespace in memory, with resourceVersions checked as the API server does. */
class LeaseStore {
  readonly leases = new Map<string, Lease>();
  /** Called before each update is applied; throw from it to fail that call. */
  beforeUpdate: (lease: Lease) => void = () => {};
  #rv = 0;

  /** `key=value`, or `key` alone: the label exists. */
  list(selector: string): Lease[] {
    const [key, value] = selector.split('=') as [string, string?];
    const labels = (l: Lease) => l.metadata.labels ?? {};
    const match = (l: Lease) => (value === undefined ? key in labels(l) : labels(l)[key] === value);
    return [...this.leases.values()].filter(match).map((l) => structuredClone(l));
  }

  create(lease: Lease): Lease {
    if (this.leases.has(lease.metadata.name)) throw conflict(`${lease.metadata.name} exists`);
    return this.#store(lease);
  }

  update(lease: Lease): Lease {
    this.beforeUpdate(lease);
    const current = this.leases.get(lease.metadata.name);
    if (current?.metadata.resourceVersion !== lease.metadata.resourceVersion) throw conflict(lease.metadata.name);
    return this.#store(lease);
  }

  holder(name: string): string | undefined {
    return this.leases.get(name)?.spec?.holderIdentity;
  }

  #store(lease: Lease): Lease {
    const stored = structuredClone({ ...lease, metadata: { ...lease.metadata, resourceVersion: String(++this.#rv) } });
    this.leases.set(stored.metadata.name, stored);
    return structuredClone(stored);
  }
}

type Verb = 'list' | 'create' | 'update';

/**
 * One replica's connection to the store: it counts calls, and calls it freezes hang until their
 * signal aborts or the gate thaws, as calls to a paused API server or through a frozen
 * connection do.
 */
class Gate implements LeaseSetClient {
  readonly calls: Record<Verb, number> = { list: 0, create: 0, update: 0 };
  /** Whether a call hangs, by verb and lease name (the label selector for a LIST). */
  frozen: (verb: Verb, name: string) => boolean = () => false;
  /** Whether a call fails at once, as on a reset connection. */
  failing: (verb: Verb, name: string) => boolean = () => false;
  readonly #waiting = new Set<() => void>();

  readonly store: LeaseStore;

  constructor(store: LeaseStore) {
    this.store = store;
  }

  thaw(): void {
    this.frozen = () => false;
    for (const go of this.#waiting) go();
    this.#waiting.clear();
  }

  async list(selector: string, signal: AbortSignal) {
    await this.#pass('list', selector, signal);
    return this.store.list(selector);
  }

  async create(lease: Lease, signal: AbortSignal) {
    await this.#pass('create', lease.metadata.name, signal);
    return this.store.create(lease);
  }

  async update(lease: Lease, signal: AbortSignal) {
    await this.#pass('update', lease.metadata.name, signal);
    return this.store.update(lease);
  }

  #pass(verb: Verb, name: string, signal: AbortSignal): Promise<void> {
    this.calls[verb]++;
    if (this.failing(verb, name)) return Promise.reject(new Error('connection reset'));
    if (!this.frozen(verb, name)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiting.add(resolve);
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  }
}

/** A write that never settles on its own: it ends only when its signal aborts. */
const hangingWrite = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

const SHORT = { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_000 };
const DEFAULT = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function replica(clock: FakeClock, store: LeaseStore, identity: string, extra: Partial<ShardCoordinatorOptions> = {}) {
  const gate = new Gate(store);
  const events: string[] = [];
  const c = new ShardCoordinator({
    client: gate,
    namespace: 'ns',
    leaseId: 'rg',
    identity,
    buckets: 16,
    clock,
    ...SHORT,
    ...extra,
  });
  c.onAcquired((b) => events.push(`+${b}`));
  c.onLost((b) => events.push(`-${b}`));
  const ac = new AbortController();
  const done = c.run(ac.signal);
  const stop = async () => {
    ac.abort();
    await done;
  };
  return { c, gate, events, stop, identity };
}

type Replica = ReturnType<typeof replica>;

/** Buckets whose fence holds in more than one replica now, and buckets counted as owned by more than one. */
function overlaps(replicas: Replica[], buckets = 16): string[] {
  const found: string[] = [];
  for (let b = 0; b < buckets; b++) {
    const fenced = replicas.filter((r) => r.c.fence(b).holds()).map((r) => r.identity);
    const owning = replicas.filter((r) => r.c.owned().has(b)).map((r) => r.identity);
    if (fenced.length > 1) found.push(`bucket ${b} fenced by ${fenced.join(', ')}`);
    if (owning.length > 1) found.push(`bucket ${b} owned by ${owning.join(', ')}`);
  }
  return found;
}

/** Advances the clock in steps, checking the invariant after each one. */
async function stepThrough(clock: FakeClock, replicas: Replica[], ms: number, step = 100): Promise<string[]> {
  const violations: string[] = [];
  for (let t = 0; t < ms; t += step) {
    await clock.tick(Math.min(step, ms - t));
    violations.push(...overlaps(replicas));
  }
  return violations;
}

const sizes = (replicas: Replica[]) => replicas.map((r) => r.c.owned().size);

/** Replicas a and b, run until they have split the 16 buckets (checked on the way). */
async function twoReplicas() {
  const clock = new FakeClock();
  const store = new LeaseStore();
  const a = replica(clock, store, 'a');
  const b = replica(clock, store, 'b');
  expect(await stepThrough(clock, [a, b], 5_000)).toEqual([]);
  expect(sizes([a, b])).toEqual([8, 8]);
  return { clock, store, a, b };
}

describe('ShardCoordinator', () => {
  it('acquires every bucket alone, renews them each round, and hands them back when stopped', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a');
    await clock.tick(0);
    expect(sizes([a])).toEqual([0]); // first a member: it has not seen its member lease yet
    await clock.tick(SHORT.retryPeriodMs);
    expect(sizes([a])).toEqual([16]);
    for (let b = 0; b < 16; b++) {
      expect(a.c.fence(b).holds()).toBe(true);
      const lease = store.leases.get(bucketLeaseName('rg', b));
      expect(lease?.spec?.holderIdentity).toBe('a');
      expect(lease?.metadata.labels).toEqual({ [SHARD_BUCKET_LABEL]: 'rg', [SHARD_BUCKETS_LABEL]: '16' });
    }
    const member = store.leases.get(memberLeaseName('rg', 'a'));
    expect(member?.metadata.labels).toEqual({ [SHARD_MEMBER_LABEL]: 'rg' });
    expect(member?.spec?.holderIdentity).toBe('a');

    await clock.tick(30_000);
    expect(sizes([a])).toEqual([16]);
    expect(a.events.filter((e) => e.startsWith('-'))).toEqual([]);
    const renewTime = store.leases.get(bucketLeaseName('rg', 5))?.spec?.renewTime;
    expect(Date.parse(renewTime!)).toBe(clock.now());

    await a.stop();
    expect(sizes([a])).toEqual([0]);
    expect(a.events.filter((e) => e.startsWith('-'))).toHaveLength(16);
    for (const lease of store.leases.values()) expect(lease.spec?.holderIdentity).toBe('');
    for (let b = 0; b < 16; b++) expect(a.c.fence(b).holds()).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('makes 2 LISTs and a PUT per held bucket plus one for its member lease each retry period', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a', DEFAULT);
    await clock.tick(0); // the first round creates the member lease
    expect(a.gate.calls).toEqual({ list: 2, create: 1, update: 0 });
    await clock.tick(DEFAULT.retryPeriodMs); // the second the 16 bucket leases
    expect(a.gate.calls).toEqual({ list: 4, create: 17, update: 1 });
    const before = { ...a.gate.calls };
    await clock.tick(60_000);
    const calls =
      a.gate.calls.list - before.list + a.gate.calls.update - before.update + a.gate.calls.create - before.create;
    // 30 rounds × (2 LISTs + 16 bucket PUTs + 1 member PUT).
    expect(a.gate.calls.list - before.list).toBe(60);
    expect(calls).toBe(30 * 19);
    console.log(`one replica, 16 buckets, 15 s / 10 s / 2 s: ${calls / 60} API calls/s`);

    const b = replica(clock, store, 'b', DEFAULT);
    const c = replica(clock, store, 'c', DEFAULT);
    const three = [a, b, c];
    expect(await stepThrough(clock, three, 20_000)).toEqual([]);
    expect(sizes(three).reduce((x, y) => x + y)).toBe(16);
    const counted = three.map((r) => ({ ...r.gate.calls }));
    await clock.tick(60_000);
    const perReplica = three.map((r, i) => {
      const was = counted[i]!;
      return (r.gate.calls.list - was.list + r.gate.calls.update - was.update + r.gate.calls.create - was.create) / 60;
    });
    // Each replica: 30 rounds × (2 + its buckets + 1).
    expect(perReplica).toEqual(three.map((r) => (30 * (3 + r.c.owned().size)) / 60));
    expect(Math.max(...perReplica)).toBeLessThanOrEqual(4.5);
    console.log(`three replicas (${sizes(three).join('/')} buckets): ${perReplica.join(', ')} API calls/s each`);
    for (const r of three) await r.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('splits the buckets 8/8, then 6/6/4 when a third joins, releasing only what no fence guards', async () => {
    const { clock, store, a, b } = await twoReplicas();

    // A release PUT must come after that bucket's fence was revoked.
    const early: string[] = [];
    store.beforeUpdate = (lease) => {
      const bucket = Number(/^rg-bucket-(\d+)$/.exec(lease.metadata.name)?.[1] ?? Number.NaN);
      if (lease.spec?.holderIdentity !== '' || Number.isNaN(bucket)) return;
      for (const r of [a, b]) if (r.c.fence(bucket).holds()) early.push(`${r.identity} released ${bucket} unfenced`);
    };
    const c = replica(clock, store, 'c');
    expect(await stepThrough(clock, [a, b, c], 5_000)).toEqual([]);
    expect(early).toEqual([]);
    expect([...sizes([a, b, c])].sort()).toEqual([4, 6, 6]);
    const all = [a, b, c].flatMap((r) => [...r.c.owned()]).sort((x, y) => x - y);
    expect(all).toEqual([...Array(16).keys()]);

    await c.stop(); // graceful: the others take its buckets at once
    expect(await stepThrough(clock, [a, b], 3_000)).toEqual([]);
    expect(sizes([a, b])).toEqual([8, 8]);
    await a.stop();
    await b.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a rebalance release lets a write in flight finish through its fence, and hands the lease back only once it settled', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a');
    await clock.tick(SHORT.retryPeriodMs);
    expect(sizes([a])).toEqual([16]); // b's arrival makes a release its 8 highest buckets
    const handedBack = new Map<string, number>();
    store.beforeUpdate = (lease) => {
      if (lease.spec?.holderIdentity === '') handedBack.set(lease.metadata.name, clock.now());
    };
    let land!: () => void;
    let writeSignal: AbortSignal | undefined;
    let settledAt: number | undefined;
    const write = a.c
      .fence(15)
      .run(undefined, (signal) => {
        writeSignal = signal;
        return new Promise<void>((resolve) => {
          land = resolve;
        });
      })
      .then(() => {
        settledAt = clock.now();
      });
    const b = replica(clock, store, 'b');
    let lostAt: number | undefined;
    for (let t = 0; t < 5_000 && lostAt === undefined; t += 100) {
      await clock.tick(100);
      if (a.events.includes('-15')) lostAt = clock.now();
    }
    expect(lostAt).toBeDefined();
    expect(a.c.fence(15).holds()).toBe(false); // no new write…
    expect(writeSignal?.aborted).toBe(false); // …but the one in flight goes on
    expect(handedBack.get(bucketLeaseName('rg', 14))).toBe(lostAt); // nothing in flight: at once
    await clock.tick(500);
    expect(store.holder(bucketLeaseName('rg', 15))).toBe('a'); // still ours while it runs
    expect(overlaps([a, b])).toEqual([]);
    land();
    await write;
    await flushPromises();
    expect(handedBack.get(bucketLeaseName('rg', 15))).toBe(settledAt); // at once after it settled, no margin
    expect(await stepThrough(clock, [a, b], 3_000)).toEqual([]);
    expect(sizes([a, b])).toEqual([8, 8]);
    expect(b.c.owned().has(15)).toBe(true);
    await a.stop();
    await b.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a release whose write in flight was aborted at its deadline waits a margin more before handing back', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a');
    await clock.tick(SHORT.retryPeriodMs);
    let handedBackAt: number | undefined;
    store.beforeUpdate = (lease) => {
      if (lease.metadata.name === bucketLeaseName('rg', 15) && lease.spec?.holderIdentity === '') {
        handedBackAt = clock.now();
      }
    };
    let abortedAt: number | undefined;
    // The write's deadline is fixed when it starts: the fence's, less the margin.
    const validUntil = a.c.fence(15).validUntil();
    const write = a.c.fence(15).run(
      undefined,
      (signal) =>
        new Promise<never>((_, reject) =>
          signal.addEventListener('abort', () => {
            abortedAt = clock.now();
            reject(signal.reason);
          }),
        ),
    );
    const refused = expect(write).rejects.toThrow(/would expire/);
    const b = replica(clock, store, 'b');
    for (let t = 0; t < 5_000 && !a.events.includes('-15'); t += 100) await clock.tick(100);
    expect(a.events).toContain('-15');
    const renewals = a.gate.calls.update;
    expect(await stepThrough(clock, [a, b], 5_000)).toEqual([]);
    await refused;
    // Aborted at the fence's deadline less the 1 s margin, handed back a margin later.
    expect(abortedAt).toBe(validUntil - 1_000);
    expect(handedBackAt).toBe(abortedAt! + 1_000);
    expect(a.gate.calls.update - renewals).toBeGreaterThan(8 * 3); // its rounds went on meanwhile
    expect(sizes([a, b])).toEqual([8, 8]);
    await a.stop();
    await b.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('stopping cuts a release short: its write in flight is aborted and its lease handed back with the rest', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a');
    await clock.tick(SHORT.retryPeriodMs);
    const write = a.c.fence(15).run(undefined, hangingWrite);
    const refused = expect(write).rejects.toThrow(/revoked/);
    const b = replica(clock, store, 'b');
    for (let t = 0; t < 5_000 && !a.events.includes('-15'); t += 100) await clock.tick(100);
    expect(store.holder(bucketLeaseName('rg', 15))).toBe('a');
    await a.stop();
    await refused;
    expect(store.holder(bucketLeaseName('rg', 15))).not.toBe('a');
    await b.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a replica whose calls hang stops writing at its renew deadline; the other takes over a lease duration later', async () => {
    const { clock, store, a, b } = await twoReplicas();
    const orphans = [...b.c.owned()];
    expect(orphans).toHaveLength(8);
    const lastRenew = clock.now() - (clock.now() % SHORT.retryPeriodMs); // rounds start on the second
    const killedAt = clock.now();
    b.gate.frozen = () => true;
    let lostAt: number | undefined;
    let takenAt: number | undefined;
    const violations: string[] = [];
    for (let t = 0; t < 12_000; t += 100) {
      await clock.tick(100);
      violations.push(...overlaps([a, b]));
      if (lostAt === undefined && b.c.owned().size === 0) lostAt = clock.now();
      if (takenAt === undefined && a.c.owned().size === 16) takenAt = clock.now();
    }
    expect(violations).toEqual([]);
    expect(lostAt).toBe(lastRenew + SHORT.renewDeadlineMs);
    expect(takenAt! - killedAt).toBeGreaterThanOrEqual(SHORT.leaseDurationMs - SHORT.retryPeriodMs);
    // It saw the last renew within a retry period of it, and wakes when that lease expires.
    expect(takenAt! - killedAt).toBeLessThanOrEqual(SHORT.leaseDurationMs + SHORT.retryPeriodMs);
    for (const bucket of orphans) expect(store.holder(bucketLeaseName('rg', bucket))).toBe('a');
    await a.stop();
    const stopped = b.stop(); // its release hangs too, until its renew deadline
    await clock.tick(SHORT.renewDeadlineMs);
    await stopped;
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a replica that cannot write bucket leases leaves the membership, less often each time; no bucket sits unwritten for a lease duration', async () => {
    const { clock, store, a, b } = await twoReplicas();
    b.gate.frozen = (verb, name) => verb !== 'list' && name.includes('-bucket-');
    const unowned = new Map<number, number>(); // bucket → since when no replica holds it
    let longestGap = 0;
    let handedBack = 0; // times b's member lease was seen handed back, not left to expire
    const violations: string[] = [];
    for (let t = 0; t < 120_000; t += 100) {
      await clock.tick(100);
      violations.push(...overlaps([a, b]));
      const member = store.leases.get(memberLeaseName('rg', 'b'))!;
      if (member.spec?.holderIdentity === '' && member.spec.leaseDurationSeconds === 1) handedBack++;
      for (let bucket = 0; bucket < 16; bucket++) {
        const held = a.c.owned().has(bucket) || b.c.owned().has(bucket);
        const since = unowned.get(bucket);
        if (held && since !== undefined) unowned.delete(bucket);
        if (!held && since === undefined) unowned.set(bucket, clock.now());
        if (!held) longestGap = Math.max(longestGap, clock.now() - (since ?? clock.now()));
      }
    }
    expect(violations).toEqual([]);
    expect(sizes([a, b])).toEqual([16, 0]);
    // Each time b rejoins, a hands it 8 buckets it cannot take; b's time out doubles (6, 12, 24,
    // 48 s). A handed bucket sits unwritten until b's acquire gives up (renew deadline), b hands
    // its member lease back at once (not left to expire), and a sees b gone at its next round:
    // renewDeadline + retryPeriod at most.
    const handed = a.events.filter((e) => e === '-15').length;
    console.log(
      `b unable to write bucket leases for 120 s: a handed it buckets ${handed} times, longest gap ${longestGap} ms`,
    );
    expect(handed).toBeLessThanOrEqual(5);
    expect(handedBack).toBeGreaterThan(0);
    expect(longestGap).toBeLessThanOrEqual(SHORT.renewDeadlineMs + SHORT.retryPeriodMs);
    await a.stop();
    const stopped = b.stop();
    await clock.tick(SHORT.renewDeadlineMs);
    await stopped;
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a replica holding buckets stays a member through rounds whose renewals all fail', async () => {
    const { clock, store, a, b } = await twoReplicas();
    const before = [a.events.length, b.events.length];
    b.gate.failing = (verb, name) => verb === 'update' && name.includes('-bucket-');
    await clock.tick(2 * SHORT.retryPeriodMs); // two rounds, short of b's fences' deadline
    expect(b.c.owned().size).toBe(8);
    expect(store.holder(memberLeaseName('rg', 'b'))).toBe('b');
    b.gate.failing = () => false;
    expect(await stepThrough(clock, [a, b], 5_000)).toEqual([]);
    expect(sizes([a, b])).toEqual([8, 8]);
    expect([a.events.length, b.events.length]).toEqual(before); // nothing moved
    expect(store.holder(memberLeaseName('rg', 'b'))).toBe('b');
    await a.stop();
    await b.stop();
  });

  it('takes a dead replica’s buckets the moment their leases expire, between its own rounds', async () => {
    // A retry period of 0.8 s: a 6 s lease seen at a round expires half-way between two rounds.
    const timings = { retryPeriodMs: 800 };
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a', timings);
    const b = replica(clock, store, 'b', timings);
    await stepThrough(clock, [a, b], 8_000);
    expect(sizes([a, b])).toEqual([8, 8]);
    const killedAt = clock.now(); // right after both ran their round at 8 000 ms
    b.gate.frozen = () => true;
    let takenAt: number | undefined;
    for (let t = 0; t < 10_000 && takenAt === undefined; t += 100) {
      await clock.tick(100);
      if (a.c.owned().size === 16) takenAt = clock.now();
    }
    // a saw b's last renew at its own round then (6 000 ms later) or at the next (6 800); waiting
    // for its round after the expiry would make it 6 400 or 7 200.
    expect([6_000, 6_800]).toContain(takenAt! - killedAt);
    await a.stop();
    const stopped = b.stop();
    await clock.tick(SHORT.renewDeadlineMs);
    await stopped;
  });

  it('renews its buckets and member lease with the LIST, not after it: a slow LIST delays no renew', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a', { buckets: 4 });
    await clock.tick(SHORT.retryPeriodMs); // a member first, then its buckets
    expect(a.c.owned().size).toBe(4);
    a.gate.frozen = (verb) => verb === 'list';
    const updates = a.gate.calls.update;
    await clock.tick(SHORT.retryPeriodMs); // the next round: its LISTs hang
    expect(a.gate.calls.update - updates).toBe(4 + 1); // every bucket and the member lease
    for (let b = 0; b < 4; b++) expect(a.c.fence(b).validUntil()).toBe(clock.now() + SHORT.renewDeadlineMs);
    await clock.tick(2_500);
    a.gate.thaw(); // answered 2.5 s late: nothing lost, and the next round, overdue, starts at once
    await clock.tick(0);
    expect(a.gate.calls.update - updates).toBe(2 * (4 + 1));
    expect(a.events).toEqual(['+0', '+1', '+2', '+3']);
    await a.stop();
  });

  it('renews a bucket whose renew conflicted again over the listed lease while the LIST shows it still its own', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a', { buckets: 4 });
    await clock.tick(SHORT.retryPeriodMs); // a member first, then its buckets
    // An earlier renew of ours that timed out may have landed: the lease moved on, still ours.
    const name = bucketLeaseName('rg', 2);
    store.update(store.leases.get(name)!);
    const updates = a.gate.calls.update;
    await clock.tick(SHORT.retryPeriodMs);
    expect(a.gate.calls.update - updates).toBe(4 + 1 + 1); // bucket 2 twice
    expect(a.events).toEqual(['+0', '+1', '+2', '+3']);
    expect(a.c.fence(2).holds()).toBe(true);
    await a.stop();
  });

  it('loses a bucket whose renew over the listed lease conflicts too, and takes it back next round while it is still its own', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a', { buckets: 4 });
    await clock.tick(SHORT.retryPeriodMs); // a member first, then its buckets
    let failures = 0;
    store.beforeUpdate = (lease) => {
      if (lease.metadata.name === bucketLeaseName('rg', 2) && failures < 2) {
        failures++;
        throw conflict('injected');
      }
    };
    await clock.tick(SHORT.retryPeriodMs);
    expect(failures).toBe(2);
    expect(a.events).toEqual(['+0', '+1', '+2', '+3', '-2']);
    expect(a.c.fence(2).holds()).toBe(false);
    await clock.tick(SHORT.retryPeriodMs);
    expect(a.events).toEqual(['+0', '+1', '+2', '+3', '-2', '+2']);
    expect(a.c.owned().has(2)).toBe(true);
    await a.stop();
  });

  it('loses a bucket another holder wrote, without renewing it', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const a = replica(clock, store, 'a', { buckets: 4 });
    await clock.tick(SHORT.retryPeriodMs); // a member first, then its buckets
    const name = bucketLeaseName('rg', 1);
    const lease = store.leases.get(name)!;
    store.update({ ...lease, spec: { ...lease.spec, holderIdentity: 'intruder' } });
    await clock.tick(SHORT.retryPeriodMs);
    expect(a.events.at(-1)).toBe('-1');
    expect(store.holder(name)).toBe('intruder');
    expect([...a.c.owned()].sort()).toEqual([0, 2, 3]);
    await a.stop();
    expect(store.holder(name)).toBe('intruder'); // not released: it was not ours
  });

  it('does not count an acquire that landed too late to write with, and renews it next round', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const gateFrozen = (verb: string) => verb === 'create';
    const a = replica(clock, store, 'a', { buckets: 2 });
    await clock.tick(0); // its member lease
    a.gate.frozen = gateFrozen;
    await clock.tick(SHORT.retryPeriodMs);
    await clock.tick(3_500); // the creates land 3.5 s after they were sent: 0.5 s left, below the 1 s margin
    a.gate.thaw();
    await flushPromises();
    expect(a.c.owned().size).toBe(0);
    expect(store.holder(bucketLeaseName('rg', 0))).toBe('a');
    await clock.tick(0); // the next round was due when the first ended: it renews both
    expect([...a.c.owned()].sort()).toEqual([0, 1]);
    expect(a.events).toEqual(expect.arrayContaining(['+0', '+1']));
    expect(a.c.fence(0).holds()).toBe(true);
    await a.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('ignores leases of another bucket count under its label', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    for (const name of ['rg-bucket-20', 'rg-bucket-03', 'rg-bucket-x']) {
      store.create({ metadata: { name, namespace: 'ns', labels: { [SHARD_BUCKET_LABEL]: 'rg' } }, spec: {} });
    }
    const a = replica(clock, store, 'a', { buckets: 4 });
    await clock.tick(SHORT.retryPeriodMs); // a member first, then its buckets
    expect(a.c.owned().size).toBe(4);
    await a.stop();
    expect(store.leases.get('rg-bucket-20')?.spec).toEqual({});
  });

  it('acquires only while mayAcquire says so, and keeps renewing what it holds when it stops saying so', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    let may = false;
    const asked: ShardView[] = [];
    const a = replica(clock, store, 'a', {
      buckets: 4,
      mayAcquire: (view) => {
        asked.push(view);
        return may;
      },
    });
    await clock.tick(3 * SHORT.retryPeriodMs);
    expect(a.c.owned().size).toBe(0);
    expect(store.holder(memberLeaseName('rg', 'a'))).toBe('a'); // a member all the same
    expect(asked.at(-1)?.members.map((m) => m.identity)).toEqual(['a']);
    may = true;
    await clock.tick(SHORT.retryPeriodMs);
    expect(a.c.owned().size).toBe(4);
    may = false;
    await clock.tick(10 * SHORT.retryPeriodMs); // longer than a lease duration
    expect(a.c.owned().size).toBe(4);
    expect(Date.parse(store.leases.get(bucketLeaseName('rg', 0))!.spec!.renewTime!)).toBe(clock.now());
    expect(a.events).toEqual(['+0', '+1', '+2', '+3']);
    await a.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('writes memberAnnotations onto its member lease at each renew, keeping annotations it does not own', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    let report = 'r1';
    const a = replica(clock, store, 'a', { buckets: 2, memberAnnotations: () => ({ 'readygate.dev/x': report }) });
    await clock.tick(0);
    const name = memberLeaseName('rg', 'a');
    expect(store.leases.get(name)?.metadata.annotations).toEqual({ 'readygate.dev/x': 'r1' });
    const lease = store.leases.get(name)!;
    store.update({
      ...lease,
      metadata: { ...lease.metadata, annotations: { ...lease.metadata.annotations, kept: 'y' } },
    });
    report = 'r2';
    await clock.tick(SHORT.retryPeriodMs);
    expect(store.leases.get(name)?.metadata.annotations).toEqual({ 'readygate.dev/x': 'r2', kept: 'y' });
    await a.stop();
  });

  it('tells onMembers the live members with their annotations, the bucket holders, and whether another set is live', async () => {
    const clock = new FakeClock();
    const store = new LeaseStore();
    const views: ShardView[] = [];
    const annotate = (id: string) => () => ({ 'readygate.dev/shard-report': `of ${id}` });
    const a = replica(clock, store, 'a', { buckets: 4, memberAnnotations: annotate('a') });
    a.c.onMembers((view) => views.push(view));
    const b = replica(clock, store, 'b', { buckets: 4, memberAnnotations: annotate('b') });
    await clock.tick(3 * SHORT.retryPeriodMs);
    const view = views.at(-1)!;
    expect(view.members).toEqual([
      { identity: 'a', annotations: { 'readygate.dev/shard-report': 'of a' } },
      { identity: 'b', annotations: { 'readygate.dev/shard-report': 'of b' } },
    ]);
    expect([...view.holders.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect([...view.holders.values()].map((h) => h.holder).sort()).toEqual(['a', 'a', 'b', 'b']);
    expect(view.otherSets).toBe(false);

    // A held bucket lease of another leaseId, and one of this leaseId with another bucket count.
    const held = { holderIdentity: 'old-0', leaseDurationSeconds: 6, renewTime: new Date(clock.now()).toISOString() };
    store.create({
      metadata: { name: 'old-bucket-0', namespace: 'ns', labels: { [SHARD_BUCKET_LABEL]: 'old' } },
      spec: held,
    });
    await clock.tick(SHORT.retryPeriodMs);
    expect(views.at(-1)?.otherSets).toBe(true);
    await clock.tick(SHORT.leaseDurationMs); // not renewed: expired
    expect(views.at(-1)?.otherSets).toBe(false);
    store.create({
      metadata: {
        name: 'rg-bucket-9',
        namespace: 'ns',
        labels: { [SHARD_BUCKET_LABEL]: 'rg', [SHARD_BUCKETS_LABEL]: '16' },
      },
      spec: held,
    });
    await clock.tick(SHORT.retryPeriodMs);
    expect(views.at(-1)?.otherSets).toBe(true);
    expect(a.gate.calls.list).toBe(2 * views.length); // still two LISTs a round

    await b.stop(); // handed back: b is no member now
    await clock.tick(SHORT.retryPeriodMs);
    expect(views.at(-1)?.members.map((m) => m.identity)).toEqual(['a']);
    await a.stop();
    expect(store.holder('old-bucket-0')).toBe('old-0'); // another set's leases are never written
    expect(store.holder('rg-bucket-9')).toBe('old-0');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('refuses bad options with a clear error', () => {
    const clock = new FakeClock();
    const base = {
      client: new Gate(new LeaseStore()),
      namespace: 'ns',
      leaseId: 'rg',
      identity: 'a',
      buckets: 16,
      clock,
      ...SHORT,
    };
    expect(() => new ShardCoordinator({ ...base, leaseId: 'Not_A_Label' })).toThrow(/DNS label/);
    expect(() => new ShardCoordinator({ ...base, identity: '' })).toThrow(/identity/);
    expect(() => new ShardCoordinator({ ...base, buckets: 0 })).toThrow(/buckets must be/);
    expect(() => new ShardCoordinator({ ...base, renewDeadlineMs: 7_000 })).toThrow(/renew-deadline < lease-duration/);
    expect(() => new ShardCoordinator({ ...base, client: undefined })).toThrow(/lease client or a kubeconfig/);
    expect(() => new ShardCoordinator(base).fence(16)).toThrow(/bucket 16 is not in 0..15/);
  });
});
