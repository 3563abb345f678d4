import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { computeTargets, podChange } from '../../../src/controllers/targets.ts';
import { conditionPatch } from '../../../src/kube/pod-status.ts';

const policy = (
  name: string,
  created: string,
  conditionType = 'readygate.dev/db',
  app = 'payments',
  injection?: 'Enabled' | 'Disabled',
): ProbePolicy => ({
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, creationTimestamp: created as unknown as Date },
  spec: {
    conditionType,
    selector: { matchLabels: { app } },
    probe: { tcpSocket: { port: 5432 } },
    ...(injection ? { injection } : {}),
  },
});
const pod = (
  name: string,
  opts: { gates?: string[]; ip?: string; app?: string; deleting?: boolean; ns?: string; phase?: string } = {},
): V1Pod => ({
  metadata: {
    name,
    namespace: opts.ns ?? 'shop',
    uid: `uid-${name}`,
    labels: { app: opts.app ?? 'payments' },
    ...(opts.deleting ? { deletionTimestamp: new Date() } : {}),
  },
  spec: {
    containers: [],
    readinessGates: (opts.gates ?? ['readygate.dev/db']).map((conditionType) => ({ conditionType })),
  },
  status: { phase: opts.phase ?? 'Running', ...(opts.ip === '' ? {} : { podIP: opts.ip ?? '127.0.0.2' }) },
});
const names = (pods: V1Pod[]) => pods.map((p) => p.metadata?.name);

describe('computeTargets', () => {
  it('probes pods that match, carry the gate, have an IP and are not terminating', () => {
    const p = policy('a', '2026-01-01T00:00:00Z');
    const pods = [
      pod('ok'),
      pod('no-gate', { gates: [] }),
      pod('other-gate', { gates: ['readygate.dev/other'] }),
      pod('no-ip', { ip: '' }),
      pod('deleting', { deleting: true }),
      pod('other-app', { app: 'web' }),
      pod('other-ns', { ns: 'elsewhere' }),
    ];
    const t = computeTargets(p, pods, [p]);
    expect(names(t.targets)).toEqual(['ok']);
    expect(names(t.matched)).toEqual(['ok', 'no-ip']);
    expect(t.conflicted).toEqual([]);
  });

  it('counts as ungated the live pods the selector matches that lack the gate, in the same pass', () => {
    const pods = [
      pod('ok'),
      pod('no-gate', { gates: [] }),
      pod('other-gate', { gates: ['readygate.dev/other'] }),
      pod('no-gate-no-ip', { gates: [], ip: '' }),
      pod('no-gate-deleting', { gates: [], deleting: true }),
      pod('no-gate-done', { gates: [], phase: 'Succeeded' }),
      pod('no-gate-failed', { gates: [], phase: 'Failed' }),
      pod('no-gate-other-app', { gates: [], app: 'web' }),
      pod('no-gate-other-ns', { gates: [], ns: 'elsewhere' }),
    ];
    for (const injection of [undefined, 'Enabled'] as const) {
      const t = computeTargets(policy('a', '2026-01-01T00:00:00Z', undefined, undefined, injection), pods, []);
      expect(names(t.ungated)).toEqual(['no-gate', 'other-gate', 'no-gate-no-ip']);
      expect(names(t.matched)).toEqual(['ok']);
      expect(names(t.targets)).toEqual(['ok']);
    }
  });

  it('counts no ungated pod while spec.injection is Disabled, and matches the same pods', () => {
    const pods = [pod('ok'), pod('no-gate', { gates: [] })];
    const t = computeTargets(policy('a', '2026-01-01T00:00:00Z', undefined, undefined, 'Disabled'), pods, []);
    expect(t.ungated).toEqual([]);
    expect(names(t.matched)).toEqual(['ok']);
  });

  it('counts an ungated pod for every policy of its conditionType: no gate, no conflict', () => {
    const older = policy('older', '2026-01-01T00:00:00Z');
    const newer = policy('newer', '2026-02-01T00:00:00Z');
    const pods = [pod('p1', { gates: [] })];
    for (const p of [older, newer]) {
      const t = computeTargets(p, pods, [older, newer]);
      expect(names(t.ungated)).toEqual(['p1']);
      expect(t.conflicted).toEqual([]);
    }
  });

  it('gives a contested pod to the older policy only', () => {
    const older = policy('older', '2026-01-01T00:00:00Z');
    const newer = policy('newer', '2026-02-01T00:00:00Z');
    const elsewhere = policy('web', '2025-01-01T00:00:00Z', 'readygate.dev/db', 'web');
    const pods = [pod('p1'), pod('w1', { app: 'web' })];
    expect(names(computeTargets(older, pods, [older, newer, elsewhere]).targets)).toEqual(['p1']);
    const n = computeTargets(newer, pods, [older, newer, elsewhere]);
    expect(names(n.targets)).toEqual([]);
    expect(names(n.conflicted)).toEqual(['p1']);
  });

  it('breaks creation-time ties by name', () => {
    const a = policy('a', '2026-01-01T00:00:00Z');
    const b = policy('b', '2026-01-01T00:00:00Z');
    expect(names(computeTargets(b, [pod('p1')], [a, b]).conflicted)).toEqual(['p1']);
    expect(names(computeTargets(a, [pod('p1')], [a, b]).targets)).toEqual(['p1']);
  });
});

describe('podChange', () => {
  const withConditions = (p: V1Pod, conditions: Array<[string, string]>): V1Pod => ({
    ...p,
    status: { ...p.status, conditions: conditions.map(([type, status]) => ({ type, status })) },
  });
  const base = withConditions(pod('p'), [['Ready', 'False']]);

  it('says targets when membership or probing inputs change', () => {
    const changed: V1Pod[] = [
      { ...base, metadata: { ...base.metadata, uid: 'other' } },
      { ...base, metadata: { ...base.metadata, labels: { app: 'web' } } },
      { ...base, metadata: { ...base.metadata, labels: { app: 'payments', tier: 'x' } } },
      { ...base, metadata: { ...base.metadata, deletionTimestamp: new Date() } },
      { ...base, status: { ...base.status, podIP: '127.0.0.9' } },
      { ...base, status: { ...base.status, phase: 'Succeeded' } },
      { ...base, spec: { containers: [], readinessGates: [{ conditionType: 'readygate.dev/other' }] } },
      { ...base, spec: { containers: [] } },
    ];
    for (const next of changed) expect(podChange(base, next)).toBe('targets');
  });

  it('says status when only the controller changes (an adopted or orphaned pod: its workload in Events)', () => {
    const owned = (uid: string): V1Pod => ({
      ...base,
      metadata: {
        ...base.metadata,
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid, controller: true }],
      },
    });
    expect(podChange(base, owned('rs-1'))).toBe('status');
    expect(podChange(owned('rs-1'), owned('rs-2'))).toBe('status');
    expect(podChange(owned('rs-1'), base)).toBe('status');
    expect(podChange(owned('rs-1'), owned('rs-1'))).toBe('none');
  });

  it('says status when only condition types or statuses change', () => {
    expect(podChange(base, withConditions(base, [['Ready', 'True']]))).toBe('status');
    expect(
      podChange(
        base,
        withConditions(base, [
          ['Ready', 'False'],
          ['readygate.dev/db', 'True'],
        ]),
      ),
    ).toBe('status');
    expect(podChange(base, withConditions(base, []))).toBe('status');
  });

  it('says none for anything else', () => {
    const next = withConditions({ ...base, metadata: { ...base.metadata, resourceVersion: '9' } }, [
      ['Ready', 'False'],
    ]);
    next.status!.conditions![0]!.message = 'another message';
    expect(podChange(base, next)).toBe('none');
    expect(podChange(base, { ...base, metadata: { ...base.metadata, labels: { app: 'payments' } } })).toBe('none');
  });
});

describe('conditionPatch', () => {
  it('sets only the given condition types, with the pod UID as precondition', () => {
    const desired = { type: 'readygate.dev/db', status: 'False' as const, reason: 'ProbeFailed', message: 'm' };
    const body = conditionPatch('uid-1', [{ desired, observed: undefined }], Date.UTC(2026, 10, 27, 5, 0, 0, 123));
    expect(body).toEqual({
      metadata: { uid: 'uid-1' },
      status: { conditions: [{ ...desired, lastTransitionTime: '2026-11-27T05:00:00Z' }] },
    });
  });
  it('keeps lastTransitionTime when only the message changes', () => {
    const desired = { type: 'readygate.dev/db', status: 'False' as const, reason: 'ProbeFailed', message: 'new' };
    const observed = { ...desired, message: 'old', lastTransitionTime: '2026-01-01T00:00:00Z' };
    const body = conditionPatch('u', [{ desired, observed }], 0) as { status: { conditions: object[] } };
    expect(body.status.conditions[0]).toEqual(desired);
  });
});
