// The sharding bench's pure parts: which buckets count as held, how pod writes are found in the
// audit log (streamed, rotated files included), the probe period it picks, and how it judges
// issue 14's goals.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { longestGap } from '../../../bench/operator/listeners.ts';
import {
  bucketsPerHolder,
  countBetween,
  heldBuckets,
  isPodStatusPatch,
  type LeaseView,
  leaseWriteFigures,
  leaseWriteOf,
  leaseWrites,
  podStatusPatchTimes,
  spread,
} from '../../../bench/operator/shard-observe.ts';
import { sampleForGaps, setIdOf } from '../../../bench/operator/shard-replicas.ts';
import { pooledPerProbe, shardRows, worstPerProbe } from '../../../bench/operator/shard-report.ts';
import { type KillFigures, periodFor, type SizeRun, steadySecondsFor } from '../../../bench/operator/shard-run.ts';
import { defaultShardOptions, resultName, shardOptions } from '../../../bench/operator/shards.ts';
import type { AuditEvent } from '../../../test/support/audit.ts';
import { member, set } from './shard-fixtures.ts';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const lease = (name: string, holder: string | null, ageMs: number): LeaseView => ({
  name,
  holder,
  renewedAt: NOW - ageMs,
  durationSeconds: 15,
});

describe('bucket Leases as the sharding bench reads them', () => {
  const set = setIdOf(16);

  it('names the set as readygate run does', () => {
    expect(set).toBe('readygate-s16');
  });

  it('counts a bucket held only while its Lease is held and not expired, by a given holder', () => {
    const leases = [
      lease(`${set}-bucket-0`, 'rg-0', 1_000),
      lease(`${set}-bucket-1`, 'rg-1', 15_000), // expired just now
      lease(`${set}-bucket-2`, null, 0), // handed back
      lease(`${set}-bucket-3`, 'rg-1', 14_999),
      lease(`${set}-bucket-16`, 'rg-0', 0), // not a bucket of 16
      lease(`${set}-bucket-03`, 'rg-0', 0), // not a name readygate writes
      lease(`readygate-s32-bucket-4`, 'rg-0', 0), // another set
      lease(`${set}-member-0a1b2c3d`, 'rg-0', 0),
    ];
    expect([...heldBuckets(leases, set, 16, NOW)]).toEqual([
      [0, 'rg-0'],
      [3, 'rg-1'],
    ]);
    expect([...heldBuckets(leases, set, 16, NOW, new Set(['rg-1']))]).toEqual([[3, 'rg-1']]);
  });

  it('groups the held buckets by holder, in bucket order', () => {
    const held = new Map([
      [5, 'b'],
      [1, 'a'],
      [3, 'b'],
    ]);
    expect(Object.fromEntries(bucketsPerHolder(held))).toEqual({ a: [1], b: [3, 5] });
  });
});

describe('pod writes from the audit log', () => {
  const user = 'system:serviceaccount:readygate-system:readygate';
  const event = (over: Partial<AuditEvent>, at: string): AuditEvent => ({
    auditID: at,
    stage: 'ResponseComplete',
    verb: 'patch',
    user: { username: user },
    objectRef: { resource: 'pods', subresource: 'status', namespace: 'ns', name: 'p' },
    requestReceivedTimestamp: at,
    ...over,
  });
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("takes the user's completed PATCH of pods/status in the namespace, and nothing else", () => {
    const at = '2026-11-30T12:00:00.000001Z';
    expect(isPodStatusPatch(event({}, at), user, 'ns')).toBe(true);
    expect(isPodStatusPatch(event({ stage: 'ResponseStarted' }, at), user, 'ns')).toBe(false);
    expect(isPodStatusPatch(event({ verb: 'update' }, at), user, 'ns')).toBe(false);
    expect(isPodStatusPatch(event({ user: { username: 'admin' } }, at), user, 'ns')).toBe(false);
    expect(isPodStatusPatch(event({}, at), user, 'other')).toBe(false);
    const pod = { resource: 'pods', namespace: 'ns', name: 'p' };
    expect(isPodStatusPatch(event({ objectRef: pod }, at), user, 'ns')).toBe(false);
  });

  it('streams the rotated files, then audit.log, and skips a line still being written', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'shards-audit-'));
    const line = (e: AuditEvent) => `${JSON.stringify(e)}\n`;
    writeFileSync(
      path.join(dir, 'audit-2026-11-30T11-59-00.000.log'),
      line(event({}, '2026-11-30T12:00:01.500000Z')) + line(event({ verb: 'get' }, '2026-11-30T12:00:02Z')),
    );
    writeFileSync(
      path.join(dir, 'audit.log'),
      line(event({}, '2026-11-30T12:00:03Z')) +
        line(event({}, '2026-11-30T12:00:00Z')) +
        '{"subresource":"status","namespace":"ns"',
    );
    const times = await podStatusPatchTimes(dir, user, 'ns');
    expect(times).toEqual([NOW, NOW + 1500, NOW + 3000]);
    expect(countBetween(times, NOW + 1500, NOW + 3000)).toBe(1);
  });
});

describe('Lease writes from the audit log', () => {
  const write = (sent: string, received: string, done: string, code = 200, holder = 'rg-0'): AuditEvent => ({
    auditID: received,
    stage: 'ResponseComplete',
    verb: 'update',
    user: { username: 'u' },
    objectRef: { resource: 'leases', namespace: 'readygate-system', name: 'readygate-bucket-3' },
    responseStatus: { code },
    requestReceivedTimestamp: received,
    stageTimestamp: done,
    requestObject: { spec: { holderIdentity: holder, renewTime: sent } },
  });
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('splits a held-Lease write into the way to the API server and the time it took there', () => {
    const e = write('2026-11-30T12:00:00.000000Z', '2026-11-30T12:00:02.500000Z', '2026-11-30T12:00:03.000000Z');
    expect(leaseWriteOf(e)).toEqual({
      holder: 'rg-0',
      sentAt: NOW,
      receivedAt: NOW + 2500,
      doneAt: NOW + 3000,
      code: 200,
    });
    // A hand-back (no holder), another stage, another resource or a body not logged: none.
    expect(leaseWriteOf({ ...e, requestObject: { spec: { holderIdentity: '', renewTime: 'x' } } })).toBeUndefined();
    expect(leaseWriteOf({ ...e, stage: 'ResponseStarted' })).toBeUndefined();
    expect(leaseWriteOf({ ...e, objectRef: { resource: 'pods' } })).toBeUndefined();
    expect(leaseWriteOf({ ...e, requestObject: undefined })).toBeUndefined();
  });

  it('counts the writes sent in a window, those not 2xx and those answered past the renew deadline', () => {
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    const events = [
      write(at(0), at(10), at(30)),
      write(at(1000), at(1100), at(12_000), 504),
      write(at(2000), at(9000), at(9100), 409),
      write(at(60_000), at(60_001), at(60_002)),
    ];
    const f = leaseWriteFigures(
      events.map((e) => leaseWriteOf(e)!),
      NOW,
      NOW + 60_000,
      10_000,
    );
    expect(f).toEqual({
      writes: 3,
      failed: { 409: 1, 504: 1 },
      toServer: { p50: 0.1, p99: 7, max: 7 },
      inServer: { p50: 0.1, p99: 10.9, max: 10.9 },
      pastDeadline: 1,
    });
    expect(leaseWriteFigures([], NOW, NOW + 1, 10_000)).toMatchObject({ writes: 0, toServer: null, inServer: null });
    expect(spread([5, 1, 3, 2, 4])).toEqual({ p50: 0.003, p99: 0.005, max: 0.005 });
  });

  it('reads them from every audit file', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'shards-lease-audit-'));
    const e = write('2026-11-30T12:00:00Z', '2026-11-30T12:00:00.010Z', '2026-11-30T12:00:00.020Z');
    writeFileSync(path.join(dir, 'audit-2026-11-30T11-59-00.000.log'), `${JSON.stringify(e)}\n`);
    writeFileSync(
      path.join(dir, 'audit.log'),
      `${JSON.stringify({ ...e, auditID: 'b' })}\n{"resource":"leases","holderIdentity"`,
    );
    expect((await leaseWrites(dir)).map((w) => w.receivedAt)).toEqual([NOW + 10, NOW + 10]);
  });
});

describe('the probe period and the options', () => {
  it('probes about probesPerSecond targets a second, 10 s at least', () => {
    expect(periodFor(defaultShardOptions, 2000)).toBe(10);
    expect(periodFor(defaultShardOptions, 50_000)).toBe(50);
    expect(periodFor(defaultShardOptions, 100_001)).toBe(101);
    expect(periodFor({ ...defaultShardOptions, periodSeconds: 30 }, 50_000)).toBe(30);
    expect(steadySecondsFor(defaultShardOptions, 10)).toBe(60);
    expect(steadySecondsFor(defaultShardOptions, 50)).toBe(100);
  });

  it('refuses a second set that cannot lose a replica, and bucket counts the operator refuses', () => {
    expect(shardOptions([]).custom).toBe(false);
    // Other pod counts name the output by its sizes, not as custom.
    expect(shardOptions(['--sizes', '2000,10000'])).toMatchObject({ o: { sizes: [2000, 10000] }, custom: false });
    expect(shardOptions(['--period', '30']).custom).toBe(true);
    expect(() => shardOptions(['--replicas', '1'])).toThrow('at least 2');
    expect(() => shardOptions(['--buckets', '2'])).toThrow('--buckets');
    expect(() => shardOptions(['--period', '2'])).toThrow('more than the 2 s timeout');
    expect(() => shardOptions(['--sizes', '5k'])).toThrow('not a positive integer');
  });

  it('skips the scale steps or the single replica on request, and names such runs custom', () => {
    expect(shardOptions([]).o).toMatchObject({ scale: true, solo: true });
    expect(shardOptions(['--no-scale'])).toMatchObject({ o: { scale: false }, custom: true });
    expect(shardOptions(['--no-solo'])).toMatchObject({ o: { solo: false }, custom: true });
    expect(shardOptions(['--startup-deadline', '2400'])).toMatchObject({
      o: { startupDeadlineSeconds: 2400 },
      custom: true,
    });
    expect(() => shardOptions(['--startup-deadline', '0'])).toThrow('--startup-deadline');
  });

  it('names a run of the replicas alone apart from the full run of the same size and day', () => {
    const name = (argv: string[]) => {
      const { o, custom, tag } = shardOptions(argv);
      return resultName(o, custom, '2026-12-01', tag);
    };
    expect(name([])).toBe('2026-12-01-shards');
    expect(name(['--sizes', '100000', '--feature-gates', 'ShardedListAndWatch=true'])).toBe(
      '2026-12-01-shards-100000-custom-sharded-watch',
    );
    expect(name(['--sizes', '100000', '--no-solo', '--feature-gates', 'ShardedListAndWatch=true'])).toBe(
      '2026-12-01-shards-100000-no-solo-custom-sharded-watch',
    );
    // --tag names a second run of the same command apart, and counts as no option of its own.
    expect(name(['--sizes', '150000', '--tag', 'renew-with-list'])).toBe('2026-12-01-shards-150000-renew-with-list');
    expect(() => shardOptions(['--tag', 'Two Words'])).toThrow('--tag');
  });
});

describe('the goals of issue 14', () => {
  const solo = set([member('rg-solo', 50_000, 100_000, { leader: true })]);
  const three = [member('rg-0', 20_000, 36_000), member('rg-1', 18_000, 37_000), member('rg-2', 14_000, 27_000)];
  const kill: KillFigures = {
    victim: 'rg-0',
    victimBuckets: [0, 1, 2, 3, 4, 5],
    victimWasLeader: false,
    allHeldSeconds: 16,
    boundSeconds: 19,
    takeoverSeconds: [[0, 15.5]],
    holdersAfter: {},
    leaderAfter: 'rg-1',
    roundSeconds: 12,
    podWritesSinceKill: 0,
    leftTrue: 0,
    gatesTrueAtEnd: 1000,
    observedSeconds: 30,
    wall: { kill: 0, end: 0 },
  };
  const run = (kid: Partial<KillFigures> = {}, steadyWrites = 0): SizeRun => ({
    pods: 1000,
    namespace: 'ns',
    periodSeconds: 10,
    steadySeconds: 60,
    createSeconds: 1,
    clearSeconds: 1,
    sets: [
      solo,
      set(three, {
        kill: { ...kill, ...kid },
        steady: { from: 0, to: 60, podWrites: steadyWrites, leftTrue: 0, loadAverage: [1, 1] },
      }),
    ],
  });
  const row = (r: SizeRun, figure: string) => shardRows(r).find((x) => x.figure.startsWith(figure));

  it("judges the largest replica's CPU per probe against the single replica's", () => {
    expect(worstPerProbe(three)?.name).toBe('rg-0');
    expect(pooledPerProbe(three)).toBe(0.52);
    // rg-0: 20,000 ms / 36,000 probes = 0.556 ms against 0.5 ms.
    expect(row(run(), 'CPU per probe per replica')).toMatchObject({ value: 111.1, met: false });
    const even = set([member('a', 5_000, 10_000), member('b', 5_200, 10_000)]);
    const r: SizeRun = { ...run(), sets: [solo, even] };
    expect(row(r, 'CPU per probe per replica')).toMatchObject({ value: 104, met: true });
  });

  it('reports the Lease writes past the renew deadline, with where their time went, when the audit log had them', () => {
    expect(row(run(), 'Lease writes answered past')).toBeUndefined();
    const f = (pastDeadline: number) => ({
      writes: 100,
      failed: (pastDeadline ? { 504: 1 } : {}) as Record<string, number>,
      toServer: { p50: 0.01, p99: 0.2, max: 0.5 },
      inServer: { p50: 0.005, p99: 3, max: 11 },
      pastDeadline,
    });
    const r = run();
    r.sets[1] = { ...r.sets[1]!, leaseWrites: { startup: f(1), after: f(0) } };
    expect(row(r, 'Lease writes answered past the renew deadline, start-up')).toMatchObject({
      value: 1,
      note: expect.stringContaining('(not 2xx: 1 × 504); sent → received p50 0.01 s, p99 0.2 s, max 0.5 s'),
    });
    expect(row(r, 'Lease writes answered past the renew deadline, after')?.note).toContain('all 2xx');
  });

  it('counts a pod write or a gate leaving True after the kill as a flip, and takeover against its bound', () => {
    expect(row(run(), 'Flips after the kill')?.met).toBe(true);
    expect(row(run({ podWritesSinceKill: 1 }), 'Flips after the kill')?.met).toBe(false);
    expect(row(run({ leftTrue: 1 }), 'Flips after the kill')?.met).toBe(false);
    expect(row(run({ gatesTrueAtEnd: 999 }), 'Flips after the kill')?.met).toBe(false);
    expect(row(run(), 'Every bucket held again')?.met).toBe(true);
    expect(row(run({ allHeldSeconds: 19.5 }), 'Every bucket held again')?.met).toBe(false);
    expect(row(run({ allHeldSeconds: null }), 'Every bucket held again')?.met).toBe(false);
  });

  it('reports the longest probe gap across the kill when pods were sampled, and says when one stayed open', () => {
    expect(row(run(), 'Longest gap')).toBeUndefined();
    const gaps = { pods: 1024, longestSeconds: 31.5, medianSeconds: 10.1, open: 0, waitedSeconds: 40 };
    expect(row(run({ gaps }), 'Longest gap')).toMatchObject({ value: 31.5 });
    expect(row(run({ gaps }), 'Longest gap')?.note).not.toContain('at least');
    expect(row(run({ gaps: { ...gaps, open: 2 } }), 'Longest gap')?.note).toContain('2 not probed again');
  });

  it('reports each scale step of the single replica: time to balance, flips, gaps', () => {
    const gaps = { pods: 1024, longestSeconds: 12, medianSeconds: 10, open: 0, waitedSeconds: 5 };
    const step = {
      from: 1,
      to: 3,
      balancedSeconds: 4.2,
      moved: 10,
      holdersAfter: { 'rg-solo': [0, 1, 2, 3, 4, 5], 'rg-a': [6, 7, 8, 9, 10], 'rg-b': [11, 12, 13, 14, 15] },
      roundSeconds: 10,
      podWrites: 0,
      leftTrue: 0,
      gaps,
      observedSeconds: 20,
      wall: { start: 0, end: 0 },
    };
    const down = { ...step, from: 3, to: 1, podWrites: 1, gaps: undefined };
    const r = run();
    r.sets[0] = { ...r.sets[0]!, scale: [step, down] };
    expect(row(r, 'Buckets held as planned after scale 1 → 3')).toMatchObject({ value: 4.2 });
    expect(row(r, 'Buckets held as planned after scale 1 → 3')?.note).toContain('rg-a 5');
    expect(row(r, 'Flips on scale 1 → 3')?.met).toBe(true);
    expect(row(r, 'Flips on scale 3 → 1')?.met).toBe(false);
    expect(row(r, 'Longest gap a pod went unprobed across scale 1 → 3')).toMatchObject({ value: 12 });
    expect(row(r, 'Longest gap a pod went unprobed across scale 3 → 1')).toBeUndefined();
    expect(row(run(), 'Flips on scale')).toBeUndefined();
  });

  it('reports a run of the replicas alone (--no-solo) without a single replica to compare with', () => {
    const r = run();
    const only: SizeRun = { ...r, sets: [r.sets[1]!] };
    expect(row(only, 'CPU per probe, 1 replica')?.value).toBeNull();
    expect(row(only, 'CPU per probe per replica')?.value).toBeNull();
    expect(row(only, 'Peak RSS per replica, 3 replicas')).toMatchObject({ value: 250 });
    expect(row(only, 'Flips after the kill')?.met).toBe(true);
  });

  it('wants no pod write in steady state, and judges RSS only at 150,000 pods across 3 replicas', () => {
    expect(row(run(), 'Pod writes in steady state, 3 replicas')?.met).toBe(true);
    expect(row(run({}, 2), 'Pod writes in steady state, 3 replicas')?.met).toBe(false);
    expect(row(run(), 'Peak RSS per replica, 3 replicas')).toMatchObject({ value: 250 });
    expect(row(run(), 'Peak RSS per replica, 3 replicas')?.met).toBeUndefined();
    const big: SizeRun = { ...run(), pods: 150_000 };
    expect(row(big, 'Peak RSS per replica, 3 replicas')?.met).toBe(true);
  });
});

describe('probe gaps of the sampled pods', () => {
  it('takes the longest interval that ends after the moment, and the open one to now', () => {
    // Probed every 10 s, killed at 25, probed again at 48, then at 58.
    expect(longestGap([0, 10, 20, 48, 58], 25, 60)).toEqual({ longestMs: 28, open: false });
    // Intervals that ended before the moment do not count.
    expect(longestGap([0, 30, 35, 40], 32, 41)).toEqual({ longestMs: 5, open: false });
    // Not probed since: open, and growing to now.
    expect(longestGap([0, 10, 20], 25, 70)).toEqual({ longestMs: 50, open: true });
    // Never probed: from the moment to now.
    expect(longestGap([], 25, 70)).toEqual({ longestMs: 45, open: true });
  });

  it('gives every k-th pod an address of its own, spread over all of them', () => {
    const plans = Array.from({ length: 10 }, () => ({ ip: 'shared' }));
    expect(sampleForGaps(plans, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(plans.map((p) => p.ip)).toEqual([
      'a',
      'shared',
      'shared',
      'b',
      'shared',
      'shared',
      'c',
      'shared',
      'shared',
      'shared',
    ]);
    const few = Array.from({ length: 2 }, () => ({ ip: 'shared' }));
    expect(sampleForGaps(few, ['a', 'b', 'c'])).toEqual(['a', 'b']);
    expect(few.map((p) => p.ip)).toEqual(['a', 'b']);
    expect(sampleForGaps(plans, [])).toEqual([]);
  });
});
