// Step 3 of docs/sharding.md: with each replica caching only its buckets' pods, each publishes
// its share of every policy, and the status writer and the failsafes add the peers' shares up.
import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { desiredStatus, policyReconciler, shareCountsOf } from '../../../src/controllers/policy.ts';
import {
  decodeShareCounts,
  encodeShareCounts,
  MAX_REPORTED_FLIPS,
  MAX_SHARE_COUNTS_BYTES,
  PeerCounts,
  partitions,
  recentFlipTimes,
  ShareBook,
  type ShareCounts,
  sumShares,
} from '../../../src/controllers/share-counts.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';

const T0 = Date.UTC(2026, 10, 30, 12);
const GATE = 'readygate.dev/db';
const policy: ProbePolicy = {
  metadata: { name: 'db', namespace: 'shop', uid: 'uid-db', generation: 2 },
  spec: {
    conditionType: GATE,
    selector: { matchLabels: { app: 'db' } },
    // A 30 s failsafe window: the share reports flips of the last 60 s.
    probe: { tcpSocket: { port: 5432 }, periodSeconds: 10, failureThreshold: 3 },
  },
};

function pod(name: string, gate?: { status: 'True' | 'False'; reason?: string; at?: number }, gated = true): V1Pod {
  const conditions = gate
    ? [
        {
          type: GATE,
          status: gate.status,
          reason: gate.reason,
          lastTransitionTime: gate.at === undefined ? undefined : (new Date(gate.at).toISOString() as never),
        },
      ]
    : [];
  return {
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'db' } },
    spec: { containers: [], ...(gated ? { readinessGates: [{ conditionType: GATE }] } : {}) },
    status: { phase: 'Running', podIP: '127.0.0.9', conditions },
  };
}

const share = (over: Partial<ShareCounts> = {}): ShareCounts => ({
  matched: 0,
  ready: 0,
  ungated: 0,
  targets: 0,
  failing: [],
  conflictedWith: [],
  flips: [],
  ...over,
});

describe('shareCountsOf', () => {
  it("counts the share's matched, ready, ungated and targets, its first failing names and its recent flips", () => {
    const matched = [
      pod('c', { status: 'True' }),
      pod('b', { status: 'False', reason: 'ProbeFailed', at: T0 - 10_000 }),
      pod('a'),
      // A flip older than 2 windows no longer counts against any budget.
      pod('d', { status: 'False', reason: 'ProbeTimeout', at: T0 - 61_000 }),
      // Not readygate's flip.
      pod('e', { status: 'False', reason: 'ReleasedByHand', at: T0 - 1_000 }),
    ];
    const counts = shareCountsOf({
      policy,
      matched,
      ungated: [pod('x', undefined, false)],
      targets: 4,
      conflictedWith: ['old'],
      now: T0,
    });
    expect(counts).toEqual({
      matched: 5,
      ready: 1,
      ungated: 1,
      targets: 4,
      failing: ['a', 'b', 'd', 'e'],
      conflictedWith: ['old'],
      flips: [T0 - 10_000],
    });
  });
});

describe('desiredStatus with the peers part (elsewhere)', () => {
  it('adds their matched and ready pods, and merges the first failing names in sort order', () => {
    const s = desiredStatus({
      policy,
      matched: [pod('m', { status: 'True' }), pod('z')],
      conflictedWith: [],
      elsewhere: { matched: 10, ready: 7, failing: ['b', 'y', 'a'] },
      now: T0,
    });
    expect(s).toMatchObject({ matchedPods: 12, readyPods: 8, failingPods: ['a', 'b', 'y', 'z'] });
    expect(s.conditions?.find((c) => c.type === 'Ready')?.message).toBe('probing 12 matched pods');
  });

  it('is not NoPodsMatched when this replica sees none but its peers do', () => {
    const s = desiredStatus({
      policy,
      matched: [],
      conflictedWith: [],
      elsewhere: { matched: 3, ready: 3, failing: [] },
      now: T0,
    });
    expect(s.conditions?.find((c) => c.type === 'Degraded')?.reason).toBe('AsExpected');
    expect(s).toMatchObject({ matchedPods: 3, readyPods: 3, failingPods: [] });
  });
});

describe('share counts on the wire', () => {
  it('round-trips', () => {
    const counts = new Map([
      ['shop/db', share({ matched: 5, ready: 4, ungated: 1, targets: 5, failing: ['p1'], flips: [T0] })],
      ['shop/web', share({ matched: 2, ready: 2, targets: 1, conflictedWith: ['old'] })],
    ]);
    expect(decodeShareCounts(encodeShareCounts(counts))).toEqual({ counts, cut: 0 });
    expect(decodeShareCounts(encodeShareCounts(counts, [3, 1]))).toEqual({ counts, cut: 0, covered: [1, 3] });
  });

  it('drops names, then flips, then policies to stay within its bytes, and says how many policies were cut', () => {
    const names = Array.from({ length: 20 }, (_, i) => `a-rather-long-pod-name-of-a-statefulset-${i}`);
    const big = new Map<string, ShareCounts>();
    for (let i = 0; i < 200; i++) big.set(`shop/p${i}`, share({ matched: 20, failing: names, flips: [T0] }));
    const slim = decodeShareCounts(encodeShareCounts(big));
    expect(slim?.cut).toBe(0);
    expect(slim?.counts.get('shop/p7')).toEqual(share({ matched: 20, flips: [T0] }));

    const huge = new Map<string, ShareCounts>();
    for (let i = 0; i < 3000; i++) huge.set(`namespace-${i}/policy-${i}`, share({ matched: 1000, ready: 999 }));
    const text = encodeShareCounts(huge);
    expect(text.length).toBeLessThanOrEqual(MAX_SHARE_COUNTS_BYTES);
    const cut = decodeShareCounts(encodeShareCounts(huge, [0]));
    expect(cut!.cut + cut!.counts.size).toBe(3000);
    // Policies cut: the counts cover no known set of buckets, so no one adds them up as whole.
    expect(cut!.covered).toBeUndefined();
    expect(cut!.cut).toBeGreaterThan(0);
  });

  it('reads malformed text as none and skips malformed entries', () => {
    expect(decodeShareCounts(undefined)).toBeUndefined();
    expect(decodeShareCounts('{')).toBeUndefined();
    expect(decodeShareCounts('[]')).toBeUndefined();
    const read = decodeShareCounts(
      JSON.stringify({ p: { 'a/b': { m: 2, r: 3, u: 0, t: 0 }, 'a/c': { m: -1 }, 'a/d': { m: 2, r: 1, u: 0, t: 2 } } }),
    );
    expect([...read!.counts.keys()]).toEqual(['a/d']);
  });
});

describe('recentFlipTimes', () => {
  it('keeps at most MAX_REPORTED_FLIPS, newest first', () => {
    const pods = Array.from({ length: 100 }, (_, i) =>
      pod(`p${i}`, { status: 'False', reason: 'ProbeFailed', at: T0 - i }),
    );
    const times = recentFlipTimes(pods, GATE, T0 - 1000);
    expect(times).toHaveLength(MAX_REPORTED_FLIPS);
    expect(times[0]).toBe(T0);
  });
});

describe('PeerCounts', () => {
  it("sums the live peers' shares, itself excluded, and says which policies moved", () => {
    const peers = new PeerCounts();
    const r1 = new Map([['shop/db', share({ matched: 3, ready: 2, targets: 3, failing: ['x'], flips: [T0, T0] })]]);
    const r2 = new Map([['shop/db', share({ matched: 4, ready: 4, targets: 4 })]]);
    const me = new Map([['shop/db', share({ matched: 100 })]]);
    const moved = peers.update('me', [
      { identity: 'me', counts: { counts: me, cut: 0 } },
      { identity: 'r1', counts: { counts: r1, cut: 0 } },
      { identity: 'r2', counts: { counts: r2, cut: 0 } },
    ]);
    expect(moved).toEqual(['shop/db']);
    expect(peers.elsewhere('shop/db')).toMatchObject({ matched: 7, ready: 6, targets: 7, failing: ['x'] });
    expect(peers.elsewhere('shop/web')).toBeUndefined();
    // Two flips at the same time are two flips, with ids that stay the same in the next report.
    const flips = peers.flips('shop/db');
    expect(new Set(flips.map((f) => f.id)).size).toBe(2);
    expect(
      peers.update('me', [
        { identity: 'r1', counts: { counts: r1, cut: 0 } },
        { identity: 'r2', counts: { counts: r2, cut: 0 } },
      ]),
    ).toEqual([]);
    expect(peers.flips('shop/db')).toEqual(flips);
    // A peer gone (its member Lease expired): its share no longer counts.
    expect(peers.update('me', [{ identity: 'r2', counts: { counts: r2, cut: 0 } }])).toEqual(['shop/db']);
    expect(peers.elsewhere('shop/db')).toMatchObject({ matched: 4, ready: 4 });
  });

  it('knows which buckets each peer covers, and moves every policy when one coverage does', () => {
    const peers = new PeerCounts();
    const counts = new Map([['shop/db', share({ matched: 1 })]]);
    peers.update('me', [{ identity: 'r1', counts: { counts, cut: 0, covered: [0, 1] } }]);
    expect(peers.covered()).toEqual([[0, 1]]);
    expect(peers.update('me', [{ identity: 'r1', counts: { counts, cut: 0, covered: [0] } }])).toEqual(['shop/db']);
    // A peer whose counts cover no one set (a bucket moved since some pass): coverage unknown.
    peers.update('me', [
      { identity: 'r1', counts: { counts, cut: 0, covered: [0] } },
      { identity: 'r2', counts: { counts, cut: 0 } },
    ]);
    expect(peers.covered()).toBeUndefined();
  });

  it('partitions: every bucket once, no more, no less', () => {
    expect(partitions([[0, 2], [1], [3]], 4)).toBe(true);
    expect(partitions([[0, 2], [1]], 4)).toBe(false); // 3 unheld or not listed yet
    expect(partitions([[0, 2], [1, 2], [3]], 4)).toBe(false); // 2 counted twice during a move
    expect(partitions([[0, 1, 2, 3, 4]], 4)).toBe(false);
    expect(partitions([], 0)).toBe(true);
  });

  it('sumShares of nothing is undefined', () => {
    expect(sumShares([])).toBeUndefined();
  });
});

describe('the policy reconciler with a share-only cache', () => {
  function harness(writes: boolean) {
    const covered = [0, 1];
    const book = new ShareBook({ active: () => true, covered: () => covered, buckets: 4 });
    const metrics = createMetrics({ defaultMetrics: false });
    const synced: unknown[] = [];
    const patched: unknown[] = [];
    const pods = [pod('a', { status: 'True' }), pod('b', { status: 'False', reason: 'ProbeFailed', at: T0 - 5_000 })];
    const reconcile = policyReconciler({
      caches: {
        policies: { get: () => policy, list: () => [policy] },
        pods: { get: () => undefined, list: () => pods },
      },
      probes: {
        syncPolicy: (_p: unknown, _t: unknown, config: unknown) => synced.push(config),
        failsafe: () => undefined,
        overload: () => undefined,
      } as never,
      core: {} as never,
      events: { record: () => {} },
      writeLimiter: { wait: async () => {} } as never,
      now: () => T0,
      enableExec: false,
      allowSecretCa: false,
      kc: {} as never,
      allowedConditionPrefixes: ['readygate.dev/'],
      fence: { run: async (_s: AbortSignal, write: (s: AbortSignal) => unknown) => patched.push(write) } as never,
      statusWriter: () => writes,
      shares: book,
      metrics,
    });
    const ctx = { signal: new AbortController().signal, log: pino({ level: 'silent' }), retries: 0 };
    const gauge = async (what: string) =>
      (await metrics.registry.getSingleMetric(`readygate_policy_${what}_pods`)!.get()).values[0]?.value;
    return { book, covered, synced, patched, gauge, pass: () => reconcile({ namespace: 'shop', name: 'db' }, ctx) };
  }

  it("records its own share, and hands the peers' targets and flips to the failsafe", async () => {
    const h = harness(false);
    h.book.peers.update('me', [
      {
        identity: 'r2',
        counts: {
          counts: new Map([['shop/db', share({ matched: 6, ready: 6, targets: 6, flips: [T0 - 1] })]]),
          cut: 0,
        },
      },
    ]);
    await h.pass();
    expect(h.synced).toEqual([
      { caPem: undefined, elsewhere: { targets: 6, flips: [{ id: `r2#${T0 - 1}#0`, at: T0 - 1 }] } },
    ]);
    // A replica that does not write status publishes its share and writes nothing.
    expect(h.patched).toEqual([]);
    const published = decodeShareCounts(h.book.encode());
    expect(published?.counts.get('shop/db')).toEqual(
      share({ matched: 2, ready: 1, targets: 2, failing: ['b'], flips: [T0 - 5_000] }),
    );
    expect(published?.covered).toEqual([0, 1]);
    // A bucket listed since that pass: the counts no longer say which buckets they cover.
    h.covered.push(3);
    expect(decodeShareCounts(h.book.encode())?.covered).toBeUndefined();
    await h.pass();
    expect(decodeShareCounts(h.book.encode())?.covered).toEqual([0, 1, 3]);
  });

  it("writes status over its share and the peers', only once the shares cover every bucket once", async () => {
    const h = harness(true);
    const peer = (covered: number[]) => [
      {
        identity: 'r2',
        counts: {
          counts: new Map([['shop/db', share({ matched: 6, ready: 5, ungated: 2, targets: 6 })]]),
          cut: 0,
          covered,
        },
      },
    ];
    // Bucket 3 is not counted by anyone yet (unheld, or its pods not listed): no write.
    h.book.peers.update('me', peer([2]));
    await h.pass();
    expect(h.patched).toHaveLength(0);
    // Bucket 1 counted twice (moving from this replica to the peer): no write either.
    h.book.peers.update('me', peer([1, 2, 3]));
    await h.pass();
    expect(h.patched).toHaveLength(0);
    h.book.peers.update('me', peer([2, 3]));
    await h.pass();
    expect(h.patched).toHaveLength(1);
    expect([await h.gauge('matched'), await h.gauge('ready'), await h.gauge('failing')]).toEqual([8, 6, 2]);
  });

  it('publishes nothing while the cache holds every pod', () => {
    expect(new ShareBook({ active: () => false, covered: () => [], buckets: 4 }).encode()).toBeUndefined();
  });
});
