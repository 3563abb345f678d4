// Shard coordination against the real API server: in-process ShardCoordinators with distinct
// identities share 16 bucket Leases (admin credentials; the chart's RBAC is not involved yet).
// Throughout each test a checker samples every replica, on each acquire, after each lease write
// comes back and every 10 ms: no bucket may be fenced (or owned) by two replicas at once.
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type Lease, type LeaseSetClient, restLeaseSetClient } from '../../src/kube/lease.ts';
import {
  bucketLeaseName,
  SHARD_BUCKET_LABEL,
  SHARD_MEMBER_LABEL,
  ShardCoordinator,
} from '../../src/kube/shard-leases.ts';
import { realClock } from '../../src/runtime/clock.ts';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';
import { eventually } from '../support/wait.ts';

const BUCKETS = 16;
const TIMINGS = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
let kc: KubeConfig;
let ns: string;

interface BucketEvent {
  bucket: number;
  kind: 'acquired' | 'lost';
  identity: string;
  at: number;
}

/**
 * One replica's way to the API server: counts its calls, has the checker sample after each
 * write comes back (once the coordinator has acted on the answer), and can be frozen: its calls
 * then hang until their signal aborts, so its leases stop being renewed as a killed process's do.
 */
class ReplicaClient implements LeaseSetClient {
  frozen = false;
  readonly calls = { list: 0, write: 0 };
  readonly #inner: LeaseSetClient;
  readonly #afterWrite: () => void;

  constructor(inner: LeaseSetClient, afterWrite: () => void) {
    this.#inner = inner;
    this.#afterWrite = afterWrite;
  }

  async list(selector: string, signal: AbortSignal) {
    await this.#gate(signal);
    this.calls.list++;
    return this.#inner.list(selector, signal);
  }

  create(lease: Lease, signal: AbortSignal) {
    return this.#write(() => this.#inner.create(lease, signal), signal);
  }

  update(lease: Lease, signal: AbortSignal) {
    return this.#write(() => this.#inner.update(lease, signal), signal);
  }

  async #write(call: () => Promise<Lease>, signal: AbortSignal): Promise<Lease> {
    await this.#gate(signal);
    this.calls.write++;
    try {
      return await call();
    } finally {
      setImmediate(this.#afterWrite);
    }
  }

  #gate(signal: AbortSignal): Promise<void> {
    if (!this.frozen) return Promise.resolve();
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  }
}

interface Replica {
  identity: string;
  c: ShardCoordinator;
  client: ReplicaClient;
  log: string[];
  stop(): Promise<void>;
}

/** The replicas of one test, their bucket events, and the invariant checker over them. */
class Shard {
  readonly leaseId = `sh-${randomBytes(3).toString('hex')}`;
  readonly replicas: Replica[] = [];
  readonly events: BucketEvent[] = [];
  readonly violations: string[] = [];
  samples = 0;
  readonly #timer = setInterval(() => this.check(), 10);

  start(identity: string): Replica {
    const client = new ReplicaClient(restLeaseSetClient(kc, ns), () => this.check());
    const log: string[] = [];
    const c = new ShardCoordinator({
      client,
      namespace: ns,
      leaseId: this.leaseId,
      identity,
      buckets: BUCKETS,
      clock: realClock,
      ...TIMINGS,
      log: (msg, err) => log.push(`${new Date().toISOString()} ${msg}${err ? `: ${String(err)}` : ''}`),
    });
    c.onAcquired((bucket) => {
      this.events.push({ bucket, kind: 'acquired', identity, at: Date.now() });
      this.check();
    });
    c.onLost((bucket) => this.events.push({ bucket, kind: 'lost', identity, at: Date.now() }));
    const ac = new AbortController();
    const done = c.run(ac.signal);
    const replica = {
      identity,
      c,
      client,
      log,
      stop: async () => {
        ac.abort();
        await done;
        this.replicas.splice(this.replicas.indexOf(replica), 1);
      },
    };
    this.replicas.push(replica);
    return replica;
  }

  /** No bucket fenced or owned by two replicas now. */
  check(): void {
    this.samples++;
    for (let b = 0; b < BUCKETS; b++) {
      const fenced = this.replicas.filter((r) => r.c.fence(b).holds()).map((r) => r.identity);
      const owning = this.replicas.filter((r) => r.c.owned().has(b)).map((r) => r.identity);
      if (fenced.length > 1) this.violations.push(`${new Date().toISOString()} bucket ${b} fenced by ${fenced}`);
      if (owning.length > 1) this.violations.push(`${new Date().toISOString()} bucket ${b} owned by ${owning}`);
    }
  }

  /** Every bucket owned by one of `replicas`, none by more than `most`. */
  expectSplit(replicas: Replica[], most: number): void {
    const owned = replicas.flatMap((r) => [...r.c.owned()]).sort((x, y) => x - y);
    expect(owned).toEqual([...Array(BUCKETS).keys()]);
    for (const r of replicas) expect(r.c.owned().size).toBeLessThanOrEqual(most);
  }

  /** Waits until every replica has run `rounds` more rounds (two LISTs each). */
  async rounds(rounds: number): Promise<void> {
    const start = this.replicas.map((r) => r.client.calls.list);
    await eventually(() => {
      for (const [i, r] of this.replicas.entries()) {
        expect(r.client.calls.list - start[i]!).toBeGreaterThanOrEqual(2 * rounds);
      }
    });
  }

  /**
   * The longest time a bucket, once first held, was held by no replica before `until`: from a
   * 'lost' that left it unowned to the next 'acquired'.
   */
  longestGap(until: number): number {
    let longest = 0;
    for (let b = 0; b < BUCKETS; b++) {
      let holders = 0;
      let freeSince: number | undefined;
      for (const e of this.events.filter((x) => x.bucket === b && x.at <= until)) {
        holders += e.kind === 'acquired' ? 1 : -1;
        if (holders === 0) freeSince = e.at;
        else if (freeSince !== undefined) longest = Math.max(longest, e.at - freeSince);
        if (holders > 0) freeSince = undefined;
      }
    }
    return longest;
  }

  async close(): Promise<void> {
    for (const r of [...this.replicas]) await r.stop();
    clearInterval(this.#timer);
  }

  dumpOnFailure(): void {
    onTestFailed(() => {
      for (const r of this.replicas) console.log(`--- ${r.identity}\n${r.log.slice(-60).join('\n')}`);
      console.log(`--- violations\n${this.violations.slice(0, 20).join('\n')}`);
    });
  }
}

/** The holders of the shard's leases on the API server. */
async function holdersOnServer(leaseId: string): Promise<string[]> {
  const client = restLeaseSetClient(kc, ns);
  const signal = AbortSignal.timeout(10_000);
  const leases = [
    ...(await client.list(`${SHARD_BUCKET_LABEL}=${leaseId}`, signal)),
    ...(await client.list(`${SHARD_MEMBER_LABEL}=${leaseId}`, signal)),
  ];
  return leases.map((l) => l.spec?.holderIdentity ?? '');
}

async function holderOnServer(name: string): Promise<string | undefined> {
  const leases = await restLeaseSetClient(kc, ns).list(SHARD_BUCKET_LABEL, AbortSignal.timeout(10_000));
  return leases.find((l) => l.metadata.name === name)?.spec?.holderIdentity;
}

beforeAll(async () => {
  kc = adminKubeConfig();
  ns = await createNamespace(kc, 'shard');
});

afterAll(async () => {
  await deleteNamespace(kc, ns);
});

describe('shard leases', () => {
  it('three replicas hold every bucket, at most 6 each, and no bucket is fenced in two at once', async () => {
    const shard = new Shard();
    shard.dumpOnFailure();
    try {
      const rs = ['r-0', 'r-1', 'r-2'].map((id) => shard.start(id));
      await eventually(() => shard.expectSplit(rs, 6), 30_000, 20);
      const calls = rs.map((r) => ({ ...r.client.calls }));
      const from = Date.now();
      await shard.rounds(10);
      const seconds = (Date.now() - from) / 1000;
      shard.expectSplit(rs, 6);
      const rates = rs.map((r, i) => {
        const c = calls[i]!;
        return `${r.c.owned().size} buckets: ${((r.client.calls.list - c.list + r.client.calls.write - c.write) / seconds).toFixed(1)}/s`;
      });
      console.log(`steady state at 3 s / 2 s / 0.5 s, API calls per replica: ${rates.join(', ')}`);
      await shard.close();
      // ReleaseOnCancel: every bucket and member lease handed back.
      expect(new Set(await holdersOnServer(shard.leaseId))).toEqual(new Set(['']));
      console.log(`invariant sampled ${shard.samples} times`);
      expect(shard.samples).toBeGreaterThan(100);
      expect(shard.violations).toEqual([]);
    } finally {
      await shard.close();
    }
  });

  it('a killed replica’s buckets are all taken over by the others, never two holders at once', async () => {
    const shard = new Shard();
    shard.dumpOnFailure();
    try {
      const rs = ['k-0', 'k-1', 'k-2'].map((id) => shard.start(id));
      await eventually(() => shard.expectSplit(rs, 6), 30_000, 20);
      await shard.rounds(2);
      const [survivor1, victim, survivor2] = rs as [Replica, Replica, Replica];
      const orphans = [...victim.c.owned()];
      const killedAt = Date.now();
      victim.client.frozen = true; // its loop goes on, but no call of its reaches the API server
      await eventually(() => shard.expectSplit([survivor1, survivor2], 8), 30_000, 10);
      const takenAt = Math.max(
        ...orphans.map(
          (b) => shard.events.find((e) => e.bucket === b && e.kind === 'acquired' && e.at >= killedAt)?.at ?? Infinity,
        ),
      );
      const lostAt = Math.max(...shard.events.filter((e) => e.identity === victim.identity).map((e) => e.at));
      console.log(
        `killed replica's ${orphans.length} buckets: its fences expired ${lostAt - killedAt} ms after the kill, ` +
          `the others held them all ${takenAt - killedAt} ms after it (lease 3 s, renew 2 s, retry 0.5 s)`,
      );
      expect(victim.c.owned().size).toBe(0);
      expect(orphans.some((b) => victim.c.fence(b).holds())).toBe(false);
      // The bound (a lease duration and a retry period after the last renew it saw) is asserted in
      // fake time by test/unit/kube/shard-leases.test.ts; here the real server's figure is
      // reported, not asserted: on a loaded 2-core machine it came out at 3.5 s and at 4.1 s.
      expect(Number.isFinite(takenAt)).toBe(true);
      console.log(`invariant sampled ${shard.samples} times`);
      expect(shard.violations).toEqual([]);
    } finally {
      await shard.close();
    }
  });

  it('scales 1 → 3 → 2 with graceful stops: buckets move without overlap or long gaps, ending 8/8', async () => {
    const shard = new Shard();
    shard.dumpOnFailure();
    try {
      const a = shard.start('s-0');
      await eventually(() => shard.expectSplit([a], 16), 30_000, 20);
      const b = shard.start('s-1');
      const c = shard.start('s-2');
      await eventually(() => shard.expectSplit([a, b, c], 6), 30_000, 20);
      await shard.rounds(2);
      shard.expectSplit([a, b, c], 6);
      const moved = shard.events.filter((e) => e.identity === 's-0' && e.kind === 'lost').length;
      expect(moved).toBeGreaterThanOrEqual(10);
      await c.stop();
      await eventually(() => shard.expectSplit([a, b], 8), 30_000, 20);
      await shard.rounds(2);
      shard.expectSplit([a, b], 8);
      const gap = shard.longestGap(Date.now());
      console.log(`scale 1 → 3 → 2: ${moved} buckets left s-0, longest a bucket was held by no replica: ${gap} ms`);
      expect(gap).toBeLessThanOrEqual(TIMINGS.leaseDurationMs);
      console.log(`invariant sampled ${shard.samples} times`);
      expect(shard.violations).toEqual([]);
    } finally {
      await shard.close();
    }
  });

  it('a rebalance hands a bucket over only after the write in flight through its fence settled', async () => {
    const shard = new Shard();
    shard.dumpOnFailure();
    try {
      const a = shard.start('w-0');
      await eventually(() => shard.expectSplit([a], 16), 30_000, 20);
      // Bucket 15 is among the 8 highest, which a releases when b joins.
      let land!: () => void;
      let settledAt = Number.POSITIVE_INFINITY;
      let abortedInFlight = false;
      const write = a.c.fence(15).run(undefined, async (signal) => {
        await new Promise<void>((resolve) => {
          land = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        abortedInFlight = signal.aborted;
        settledAt = Date.now();
      });
      const b = shard.start('w-1');
      await eventually(() => expect(a.c.owned().has(15)).toBe(false), 30_000, 10);
      const lease = bucketLeaseName(shard.leaseId, 15);
      expect(await holderOnServer(lease)).toBe('w-0'); // closed, not handed back
      const listed = b.client.calls.list;
      await eventually(() => expect(b.client.calls.list).toBeGreaterThanOrEqual(listed + 2)); // b ran a round
      expect(b.c.owned().has(15)).toBe(false);
      land();
      await write;
      await eventually(() => expect(b.c.owned().has(15)).toBe(true), 30_000, 20);
      const takenAt = shard.events.find((e) => e.bucket === 15 && e.identity === 'w-1' && e.kind === 'acquired')!.at;
      console.log(
        `release with a write in flight: b took bucket 15 ${takenAt - settledAt} ms after it settled` +
          ` (${abortedInFlight ? 'aborted at its deadline' : 'not aborted'})`,
      );
      expect(takenAt).toBeGreaterThanOrEqual(settledAt);
      await eventually(() => shard.expectSplit([a, b], 8), 30_000, 20);
      expect(shard.violations).toEqual([]);
    } finally {
      await shard.close();
    }
  });

  it('a rolling update of two replicas (one surge pod at a time) moves buckets without overlap or long gaps', async () => {
    const shard = new Shard();
    shard.dumpOnFailure();
    try {
      let old = [shard.start('old-0'), shard.start('old-1')];
      await eventually(() => shard.expectSplit(old, 8), 30_000, 20);
      const fresh: Replica[] = [];
      for (const [i, leaving] of [...old].entries()) {
        fresh.push(shard.start(`new-${i}`)); // the surge pod
        await eventually(() => shard.expectSplit(shard.replicas, 6), 30_000, 20);
        await leaving.stop(); // the old pod, once the new one is ready
        old = old.filter((r) => r !== leaving);
        await eventually(() => shard.expectSplit([...old, ...fresh], 8), 30_000, 20);
      }
      await shard.rounds(2);
      shard.expectSplit(fresh, 8);
      const gap = shard.longestGap(Date.now());
      console.log(`rolling update: longest a bucket was held by no replica: ${gap} ms`);
      expect(gap).toBeLessThanOrEqual(TIMINGS.leaseDurationMs);
      console.log(`invariant sampled ${shard.samples} times`);
      expect(shard.violations).toEqual([]);
    } finally {
      await shard.close();
    }
  });
});
