import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketOf,
  countLiveMembers,
  fairShare,
  fnv1a32,
  fnv1a64,
  HANDOVER_HORIZON_MS,
  handoverSince,
  type LeaseHolder,
  MAX_BUCKETS,
  mayAcquireBuckets,
  planBuckets,
  shardRange,
  shardSelector,
} from '../../../src/safety/sharding.ts';

/** Deterministic pseudo-random UUIDs (v4 layout) from a 32-bit xorshift generator. */
function uuids(count: number, seed: number): string[] {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const hex = [next(), next(), next(), next()].map((w) => w.toString(16).padStart(8, '0')).join('');
    out.push(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`);
  }
  return out;
}

describe('fnv1a32', () => {
  it('is FNV-1a 32 over the UTF-8 bytes', () => {
    // Known answers of the FNV reference implementation.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    // Non-ASCII text is hashed over its UTF-8 encoding, not its UTF-16 code units.
    expect(fnv1a32('é')).toBe(0x1e9de8c1); // bytes c3 a9; over the code unit e9 it would be 0x6c0b6c44
  });
});

// Printed by Go 1.x's hash/fnv New64a over []byte(s) with %016x, as HashField does in
// k8s.io/apimachinery@v0.37.2 pkg/sharding/hash.go.
const GO_FNV64A: [string, bigint][] = [
  ['', 0xcbf29ce484222325n],
  ['a', 0xaf63dc4c8601ec8cn],
  ['foobar', 0x85944171f73967e8n],
  ['é', 0x0ac21707b7181e01n],
  ['6f1c1a2e-0000-4000-a000-000000000000', 0xbae3de97b9a4d039n],
  ['aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', 0x93754b7248a00eb9n],
  ['test-uid-123', 0xd0ba679834556c0bn],
];

describe('handoverSince', () => {
  it('is the takeover bound before the acquisition: lease duration and two retry periods', () => {
    expect(handoverSince(100_000, 100_000, 15_000, 2_000)).toBe(81_000);
    expect(handoverSince(100_000, 100_000, 6_000, 1_000)).toBe(92_000);
    // Past the horizon a newly set-up target is not the takeover's.
    expect(handoverSince(100_000, 100_000 + HANDOVER_HORIZON_MS, 15_000, 2_000)).toBe(81_000);
    expect(handoverSince(100_000, 100_001 + HANDOVER_HORIZON_MS, 15_000, 2_000)).toBeUndefined();
  });
});

describe('bucketOf', () => {
  it.each(GO_FNV64A)('hashes %j as Go’s fnv.New64a does', (text, hash) => {
    expect(fnv1a64(text)).toBe(hash);
  });

  it('is floor(fnv1a64(uid) × B / 2^64): contiguous hash ranges', () => {
    // 0xbae3… is in the 12th sixteenth, 0x9375… in the 10th; 0xd0ba… is past 13/16 = 0xd000….
    expect(bucketOf('6f1c1a2e-0000-4000-a000-000000000000', 16)).toBe(11);
    expect(bucketOf('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', 16)).toBe(9);
    expect(bucketOf('test-uid-123', 16)).toBe(13);
    expect(bucketOf('test-uid-123', 1)).toBe(0);
    // With 3 buckets the cuts are at ceil(2^64/3) = 0x5555555555555556 and 0xaaaaaaaaaaaaaaab.
    expect(bucketOf('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', 3)).toBe(1);
    expect(bucketOf('6f1c1a2e-0000-4000-a000-000000000000', 3)).toBe(2);
  });

  it('puts every hash in the range of its own bucket, for any bucket count', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 1, max: MAX_BUCKETS }), (uid, buckets) => {
        const b = bucketOf(uid, buckets);
        const { start, end } = shardRange(b, buckets);
        const hash = fnv1a64(uid);
        expect(hash >= BigInt(start)).toBe(true);
        expect(hash < BigInt(end)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('equals the BigInt formula exactly (it is computed on 16-bit limbs)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 1, max: MAX_BUCKETS }), (uid, buckets) => {
        expect(bucketOf(uid, buckets)).toBe(Number((fnv1a64(uid) * BigInt(buckets)) >> 64n));
      }),
      { numRuns: 5000 },
    );
  });

  // The expected count per bucket is n / B with a standard deviation of sqrt(n (1/B)(1 − 1/B)):
  // 76.5 for 16 buckets (±5 % is ±4σ) and 39 for 64 (±10 % is ±4σ).
  it.each([
    [16, 0.05],
    [64, 0.1],
  ])('spreads 100,000 UUIDs over %i buckets within ±%f of an even split', (buckets, bound) => {
    const counts = new Array<number>(buckets).fill(0);
    for (const uid of uuids(100_000, 0x5eed)) counts[bucketOf(uid, buckets)]!++;
    const even = 100_000 / buckets;
    const worst = Math.max(...counts.map((c) => Math.abs(c - even) / even));
    console.log(
      `${buckets} buckets: counts ${Math.min(...counts)}..${Math.max(...counts)}, worst ${(worst * 100).toFixed(2)} % off even`,
    );
    expect(worst).toBeLessThanOrEqual(bound);
  });

  it('refuses bad input with a clear error', () => {
    expect(() => bucketOf('', 16)).toThrow(/pod UID/);
    expect(() => bucketOf('x', 0)).toThrow(/buckets must be an integer from 1/);
    expect(() => bucketOf('x', 2.5)).toThrow(/buckets must be an integer/);
    expect(() => bucketOf('x', MAX_BUCKETS + 1)).toThrow(/buckets must be an integer/);
  });
});

describe('shardRange and shardSelector', () => {
  it('tiles [0, 2^64) with [ceil(b·2^64/B), ceil((b+1)·2^64/B)), in the API server’s 16-digit spelling', () => {
    expect(shardRange(0, 4)).toEqual({ start: '0x0000000000000000', end: '0x4000000000000000' });
    expect(shardRange(3, 4)).toEqual({ start: '0xc000000000000000', end: '0x10000000000000000' });
    expect(shardRange(1, 3)).toEqual({ start: '0x5555555555555556', end: '0xaaaaaaaaaaaaaaab' });
    expect(shardRange(0, 1)).toEqual({ start: '0x0000000000000000', end: '0x10000000000000000' });
    for (const buckets of [1, 3, 7, 16, 255, MAX_BUCKETS]) {
      for (let b = 0; b < buckets; b++) {
        const { start, end } = shardRange(b, buckets);
        expect(start).toMatch(/^0x[0-9a-f]{16}$/);
        expect(end).toMatch(b === buckets - 1 ? /^0x10000000000000000$/ : /^0x[0-9a-f]{16}$/);
        if (b > 0) expect(start).toBe(shardRange(b - 1, buckets).end);
        expect(BigInt(start) < BigInt(end)).toBe(true);
      }
    }
  });

  it('merges adjacent buckets into one term, joined by || as the API server echoes them', () => {
    const r = (start: string, end: string) => `shardRange(object.metadata.uid, '${start}', '${end}')`;
    expect(shardSelector([2], 4)).toBe(r('0x8000000000000000', '0xc000000000000000'));
    expect(shardSelector([3, 0, 1, 1], 4)).toBe(
      `${r('0x0000000000000000', '0x8000000000000000')} || ${r('0xc000000000000000', '0x10000000000000000')}`,
    );
    expect(shardSelector([0, 1, 2, 3], 4)).toBe(r('0x0000000000000000', '0x10000000000000000'));
    expect(shardSelector([0, 2, 4], 8).split(' || ')).toHaveLength(3);
  });

  it('refuses bad input with a clear error', () => {
    expect(() => shardSelector([], 4)).toThrow(/at least one bucket/);
    expect(() => shardSelector([4], 4)).toThrow(/bucket 4 is not in 0..3/);
    expect(() => shardRange(-1, 4)).toThrow(/bucket -1 is not in 0..3/);
    expect(() => shardRange(0, 0)).toThrow(/buckets must be an integer/);
  });
});

describe('fairShare', () => {
  it('is ceil(buckets / members), counting at least one member', () => {
    expect(fairShare(16, 0)).toBe(16);
    expect(fairShare(16, 1)).toBe(16);
    expect(fairShare(16, 3)).toBe(6);
    expect(fairShare(16, 2)).toBe(8);
    expect(fairShare(16, 40)).toBe(1);
    expect(() => fairShare(16, -1)).toThrow(/live members/);
  });
});

describe('countLiveMembers', () => {
  it('counts itself and each live member, not one whose member lease or any bucket lease expired', () => {
    const members = [
      { holder: 'a', expired: false },
      { holder: 'b', expired: false },
      { holder: 'c', expired: true },
      { holder: 'd', expired: false },
      { holder: '', expired: false },
    ];
    const buckets = new Map([
      [0, { holder: 'b', expired: false }],
      [1, { holder: 'd', expired: true }],
    ]);
    expect(countLiveMembers('a', members, buckets)).toBe(2); // a and b
    expect(countLiveMembers('self', [], new Map())).toBe(1);
  });
});

const holders = (entries: [number, string, boolean?][]) =>
  new Map<number, LeaseHolder>(entries.map(([b, holder, expired]) => [b, { holder, expired: expired ?? false }]));

describe('planBuckets', () => {
  it('acquires free buckets up to the fair share, starting at an offset of its own', () => {
    const plan = planBuckets({ buckets: 16, self: 'a', liveMembers: 3, holders: new Map(), held: new Set() });
    expect(plan.release).toEqual([]);
    expect(plan.acquire).toHaveLength(6);
    expect(plan.acquire[0]).toBe(fnv1a32('a') % 16);
    // Three replicas that start together begin at different buckets.
    const starts = ['readygate-0', 'readygate-1', 'readygate-2'].map(
      (self) => planBuckets({ buckets: 16, self, liveMembers: 3, holders: new Map(), held: new Set() }).acquire[0],
    );
    expect(new Set(starts).size).toBe(3);
  });

  it('takes free, released, expired and its own unheld leases, never a live holder’s', () => {
    const table = holders([
      [0, 'b'],
      [1, ''],
      [2, 'c', true],
      [3, 'a'],
    ]);
    const plan = planBuckets({ buckets: 5, self: 'a', liveMembers: 1, holders: table, held: new Set() });
    expect([...plan.acquire].sort()).toEqual([1, 2, 3, 4]);
  });

  it('releases the highest-numbered buckets when over the fair share, and acquires nothing', () => {
    const held = new Set([0, 3, 5, 9, 12, 15]);
    const plan = planBuckets({ buckets: 16, self: 'a', liveMembers: 4, holders: new Map(), held });
    expect(plan).toEqual({ acquire: [], release: [12, 15] });
  });

  it('hands back leases on record as its own that it neither holds nor acquires', () => {
    const table = holders([
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
    ]);
    // Under its share, it takes its own records back before the free bucket 0.
    const under = planBuckets({ buckets: 4, self: 'a', liveMembers: 2, holders: table, held: new Set() });
    expect(under).toEqual({ acquire: [1, 2], release: [] });
    // At its share, they are strays: handed back rather than left to expire.
    const at = planBuckets({ buckets: 4, self: 'a', liveMembers: 2, holders: table, held: new Set([0, 3]) });
    expect(at).toEqual({ acquire: [], release: [1, 2] });
  });

  it('refuses bad input with a clear error', () => {
    const base = { buckets: 4, self: 'a', liveMembers: 1, holders: new Map(), held: new Set<number>() };
    expect(() => planBuckets({ ...base, self: '' })).toThrow(/identity/);
    expect(() => planBuckets({ ...base, held: new Set([4]) })).toThrow(/held bucket 4 is not in 0..3/);
    expect(() => planBuckets({ ...base, buckets: 0 })).toThrow(/buckets must be/);
  });
});

// A model of the shell: replicas list a shared lease table (a snapshot), then apply a plan to it
// later, with other replicas' steps in between. An acquire is a compare-and-swap on the version
// the snapshot saw (a PUT with resourceVersion, or a POST that fails if the lease exists), so a
// stale plan loses its races as it does against the API server. A killed replica's member and
// bucket leases count as expired at once; when that is safe (a lease duration after the last
// renewal was observed, past the holder's fence) is the shell's and the Fence's business.
// Faults: an acquire whose answer is lost (on record as the replica's, not counted by it), and a
// release whose PUT fails (still on record as the replica's): both leave strays to hand back.
interface Replica {
  id: string;
  held: Set<number>;
  alive: boolean;
  /** Left gracefully: its member lease was released. */
  left: boolean;
  snapshot?: { holders: Map<number, LeaseHolder>; versions: Map<number, number>; liveMembers: number };
}

class World {
  readonly table = new Map<number, { holder: string; version: number }>();
  readonly replicas: Replica[] = [];
  readonly violations: string[] = [];
  #version = 0;
  #joined = 0;

  readonly buckets: number;

  constructor(buckets: number) {
    this.buckets = buckets;
  }

  live(): Replica[] {
    return this.replicas.filter((r) => r.alive);
  }

  join(): Replica {
    const r: Replica = { id: `replica-${this.#joined++}`, held: new Set(), alive: true, left: false };
    this.replicas.push(r);
    return r;
  }

  list(r: Replica): void {
    const alive = new Set(this.live().map((x) => x.id));
    const holders = new Map<number, LeaseHolder>();
    const versions = new Map<number, number>();
    for (const [b, { holder, version }] of this.table) {
      holders.set(b, { holder, expired: holder !== '' && !alive.has(holder) });
      versions.set(b, version);
    }
    const members = this.replicas.filter((x) => !x.left).map((x) => ({ holder: x.id, expired: !x.alive }));
    r.snapshot = { holders, versions, liveMembers: countLiveMembers(r.id, members, holders) };
  }

  /** Applies r's plan; faults: 1 loses the answers of its acquires, 2 fails its releases. */
  apply(r: Replica, faults = 0): void {
    const snap = r.snapshot;
    if (!snap || !r.alive) return;
    r.snapshot = undefined;
    for (const b of r.held) {
      if (this.table.get(b)?.holder !== r.id) this.violations.push(`${r.id} lost bucket ${b} while alive`);
    }
    const plan = planBuckets({
      buckets: this.buckets,
      self: r.id,
      liveMembers: snap.liveMembers,
      holders: snap.holders,
      held: r.held,
    });
    for (const b of plan.release) {
      if (faults & 2)
        r.held.delete(b); // its fence revoked, the PUT lost
      else this.#release(r, b);
    }
    for (const b of r.held) {
      if (this.#swap(b, snap, r.id)) continue; // renewed
      r.held.delete(b); // a 409 on renew: lost
      this.violations.push(`${r.id} lost bucket ${b} to a conflict while alive`);
    }
    for (const b of plan.acquire) if (this.#swap(b, snap, r.id) && !(faults & 1)) r.held.add(b);
    const share = fairShare(this.buckets, snap.liveMembers);
    if (r.held.size > share) this.violations.push(`${r.id} holds ${r.held.size} > fair share ${share}`);
  }

  /** ReleaseOnCancel: everything on record as r's handed back, its member lease too. */
  leave(r: Replica): void {
    for (const [b, { holder }] of this.table) if (holder === r.id) this.#release(r, b);
    r.alive = false;
    r.left = true;
  }

  kill(r: Replica): void {
    r.alive = false;
  }

  /** At most one live replica counts each bucket as held, and the table agrees with it. */
  check(): void {
    const owner = new Map<number, string>();
    for (const r of this.live()) {
      for (const b of r.held) {
        const other = owner.get(b);
        if (other !== undefined) this.violations.push(`bucket ${b} held by ${other} and ${r.id}`);
        owner.set(b, r.id);
        if (this.table.get(b)?.holder !== r.id)
          this.violations.push(`${r.id} counts bucket ${b}, the table says otherwise`);
      }
    }
  }

  /** Rounds in which every live replica lists and applies in turn (a stable membership). */
  settle(rounds: number): void {
    for (let i = 0; i < rounds; i++) {
      for (const r of this.live()) {
        this.list(r);
        this.apply(r);
        this.check();
      }
    }
  }

  /** Every bucket held by one live replica, each within its fair share. */
  expectConverged(): void {
    const live = this.live();
    const share = fairShare(this.buckets, live.length);
    const held = live.flatMap((r) => [...r.held]).sort((a, b) => a - b);
    expect(held).toEqual([...Array(this.buckets).keys()]);
    for (const r of live) expect(r.held.size).toBeLessThanOrEqual(share);
    // No strays left: every lease on record as a replica's is counted by it.
    for (const [b, { holder }] of this.table) expect(live.find((r) => r.id === holder)?.held.has(b)).toBe(true);
    expect(this.violations).toEqual([]);
  }

  /** A PUT with the resourceVersion the snapshot saw (or a POST when it saw none): false is a 409. */
  #swap(b: number, snap: NonNullable<Replica['snapshot']>, holder: string): boolean {
    if ((this.table.get(b)?.version ?? 0) !== (snap.versions.get(b) ?? 0)) return false;
    this.table.set(b, { holder, version: ++this.#version });
    return true;
  }

  #release(r: Replica, b: number): void {
    if (this.table.get(b)?.holder !== r.id) this.violations.push(`${r.id} released bucket ${b} it did not hold`);
    this.table.set(b, { holder: '', version: ++this.#version });
    r.held.delete(b);
  }
}

type Step =
  | { kind: 'list' | 'leave' | 'kill'; pick: number }
  | { kind: 'apply'; pick: number; faults?: number }
  | { kind: 'join' }
  | { kind: 'burst'; picks: number[] };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('list' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('apply' as const), pick: fc.nat(), faults: fc.nat(3) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('burst' as const), picks: fc.array(fc.nat(), { maxLength: 6 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('leave' as const, 'kill' as const), pick: fc.nat() }) },
);

function play(world: World, step: Step): void {
  const live = world.live();
  const at = (pick: number) => live[pick % live.length];
  if (step.kind === 'join') {
    if (live.length < 8) world.join();
  } else if (step.kind === 'burst') {
    // Several replicas list before any applies: the plans race for the same buckets.
    const racers = step.picks.map(at).filter((r) => r !== undefined);
    for (const r of racers) world.list(r);
    for (const r of racers) world.apply(r);
  } else {
    const r = at(step.pick);
    if (!r) return;
    if (step.kind === 'list') world.list(r);
    else if (step.kind === 'apply') world.apply(r, step.faults);
    else if (live.length > 1) world[step.kind](r);
  }
  world.check();
}

describe('planBuckets applied by racing replicas (simulation)', () => {
  it('never lets two live replicas hold a bucket, keeps each within its share, and converges', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(stepArb, { maxLength: 80 }),
        (buckets, initial, steps) => {
          const world = new World(buckets);
          for (let i = 0; i < initial; i++) world.join();
          for (const step of steps) play(world, step);
          expect(world.violations).toEqual([]);
          world.settle(3);
          world.expectConverged();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('scales 1 → 3 → 2 with random interleavings in each phase', () => {
    const phase = fc.array(fc.tuple(fc.constantFrom('list' as const, 'apply' as const), fc.nat()), { maxLength: 40 });
    fc.assert(
      fc.property(phase, phase, phase, fc.nat(), (alone, three, two, leaver) => {
        const world = new World(16);
        const a = world.join();
        const run = (steps: ['list' | 'apply', number][]) => {
          for (const [kind, pick] of steps) play(world, { kind, pick });
        };
        run(alone);
        world.settle(3);
        expect(a.held.size).toBe(16);
        world.join();
        world.join();
        run(three);
        world.settle(3);
        world.expectConverged();
        expect(a.held.size).toBeLessThanOrEqual(6);
        world.leave(world.live()[leaver % 3]!);
        run(two);
        world.settle(3);
        world.expectConverged();
        expect(world.live().map((r) => r.held.size)).toEqual([8, 8]);
      }),
      { numRuns: 300 },
    );
  });

  it('hands a killed replica’s buckets to the others', () => {
    const world = new World(16);
    const [a, b, c] = [world.join(), world.join(), world.join()];
    world.settle(3);
    world.expectConverged();
    const orphans = [...b.held];
    world.kill(b);
    world.settle(3);
    world.expectConverged();
    for (const bucket of orphans) expect(a.held.has(bucket) || c.held.has(bucket)).toBe(true);
    expect([a.held.size, c.held.size]).toEqual([8, 8]);
  });
});

describe('mayAcquireBuckets (one lease set writes at a time)', () => {
  const members = new Set(['rg-0', 'rg-1']);
  it('acquires beside a leader of its own set, or none', () => {
    expect(mayAcquireBuckets({ otherSets: false, leader: 'rg-1', members })).toBe(true);
    expect(mayAcquireBuckets({ otherSets: false, leader: '', members })).toBe(true);
  });
  it('waits for an unsharded leader, another set, or until it has seen who leads', () => {
    expect(mayAcquireBuckets({ otherSets: false, leader: 'old-unsharded', members })).toBe(false);
    expect(mayAcquireBuckets({ otherSets: true, leader: 'rg-1', members })).toBe(false);
    expect(mayAcquireBuckets({ otherSets: false, leader: undefined, members })).toBe(false);
  });
});
