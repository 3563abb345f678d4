import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { conditionChanges, unprovidedGates } from '../../../src/controllers/pod.ts';
import {
  blockingProblem,
  desiredStatus,
  FAILING_PODS_CAP,
  SECRET_CA_TTL_MS,
  statusDiffers,
} from '../../../src/controllers/policy.ts';

const T0 = Date.UTC(2026, 10, 27, 6, 0, 0);
const GATE = 'readygate.dev/db';
const policy = (over: Partial<ProbePolicy['spec']> = {}): ProbePolicy => ({
  metadata: {
    name: 'db',
    namespace: 'shop',
    uid: 'u1',
    generation: 3,
    creationTimestamp: '2026-01-01T00:00:00Z' as never,
  },
  spec: {
    conditionType: GATE,
    selector: { matchLabels: { app: 'db' } },
    probe: { tcpSocket: { port: 5432 } },
    ...over,
  },
});
const pod = (name: string, gate?: 'True' | 'False', gates = [GATE]): V1Pod => ({
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'db' } },
  spec: { containers: [], readinessGates: gates.map((conditionType) => ({ conditionType })) },
  status: { phase: 'Running', podIP: '127.0.0.9', conditions: gate ? [{ type: GATE, status: gate }] : [] },
});

describe('desiredStatus', () => {
  it('counts matched, ready and failing pods and reports Ready/Degraded', () => {
    const s = desiredStatus({
      policy: policy(),
      matched: [pod('a', 'True'), pod('b', 'False'), pod('c')],
      conflictedWith: [],
      now: T0,
    });
    expect(s).toMatchObject({ observedGeneration: 3, matchedPods: 3, readyPods: 1, failingPods: ['b', 'c'] });
    expect(s.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'Probing'],
      ['Degraded', 'False', 'AsExpected'],
    ]);
  });
  it('caps failingPods at the first names in sort order, whatever the input order', () => {
    const names = Array.from({ length: 50 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    // A fixed shuffle (i * 17 mod 50 is a permutation), with a few ready pods mixed in.
    const many = names.map((_, i) => {
      const name = names[(i * 17) % 50]!;
      return pod(name, name.endsWith('3') ? 'True' : 'False');
    });
    const s = desiredStatus({ policy: policy(), matched: many, conflictedWith: [], now: T0 });
    const failing = names.filter((n) => !n.endsWith('3'));
    expect(s.failingPods).toEqual(failing.slice(0, FAILING_PODS_CAP));
    expect(s).toMatchObject({ matchedPods: 50, readyPods: 5 });
  });
  it('prefers Failsafe over Conflict over NoPodsMatched', () => {
    const reason = (input: Partial<Parameters<typeof desiredStatus>[0]>) =>
      desiredStatus({ policy: policy(), matched: [], conflictedWith: [], now: T0, ...input }).conditions?.find(
        (c) => c.type === 'Degraded',
      )?.reason;
    expect(reason({})).toBe('NoPodsMatched');
    expect(reason({ matched: [pod('a', 'True')], conflictedWith: ['older'] })).toBe('Conflict');
    expect(reason({ conflictedWith: ['older'], failsafe: { reason: 'Failsafe', message: 'held' } })).toBe('Failsafe');
  });
  it('reports a blocking problem as Ready=False', () => {
    const s = desiredStatus({
      policy: policy(),
      matched: [],
      conflictedWith: [],
      problem: { reason: 'ExecDisabled', message: 'off' },
      now: T0,
    });
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ExecDisabled' });
  });
  it('is stable: recomputing from its own output changes nothing, so status writes cannot loop', () => {
    const p = policy();
    const first = desiredStatus({ policy: p, matched: [pod('a', 'True')], conflictedWith: [], now: T0 });
    const again = desiredStatus({
      policy: { ...p, status: first },
      matched: [pod('a', 'True')],
      conflictedWith: [],
      now: T0 + 60_000,
    });
    expect(statusDiffers(first, again)).toBe(false);
    expect(again.conditions).toEqual(first.conditions);
    expect(statusDiffers(first, { ...again, readyPods: 0 })).toBe(true);
    expect(statusDiffers(undefined, again)).toBe(true);
  });
});

describe('conditionChanges', () => {
  const desired = { type: GATE, status: 'True' as const, reason: 'ProbeSucceeded', message: 'TCP ok' };
  it('returns nothing when the pod already says it', () => {
    const p = pod('a');
    p.status!.conditions = [{ ...desired, lastTransitionTime: new Date(T0) }];
    expect(conditionChanges(p, [desired])).toEqual([]);
  });
  it('returns only the differing conditions', () => {
    const p = pod('a', 'False');
    const other = { type: 'readygate.dev/other', status: 'True' as const, reason: 'ProbeSucceeded', message: '' };
    p.status!.conditions!.push({ ...other });
    expect(conditionChanges(p, [desired, other]).map((c) => c.desired.type)).toEqual([GATE]);
  });
});

describe('unprovidedGates', () => {
  const caches = (policies: ProbePolicy[]) => ({
    policies: { get: () => undefined, list: () => policies },
    pods: { get: () => undefined, list: () => [] },
  });
  it('lists readygate.dev gates no selecting policy provides, and ignores other prefixes', () => {
    const p = pod('a', undefined, [GATE, 'readygate.dev/none', 'example.com/x']);
    expect(unprovidedGates(p, caches([policy()]))).toEqual(['readygate.dev/none']);
    expect(unprovidedGates(p, caches([policy({ selector: { matchLabels: { app: 'web' } } })]))).toEqual([
      GATE,
      'readygate.dev/none',
    ]);
  });
});

describe('blockingProblem', () => {
  const deps = (over: Partial<{ enableExec: boolean; allowSecretCa: boolean }> = {}) => {
    let reads = 0;
    let now = T0;
    const core = {
      readNamespacedSecret: async () => {
        reads++;
        return { data: { 'ca.crt': Buffer.from('-----BEGIN CERTIFICATE-----').toString('base64') } };
      },
    };
    return {
      d: { enableExec: false, allowSecretCa: false, core: core as never, now: () => now, ...over },
      reads: () => reads,
      advance: (ms: number) => {
        now += ms;
      },
    };
  };
  const withProbe = (probe: ProbePolicy['spec']['probe']) => policy({ probe });

  it('refuses exec probes unless the installation enables them', async () => {
    const p = withProbe({ exec: { command: ['true'] } });
    expect(await blockingProblem(p, deps().d)).toMatchObject({ reason: 'ExecDisabled' });
    expect(await blockingProblem(p, deps({ enableExec: true }).d)).toEqual({});
  });
  it('refuses a bodyRegex the linear-time engine cannot run', async () => {
    const p = withProbe({ httpGet: { port: 80, bodyRegex: '(a)\\1' } });
    expect(await blockingProblem(p, deps().d)).toMatchObject({ reason: 'InvalidSpec' });
  });
  it('reads a CA Secret only when allowed, and at most once per TTL', async () => {
    const p = withProbe({
      httpGet: { port: 443, scheme: 'HTTPS', tls: { verify: true, caSecretRef: { name: 'ca', key: 'ca.crt' } } },
    });
    expect(await blockingProblem(p, deps().d)).toMatchObject({ reason: 'SecretCANotAllowed' });
    const { d, reads, advance } = deps({ allowSecretCa: true });
    const cache = new Map();
    expect(await blockingProblem(p, d, cache)).toEqual({ caPem: '-----BEGIN CERTIFICATE-----' });
    await blockingProblem(p, d, cache);
    expect(reads()).toBe(1);
    advance(SECRET_CA_TTL_MS + 1);
    await blockingProblem(p, d, cache);
    expect(reads()).toBe(2);
  });
});
