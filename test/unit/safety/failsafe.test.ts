import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import {
  Failsafe,
  GLOBAL_VIEW_MIN_TARGETS,
  type PolicyLimits,
  scaledMaxUnavailable,
} from '../../../src/safety/failsafe.ts';

// period 2 s × failureThreshold 3, as in the restart reproduction of issue 10.
const WINDOW = 6_000;
const limits = (targets: number, maxUnavailable: number | string = '50%'): PolicyLimits => ({
  windowMs: WINDOW,
  maxUnavailable,
  targets,
});

/** A failsafe with one policy of n targets (t0…t<n-1>), all observed healthy. */
function withPolicy(n: number, opts: { seed?: number[]; now?: number; max?: number | string } = {}) {
  const fs = new Failsafe();
  fs.addPolicy('ns/p', opts.seed ?? [], opts.now ?? 0, limits(n, opts.max));
  for (let i = 0; i < n; i++) {
    fs.addTarget(`t${i}`);
    fs.observe(`t${i}`, false);
  }
  return fs;
}

const admitted = (fs: Failsafe, targets: string[], at: (i: number) => number, policy = 'ns/p') =>
  targets.filter((t, i) => fs.requestFlip(policy, t, at(i)).verdict.admit).length;

describe('Failsafe: sliding window per policy', () => {
  it('admits maxUnavailable flips, then holds every other one and reports one transition', () => {
    const fs = withPolicy(10);
    const verdicts = Array.from({ length: 10 }, (_, i) => fs.requestFlip('ns/p', `t${i}`, 1_000 + i * 100));
    expect(verdicts.filter((v) => v.verdict.admit)).toHaveLength(5);
    expect(verdicts[5]!.verdict).toEqual({ admit: false, reason: 'Failsafe' });
    expect(verdicts.flatMap((v) => v.transitions)).toEqual([
      { policy: 'ns/p', reason: 'Failsafe', message: expect.stringContaining('maxUnavailable (5 of 10 pods)') },
    ]);
    expect(fs.status('ns/p')?.reason).toBe('Failsafe');
    expect(fs.heldTargets()).toEqual({ Failsafe: 5, CouldNotLook: 0 });
  });

  it('starts at the first flip: a burst straddling what a fixed window would end gets one budget', () => {
    // A fixed window from t=0 to 6 s would have let 5 through before 6 s and 5 more after.
    const fs = withPolicy(10);
    expect(admitted(fs, ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9'], (i) => 5_000 + i * 200)).toBe(5);
  });

  it('counts flips already on the pods (a restart or failover starts with the budget used)', () => {
    const fs = withPolicy(10, { seed: [9_000, 9_500, 9_900], now: 10_000 });
    expect(admitted(fs, ['t0', 't1', 't2', 't3', 't4'], (i) => 10_000 + i * 10)).toBe(2);
  });

  it('counts a seeded flip for two windows: taking over and seeing the outage again take one each', () => {
    const fs = withPolicy(10, { seed: [1_000, 2_000, 3_000], now: 10_000 });
    expect(admitted(fs, ['t0', 't1', 't2'], () => 12_999)).toBe(2);
    const later = withPolicy(10, { seed: [1_000, 2_000, 3_000], now: 10_000 });
    expect(admitted(later, ['t0', 't1', 't2', 't3', 't4', 't5'], () => 15_000)).toBe(5);
  });

  it('slides: a flip leaves the window one window after it was admitted', () => {
    const fs = withPolicy(4, { max: 1 });
    expect(fs.requestFlip('ns/p', 't0', 1_000).verdict.admit).toBe(true);
    // t1 refused inside the window trips the policy; it recovers, the trip clears a window later.
    expect(fs.requestFlip('ns/p', 't1', 6_999).verdict.admit).toBe(false);
    fs.release('ns/p', 't1', 7_000);
    expect(fs.tick('ns/p', 7_000 + WINDOW)).toEqual([]);
    expect(fs.tick('ns/p', 7_001 + WINDOW)).toEqual([{ policy: 'ns/p', reason: undefined, message: '' }]);
    expect(fs.requestFlip('ns/p', 't2', 7_002 + WINDOW).verdict.admit).toBe(true);
  });

  it('a trip holds while any flip is still wanted, however long', () => {
    const fs = withPolicy(2, { max: 0 });
    expect(fs.requestFlip('ns/p', 't0', 0).verdict.admit).toBe(false);
    for (let t = 1_000; t < 100_000; t += 1_000) expect(fs.tick('ns/p', t)).toEqual([]);
    expect(fs.status('ns/p')?.reason).toBe('Failsafe');
  });

  it('a one-pod policy can still report a failure (50% of 1 rounds up to 1)', () => {
    const fs = withPolicy(1);
    expect(fs.requestFlip('ns/p', 't0', 0).verdict.admit).toBe(true);
  });

  it('keeps policies apart', () => {
    const fs = withPolicy(2, { max: 1 });
    fs.addPolicy('other/q', [], 0, limits(2, 1));
    expect(fs.requestFlip('ns/p', 't0', 0).verdict.admit).toBe(true);
    expect(fs.requestFlip('other/q', 't1', 0).verdict.admit).toBe(true);
  });

  it('removing a held target releases it', () => {
    const fs = withPolicy(2, { max: 0 });
    fs.requestFlip('ns/p', 't0', 0);
    fs.removeTarget('ns/p', 't0', 10);
    expect(fs.heldTargets().Failsafe).toBe(0);
  });
});

describe('Failsafe: the global view across policies', () => {
  /** Two policies of n targets each (a0…, b0…), all observed. */
  function twoPolicies(n: number) {
    const fs = new Failsafe();
    for (const p of ['a', 'b']) {
      fs.addPolicy(`ns/${p}`, [], 0, limits(n, '100%'));
      for (let i = 0; i < n; i++) {
        fs.addTarget(`${p}${i}`);
        fs.observe(`${p}${i}`, false);
      }
    }
    return fs;
  }

  it('when most targets could not be looked at, holds every flip everywhere, whatever maxUnavailable says', () => {
    const fs = twoPolicies(6);
    for (let i = 0; i < 6; i++) fs.observe(`a${i}`, true);
    expect(fs.blind()).toBe(false); // 6 of 12 is not most
    expect(fs.observe('b0', true)).toEqual([]); // no policy holds anything yet: nothing to report
    expect(fs.blind()).toBe(true);
    const a = fs.requestFlip('ns/a', 'a0', 100);
    const b = fs.requestFlip('ns/b', 'b5', 100); // b5's own probe says failure, not could-not-look
    expect(a.verdict).toEqual({ admit: false, reason: 'CouldNotLook' });
    expect(b.verdict).toEqual({ admit: false, reason: 'CouldNotLook' });
    expect([...a.transitions, ...b.transitions].map((t) => [t.policy, t.reason])).toEqual([
      ['ns/a', 'CouldNotLook'],
      ['ns/b', 'CouldNotLook'],
    ]);
    expect(fs.couldNotLookRatio()).toBeCloseTo(7 / 12);
  });

  it('while blind, holds the targets that could not look, so their policies say why', () => {
    const fs = twoPolicies(6);
    for (let i = 0; i < 6; i++) fs.observe(`a${i}`, true, 'ns/a');
    const began = fs.observe('b0', true, 'ns/b');
    expect(began.map((t) => [t.policy, t.reason])).toEqual([['ns/b', 'CouldNotLook']]);
    expect(fs.observe('a0', true, 'ns/a').map((t) => [t.policy, t.reason])).toEqual([['ns/a', 'CouldNotLook']]);
    expect(fs.observe('a1', true, 'ns/a')).toEqual([]); // reported once per policy
    expect(fs.heldTargets().CouldNotLook).toBe(3);
    for (let i = 0; i < 6; i++) fs.observe(`a${i}`, false, 'ns/a');
    expect(fs.blind()).toBe(false);
    expect(fs.status('ns/a')).toBeUndefined();
    expect(fs.status('ns/b')).toBeUndefined();
  });

  it('while blind, a result that could not look is no observation; a real failure still is', () => {
    const fs = twoPolicies(6);
    expect(fs.isObservation(true)).toBe(true);
    for (let i = 0; i < 7; i++) fs.observe(`${i < 6 ? 'a' : 'b'}${i % 6}`, true);
    expect(fs.isObservation(true)).toBe(false);
    expect(fs.isObservation(false)).toBe(true);
  });

  it('ends the hold, reporting each affected policy once, when most can be looked at again', () => {
    const fs = twoPolicies(6);
    for (let i = 0; i < 6; i++) fs.observe(`a${i}`, true);
    fs.observe('b0', true);
    fs.requestFlip('ns/a', 'a0', 100);
    const cleared = fs.observe('a1', false);
    expect(cleared).toEqual([{ policy: 'ns/a', reason: undefined, message: '' }]);
    // a0 still wants to flip: asked again, the policy's own window now decides.
    expect(fs.requestFlip('ns/a', 'a0', 200).verdict.admit).toBe(true);
  });

  it(`never calls the operator blind below ${GLOBAL_VIEW_MIN_TARGETS} observed targets`, () => {
    const fs = new Failsafe();
    fs.addPolicy('ns/p', [], 0, limits(3));
    for (const t of ['t0', 't1', 't2']) {
      fs.addTarget(t);
      fs.observe(t, true);
    }
    expect(fs.blind()).toBe(false);
    expect(fs.requestFlip('ns/p', 't0', 0).verdict.admit).toBe(true);
  });

  it('right after start, holds a flip that could not look until half the targets were observed', () => {
    const fs = new Failsafe();
    fs.addPolicy('ns/p', [], 0, limits(20, '100%'));
    for (let i = 0; i < 20; i++) fs.addTarget(`t${i}`);
    fs.observe('t0', true);
    fs.observe('t1', false);
    expect(fs.warmingUp()).toBe(true);
    expect(fs.requestFlip('ns/p', 't0', 0).verdict).toEqual({ admit: false, reason: 'CouldNotLook' });
    expect(fs.requestFlip('ns/p', 't1', 0).verdict.admit).toBe(true); // its own probe saw a failure
    for (let i = 2; i < 10; i++) fs.observe(`t${i}`, false);
    expect(fs.warmingUp()).toBe(false);
    expect(fs.requestFlip('ns/p', 't0', 10).verdict.admit).toBe(true);
    expect(fs.status('ns/p')).toBeUndefined();
  });

  it('counts each target once, with its latest result', () => {
    const fs = twoPolicies(5);
    for (let i = 0; i < 20; i++) fs.observe('a0', true);
    expect(fs.couldNotLookRatio()).toBeCloseTo(1 / 10);
    fs.removeTarget('ns/a', 'a0', 0);
    expect(fs.couldNotLookRatio()).toBe(0);
    fs.observe('a0', true); // forgotten targets are not counted again
    expect(fs.couldNotLookRatio()).toBe(0);
  });
});

describe('Failsafe: a global budget across sharded replicas (docs/sharding.md, decision 4)', () => {
  /** One replica's failsafe: `own` of the policy's `global` targets (prefix0…), all observed. */
  function replica(prefix: string, own: number, global: number, max: number | string) {
    const fs = new Failsafe();
    fs.addPolicy('ns/p', [], 0, { ...limits(own, max), globalTargets: global });
    for (let i = 0; i < own; i++) {
      fs.addTarget(`${prefix}${i}`);
      fs.observe(`${prefix}${i}`, false);
    }
    return fs;
  }

  it('M = 2 over 4 pods split 2/1/1: each replica admits its share rounded up, 3 in all before they see each other', () => {
    const [a, b, c] = [replica('a', 2, 4, 2), replica('b', 1, 4, 2), replica('c', 1, 4, 2)];
    expect(admitted(a, ['a0', 'a1'], () => 1_000)).toBe(1); // ceil(2 × 2/4) = 1
    expect(admitted(b, ['b0'], () => 1_000)).toBe(1); // ceil(2 × 1/4) = 1
    expect(admitted(c, ['c0'], () => 1_000)).toBe(1);
    expect(a.status('ns/p')?.reason).toBe('Failsafe');
  });

  it('a 1-pod replica admits at most 1, whatever else of the budget is left', () => {
    const fs = replica('b', 1, 4, '100%'); // M = 4, share ceil(4 × 1/4) = 1
    expect(fs.requestFlip('ns/p', 'b0', 1_000).verdict.admit).toBe(true);
    expect(fs.requestFlip('ns/p', 'b0', 2_000).verdict).toEqual({ admit: false, reason: 'Failsafe' });
  });

  it('takes a percentage of the targets in all buckets, not of its own', () => {
    // 50% of 7 = 4, share ceil(4 × 2/7) = 2; unsharded, 50% of 2 would allow only 1.
    expect(admitted(replica('a', 2, 7, '50%'), ['a0', 'a1'], () => 1_000)).toBe(2);
    expect(admitted(replica('a', 2, 2, '50%'), ['a0', 'a1'], () => 1_000)).toBe(1);
  });

  it.each([
    ['50%', 50],
    [1, 1],
  ] as const)(
    'a replica with 1 of 100 targets can still flip its one failing pod (maxUnavailable %s → M = %i)',
    (max, m) => {
      expect(scaledMaxUnavailable(max, 100)).toBe(m);
      const fs = replica('t', 1, 100, max); // share ceil(M × 1/100) = 1
      expect(fs.requestFlip('ns/p', 't0', 1_000).verdict.admit).toBe(true);
    },
  );

  it('with maxUnavailable 0 no replica admits anything', () => {
    expect(replica('t', 1, 100, 0).requestFlip('ns/p', 't0', 1_000).verdict.admit).toBe(false);
  });

  it("a share follows the replica's targets: acquiring buckets widens it, within the same window", () => {
    const fs = replica('a', 1, 4, '100%');
    expect(fs.requestFlip('ns/p', 'a0', 1_000).verdict.admit).toBe(true);
    for (const t of ['a1', 'a2']) fs.addTarget(t);
    fs.updateLimits('ns/p', { ...limits(3, '100%'), globalTargets: 4 }); // share ceil(4 × 3/4) = 3
    expect(admitted(fs, ['a1', 'a2'], () => 2_000)).toBe(2);
    expect(fs.requestFlip('ns/p', 'a0', 3_000).verdict.admit).toBe(false); // 3 of its 3 used
  });

  it('globalTargets equal to targets is unsharded: same verdicts, same texts', () => {
    const plain = withPolicy(10);
    const same = new Failsafe();
    same.addPolicy('ns/p', [], 0, { ...limits(10), globalTargets: 10 });
    for (let i = 0; i < 10; i++) {
      same.addTarget(`t${i}`);
      same.observe(`t${i}`, false);
    }
    const run = (fs: Failsafe) => Array.from({ length: 10 }, (_, i) => fs.requestFlip('ns/p', `t${i}`, 1_000 + i));
    expect(run(same)).toEqual(run(plain));
    expect(same.status('ns/p')).toEqual(plain.status('ns/p'));
  });

  it('says the global budget when sharded, without counts that change with each flip', () => {
    const fs = replica('a', 2, 4, 2);
    const transitions = ['a0', 'a1'].flatMap((t) => fs.requestFlip('ns/p', t, 0).transitions);
    expect(transitions).toEqual([
      {
        policy: 'ns/p',
        reason: 'Failsafe',
        message: expect.stringContaining('maxUnavailable (2 of 4 pods, across replicas)'),
      },
    ]);
    expect(fs.status('ns/p')?.message).toBe(transitions[0]!.message);
  });

  it('rejects globalTargets below targets or not an integer', () => {
    const fs = new Failsafe();
    expect(() => fs.addPolicy('ns/p', [], 0, { ...limits(3), globalTargets: 2 })).toThrow(
      /globalTargets 2 must be .* at least targets \(3\)/,
    );
    expect(fs.status('ns/p')).toBeUndefined();
    fs.addPolicy('ns/p', [], 0, limits(3));
    expect(() => fs.updateLimits('ns/p', { ...limits(3), globalTargets: 3.5 })).toThrow(RangeError);
  });
});

describe('Failsafe: flips other replicas made (noteForeignFlip)', () => {
  /** One replica with `own` of `global` targets (a0…), that saw other replicas flip `foreign` at `at`. */
  function replicaSeeing(foreign: Array<[uid: string, at: number]>, own: number, global: number, max: number | string) {
    const fs = new Failsafe();
    fs.addPolicy('ns/p', [], 0, { ...limits(own, max), globalTargets: global });
    for (let i = 0; i < own; i++) {
      fs.addTarget(`a${i}`);
      fs.observe(`a${i}`, false);
    }
    for (const [uid, at] of foreign) fs.noteForeignFlip('ns/p', uid, at);
    return fs;
  }
  const own = (n: number) => Array.from({ length: n }, (_, i) => `a${i}`);

  it("count against M over all replicas, not against this replica's share", () => {
    // M = 5 of 10, share ceil(5 × 5/10) = 3: 3 foreign flips leave 2.
    const seen = replicaSeeing(
      [
        ['b0', 900],
        ['b1', 900],
        ['b2', 900],
      ],
      5,
      10,
      '50%',
    );
    expect(admitted(seen, own(5), () => 1_000)).toBe(2);
    expect(seen.status('ns/p')?.reason).toBe('Failsafe');
    // M = 10, share 5: 4 foreign flips leave 6, so the share alone bounds it.
    const shared = replicaSeeing(
      [
        ['b0', 900],
        ['b1', 900],
        ['b2', 900],
        ['b3', 900],
      ],
      5,
      10,
      '100%',
    );
    expect(admitted(shared, own(5), () => 1_000)).toBe(5);
  });

  it('M = 2 over 2/1/1: 3 flips within one visibility lag, then none until the foreign ones expire', () => {
    const [a, b, c] = [replicaSeeing([], 2, 4, 2), replicaSeeing([], 1, 4, 2), replicaSeeing([], 1, 4, 2)];
    expect([a, b, c].map((fs) => fs.requestFlip('ns/p', 'a0', 1_000).verdict.admit)).toEqual([true, true, true]);
    a.noteForeignFlip('ns/p', 'b0', 1_000);
    a.noteForeignFlip('ns/p', 'c0', 1_000);
    // a's own flip left the window, b's and c's still count (2 windows): stricter than one replica.
    expect(a.requestFlip('ns/p', 'a1', 1_000 + WINDOW).verdict).toEqual({ admit: false, reason: 'Failsafe' });
  });

  it('a foreign flip stops counting two windows after it was made (fake clock)', () => {
    const verdictAfter = (ms: number) => {
      const clock = new FakeClock();
      const fs = replicaSeeing([['b0', clock.now()]], 1, 2, 1); // M = 1, share 1
      clock.advance(ms);
      fs.tick('ns/p', clock.now());
      return fs.requestFlip('ns/p', 'a0', clock.now()).verdict;
    };
    expect(verdictAfter(2 * WINDOW - 1)).toEqual({ admit: false, reason: 'Failsafe' });
    expect(verdictAfter(2 * WINDOW)).toEqual({ admit: true });
  });

  it('a pod flipped twice counts once, for two windows from its latest flip', () => {
    // M = 5, share 3: b0 twice and b1 leave 3 (b0 counted twice would leave 2).
    expect(
      admitted(
        replicaSeeing(
          [
            ['b0', 0],
            ['b0', 500],
            ['b1', 0],
          ],
          5,
          10,
          '50%',
        ),
        own(3),
        () => 1_000,
      ),
    ).toBe(3);
    const twice: Array<[string, number]> = [
      ['b0', 0],
      ['b0', 1_000],
    ];
    expect(replicaSeeing(twice, 1, 2, 1).requestFlip('ns/p', 'a0', 2 * WINDOW).verdict.admit).toBe(false);
    expect(replicaSeeing(twice, 1, 2, 1).requestFlip('ns/p', 'a0', 1_000 + 2 * WINDOW).verdict.admit).toBe(true);
    // An older flip noted late does not shorten the count.
    const late = replicaSeeing(
      [
        ['b0', 1_000],
        ['b0', 0],
      ],
      1,
      2,
      1,
    );
    expect(late.requestFlip('ns/p', 'a0', 2 * WINDOW).verdict.admit).toBe(false);
  });

  it('removing a policy drops its foreign flips; a policy not tracked yet ignores them', () => {
    const fs = replicaSeeing([['b0', 0]], 1, 2, 1);
    fs.removePolicy('ns/p');
    fs.noteForeignFlip('ns/p', 'b1', 0);
    fs.addPolicy('ns/p', [], 0, { ...limits(1, 1), globalTargets: 2 });
    expect(fs.requestFlip('ns/p', 'a0', 1_000).verdict.admit).toBe(true);
  });

  it('rejects a flip time that is not a number', () => {
    const fs = replicaSeeing([], 1, 2, 1);
    expect(() => fs.noteForeignFlip('ns/p', 'b0', Number.NaN)).toThrow(/foreign flip time NaN/);
  });
});

describe('scaledMaxUnavailable (intstr, roundUp=true)', () => {
  it.each([
    ['50%', 10, 5],
    ['50%', 3, 2],
    ['50%', 1, 1],
    ['10%', 15, 2],
    ['0%', 10, 0],
    ['100%', 7, 7],
    ['25%', 0, 0],
    [3, 10, 3],
  ] as const)('%s of %i → %i', (value, total, expected) => {
    expect(scaledMaxUnavailable(value, total)).toBe(expected);
  });

  it('rejects what intstr rejects', () => {
    expect(() => scaledMaxUnavailable('3', 10)).toThrow(/percentage/);
    expect(() => scaledMaxUnavailable('abc%', 10)).toThrow();
    expect(() => scaledMaxUnavailable(-1, 10)).toThrow();
  });
});
