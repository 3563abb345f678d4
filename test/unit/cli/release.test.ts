import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { HELP } from '../../../src/cli/main.ts';
import { UsageError } from '../../../src/cli/options.ts';
import {
  describeRelease,
  gatesToRelease,
  liveOperatorLeases,
  parseReleaseOptions,
  planRelease,
  refusal,
  uninstalledCondition,
} from '../../../src/cli/release.ts';
import { heldSpec, type Lease, releasedLease } from '../../../src/kube/lease.ts';
import { SHARD_BUCKET_LABEL, SHARD_MEMBER_LABEL } from '../../../src/kube/shard-leases.ts';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const PREFIXES = ['readygate.dev/'];

const pod = (
  name: string,
  gates: Record<string, string | undefined>,
  extra: { namespace?: string; phase?: string; deleting?: boolean } = {},
): V1Pod => ({
  metadata: {
    name,
    namespace: extra.namespace ?? 'shop',
    uid: `uid-${name}`,
    ...(extra.deleting ? { deletionTimestamp: new Date(NOW) } : {}),
  },
  spec: { containers: [], readinessGates: Object.keys(gates).map((conditionType) => ({ conditionType })) },
  status: {
    phase: extra.phase ?? 'Running',
    conditions: Object.entries(gates)
      .filter(([, status]) => status !== undefined)
      .map(([type, status]) => ({ type, status: status as string })),
  },
});

describe('gatesToRelease', () => {
  it("takes readygate's gates that are not True, a missing condition included", () => {
    const p = pod('a', {
      'readygate.dev/false': 'False',
      'readygate.dev/unknown': 'Unknown',
      'readygate.dev/missing': undefined,
      'readygate.dev/true': 'True',
      'example.com/other': 'False',
    });
    expect(gatesToRelease(p, PREFIXES).map((g) => [g.type, g.observed?.status])).toEqual([
      ['readygate.dev/false', 'False'],
      ['readygate.dev/unknown', 'Unknown'],
      ['readygate.dev/missing', undefined],
    ]);
  });
  it('follows --allowed-condition-prefixes', () => {
    const p = pod('a', { 'readygate.dev/x': 'False', 'example.com/y': 'False' });
    expect(gatesToRelease(p, ['example.com/']).map((g) => g.type)).toEqual(['example.com/y']);
  });
  it('skips pods being deleted and finished ones', () => {
    const gates = { 'readygate.dev/x': 'False' };
    expect(gatesToRelease(pod('a', gates, { deleting: true }), PREFIXES)).toEqual([]);
    expect(gatesToRelease(pod('a', gates, { phase: 'Succeeded' }), PREFIXES)).toEqual([]);
    expect(gatesToRelease(pod('a', gates, { phase: 'Pending' }), PREFIXES)).toHaveLength(1);
  });
});

describe('planRelease', () => {
  it('lists only pods with something to release, in namespace/name order', () => {
    const plan = planRelease(
      [
        pod('b', { 'readygate.dev/x': 'False' }, { namespace: 'shop' }),
        pod('ok', { 'readygate.dev/x': 'True' }),
        pod('a', { 'readygate.dev/x': undefined }, { namespace: 'shop' }),
        pod('z', { 'readygate.dev/x': 'False' }, { namespace: 'billing' }),
        pod('none', {}),
      ],
      PREFIXES,
    );
    expect(plan.map((p) => `${p.namespace}/${p.name}`)).toEqual(['billing/z', 'shop/a', 'shop/b']);
    expect(plan[1]).toMatchObject({ uid: 'uid-a', gates: [{ type: 'readygate.dev/x', observed: undefined }] });
  });
});

describe('uninstalledCondition and describeRelease', () => {
  it('is True with reason Uninstalled', () => {
    expect(uninstalledCondition('readygate.dev/x')).toMatchObject({
      type: 'readygate.dev/x',
      status: 'True',
      reason: 'Uninstalled',
    });
  });
  it('names each gate and what it was, with control characters escaped', () => {
    const [p] = planRelease(
      [pod('a\u001b[2J', { 'readygate.dev/x': 'False', 'readygate.dev/y': undefined })],
      PREFIXES,
    );
    expect(describeRelease(p!, true)).toBe(
      'would release pod shop/a\\x1b[2J: readygate.dev/x (False), readygate.dev/y (no condition)',
    );
    expect(describeRelease(p!, false)).toMatch(/^released pod shop\/a/);
  });
});

describe('liveOperatorLeases', () => {
  const lease = (name: string, held: boolean, renewedAgoMs: number, labels?: Record<string, string>): Lease => {
    const l: Lease = {
      metadata: { name, namespace: 'readygate-system', ...(labels ? { labels } : {}) },
      spec: heldSpec('readygate-7d9c', 15_000, NOW - renewedAgoMs),
    };
    return held ? l : releasedLease(l, NOW - renewedAgoMs);
  };
  it('finds the leader Lease and shard Leases held and renewed within their duration', () => {
    const leases = [
      lease('readygate', true, 2_000),
      lease('readygate-s4-bucket-0', true, 1_000, { [SHARD_BUCKET_LABEL]: 'readygate-s4' }),
      lease('readygate-s4-member-a', true, 1_000, { [SHARD_MEMBER_LABEL]: 'readygate-s4' }),
      lease('someone-else', true, 1_000),
    ];
    expect(liveOperatorLeases(leases, NOW, 'readygate').map((l) => l.metadata.name)).toEqual([
      'readygate',
      'readygate-s4-bucket-0',
      'readygate-s4-member-a',
    ]);
  });
  it('ignores a Lease handed back (ReleaseOnCancel) or expired, and follows --leader-election-id', () => {
    expect(liveOperatorLeases([lease('readygate', false, 1_000)], NOW, 'readygate')).toEqual([]);
    expect(liveOperatorLeases([lease('readygate', true, 16_000)], NOW, 'readygate')).toEqual([]);
    expect(liveOperatorLeases([lease('readygate', true, 1_000)], NOW, 'gates')).toEqual([]);
    expect(liveOperatorLeases([lease('gates', true, 1_000)], NOW, 'gates')).toHaveLength(1);
  });
  it('says who holds what, and how to go on', () => {
    const text = refusal([lease('readygate', true, 2_000)], 'readygate-system', NOW);
    expect(text).toContain(
      'Lease readygate (held by readygate-7d9c, renewed 2s ago, for 15s) in namespace readygate-system',
    );
    expect(text).toContain('or pass --force');
  });
});

describe('parseReleaseOptions', () => {
  it('defaults to every namespace and the chart defaults', () => {
    expect(parseReleaseOptions([])).toEqual({
      kubeconfig: undefined,
      namespace: undefined,
      dryRun: false,
      force: false,
      operatorNamespace: 'readygate-system',
      leaderElectionId: 'readygate',
      prefixes: ['readygate.dev/'],
    });
    expect(
      parseReleaseOptions(['-n', 'shop', '--dry-run', '--force', '--allowed-condition-prefixes', 'a.io/,b.io/']),
    ).toMatchObject({ namespace: 'shop', dryRun: true, force: true, prefixes: ['a.io/', 'b.io/'] });
  });
  it.each([
    [['-n', 'Shop'], '--namespace must be a namespace name'],
    [['--operator-namespace', 'a/b'], '--operator-namespace must be a namespace name'],
    [['--allowed-condition-prefixes', 'nope'], 'is not a condition type prefix'],
    [['--allowed-condition-prefixes', ','], 'name at least one prefix'],
    [['pod/x'], 'Unexpected argument'],
  ])('refuses %j naming the problem', (args, words) => {
    expect(() => parseReleaseOptions(args)).toThrow(UsageError);
    expect(() => parseReleaseOptions(args)).toThrow(words);
  });
  it('is listed in the usage', () => {
    expect(HELP).toContain('  release   ');
  });
});
