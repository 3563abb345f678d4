import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { conditionChanges, releaseChanges, unprovidedGates, unprovidedWarning } from '../../../src/controllers/pod.ts';
import {
  blockingProblem,
  desiredStatus,
  FAILING_PODS_CAP,
  policyDeletedMessage,
  SECRET_CA_TTL_MS,
  statusDiffers,
} from '../../../src/controllers/policy.ts';
import { conditionPatch } from '../../../src/kube/pod-status.ts';

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
  it('reports overload as Degraded/Overloaded with the effective period, and clears both after it', () => {
    const overload = { reason: 'Overloaded', message: 'every 24s instead of 10s', effectivePeriodSeconds: 24 };
    const p = policy();
    const s = desiredStatus({ policy: p, matched: [pod('a', 'True')], conflictedWith: [], overload, now: T0 });
    expect(s.effectivePeriodSeconds).toBe(24);
    expect(s.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'Overloaded' });
    const after = desiredStatus({
      policy: { ...p, status: s },
      matched: [pod('a', 'True')],
      conflictedWith: [],
      now: T0,
    });
    expect(after.effectivePeriodSeconds).toBeUndefined();
    expect(statusDiffers(s, after)).toBe(true);
    expect(after.conditions?.find((c) => c.type === 'Degraded')?.reason).toBe('AsExpected');
  });
  it('prefers Failsafe over Overloaded over Conflict over NoPodsMatched', () => {
    const reason = (input: Partial<Parameters<typeof desiredStatus>[0]>) =>
      desiredStatus({ policy: policy(), matched: [], conflictedWith: [], now: T0, ...input }).conditions?.find(
        (c) => c.type === 'Degraded',
      )?.reason;
    expect(reason({})).toBe('NoPodsMatched');
    expect(reason({ matched: [pod('a', 'True')], conflictedWith: ['older'] })).toBe('Conflict');
    expect(reason({ conflictedWith: ['older'], failsafe: { reason: 'Failsafe', message: 'held' } })).toBe('Failsafe');
    const overload = { reason: 'Overloaded', message: 'm', effectivePeriodSeconds: 20 };
    expect(reason({ conflictedWith: ['older'], overload })).toBe('Overloaded');
    expect(reason({ overload, failsafe: { reason: 'Failsafe', message: 'held' } })).toBe('Failsafe');
  });
  it('reports ungatedPods while spec.injection is Enabled (0 included), and none while Disabled', () => {
    const matched = [pod('a', 'True')];
    const counted = desiredStatus({ policy: policy(), matched, ungated: 4, conflictedWith: [], now: T0 });
    expect(counted.ungatedPods).toBe(4);
    expect(desiredStatus({ policy: policy(), matched, conflictedWith: [], now: T0 }).ungatedPods).toBe(0);
    const enabled = policy({ injection: 'Enabled' });
    expect(desiredStatus({ policy: enabled, matched, ungated: 0, conflictedWith: [], now: T0 }).ungatedPods).toBe(0);
    const off = desiredStatus({
      policy: policy({ injection: 'Disabled' }),
      matched,
      ungated: 4,
      conflictedWith: [],
      now: T0,
    });
    expect(off).not.toHaveProperty('ungatedPods');
    // The count is part of what a write changes, and so is its disappearing.
    expect(statusDiffers(counted, { ...counted, ungatedPods: 3 })).toBe(true);
    expect(statusDiffers(counted, off)).toBe(true);
    expect(statusDiffers(counted, { ...counted })).toBe(false);
    // Ungated pods alone do not make the policy Degraded: the Events and the count say it.
    expect(counted.conditions?.find((c) => c.type === 'Degraded')?.reason).toBe('AsExpected');
  });
  it('says in NoPodsMatched how many selected pods lack the gate', () => {
    const degraded = (ungated?: number) =>
      desiredStatus({ policy: policy(), matched: [], ungated, conflictedWith: [], now: T0 }).conditions?.find(
        (c) => c.type === 'Degraded',
      )?.message;
    expect(degraded()).toBe(`no pod matches the selector and lists ${GATE} in spec.readinessGates`);
    expect(degraded(0)).toBe(`no pod matches the selector and lists ${GATE} in spec.readinessGates`);
    expect(degraded(7)).toBe(
      `no pod matches the selector and lists ${GATE} in spec.readinessGates; 7 selected pods do not list it (status.ungatedPods)`,
    );
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
  it("takes the installation's prefixes: a gate under another prefix is readygate's only when allowed", () => {
    const p = pod('a', undefined, [GATE, 'example.com/x']);
    expect(unprovidedGates(p, caches([]), ['readygate.dev/', 'example.com/'])).toEqual([GATE, 'example.com/x']);
    expect(unprovidedGates(p, caches([]), ['example.com/'])).toEqual(['example.com/x']);
  });
  it('does not count a policy of the gate that no longer selects the pod (a selector change)', () => {
    const moved = policy({ selector: { matchLabels: { app: 'db', tier: 'new' } } });
    expect(unprovidedGates(pod('a', 'False'), caches([moved]))).toEqual([GATE]);
  });
});

describe('unprovidedWarning', () => {
  it('warns of a gate without a condition that the pod will never be Ready', () => {
    expect(unprovidedWarning('shop', GATE, undefined, 60_000)).toBe(
      'readiness gate readygate.dev/db is not provided by any ProbePolicy in namespace shop that selects this pod, so the pod will never be Ready',
    );
  });
  it('says when a condition that is not True will be released, or that it is kept', () => {
    expect(unprovidedWarning('shop', GATE, 'False', 60_000)).toContain(
      'its condition is set True (reason GateReleased) 1m after the operator first saw it unprovided',
    );
    expect(unprovidedWarning('shop', GATE, 'False', 0)).toContain(
      'its condition is kept as it is (release of orphaned gates is off), so the pod stays NotReady',
    );
  });
  it('says nothing of a gate that is True: it holds nothing back', () => {
    expect(unprovidedWarning('shop', GATE, 'True', 60_000)).toBeUndefined();
  });
});

describe('releaseChanges', () => {
  it('sets the gate True with reason GateReleased, moving lastTransitionTime with the status', () => {
    const p = pod('a', 'False');
    const changes = releaseChanges(p, [GATE], 2_000);
    expect(changes.map((c) => c.desired)).toEqual([
      {
        type: GATE,
        status: 'True',
        reason: 'GateReleased',
        message:
          'no ProbePolicy in namespace shop provides readygate.dev/db to this pod any more (deleted, or its selector no longer matches); released after 2s so the pod is not held NotReady',
      },
    ]);
    expect(conditionPatch('uid-a', changes, T0)).toMatchObject({
      metadata: { uid: 'uid-a' },
      status: {
        conditions: [
          { type: GATE, status: 'True', reason: 'GateReleased', lastTransitionTime: '2026-11-27T06:00:00Z' },
        ],
      },
    });
  });
});

describe('policyDeletedMessage', () => {
  it('says the gates will be released after the grace unless provided again, or that they are kept', () => {
    expect(policyDeletedMessage(GATE, 60_000)).toBe(
      'ProbePolicy deleted: its probes stopped. On each pod no other ProbePolicy provides readygate.dev/db to, a condition that is not True is set True (reason GateReleased) after 1m, unless a ProbePolicy provides the gate again by then; True conditions are left as they are',
    );
    expect(policyDeletedMessage(GATE, 0)).toBe(
      'ProbePolicy deleted: the readygate.dev/db conditions it wrote on pods are kept as they are (release of orphaned gates is off); remove the readiness gate from the pods or create a new policy',
    );
  });
});

describe('blockingProblem', () => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  /** What the fake API server answers for a ConfigMap read: the object, or an error to throw. */
  type ConfigMapAnswer = { data?: Record<string, string>; binaryData?: Record<string, string> } | Error;
  const deps = (
    over: Partial<{ enableExec: boolean; allowSecretCa: boolean }> = {},
    configMap: ConfigMapAnswer = { data: { 'ca.crt': PEM } },
  ) => {
    const reads: string[] = [];
    let now = T0;
    const core = {
      readNamespacedSecret: async ({ name, namespace }: { name: string; namespace: string }) => {
        reads.push(`Secret ${namespace}/${name}`);
        return { data: { 'ca.crt': Buffer.from('-----BEGIN CERTIFICATE-----').toString('base64') } };
      },
      readNamespacedConfigMap: async ({ name, namespace }: { name: string; namespace: string }) => {
        reads.push(`ConfigMap ${namespace}/${name}`);
        if (configMap instanceof Error) throw configMap;
        return configMap;
      },
    };
    return {
      d: { enableExec: false, allowSecretCa: false, core: core as never, now: () => now, ...over },
      reads: () => reads.length,
      readLog: () => reads,
      advance: (ms: number) => {
        now += ms;
      },
    };
  };
  const withProbe = (probe: ProbePolicy['spec']['probe']) => policy({ probe });
  const https = (tls: NonNullable<NonNullable<ProbePolicy['spec']['probe']['httpGet']>['tls']>) =>
    withProbe({ httpGet: { port: 443, scheme: 'HTTPS', tls: { verify: true, ...tls } } });

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
    const p = https({ caSecretRef: { name: 'ca', key: 'ca.crt' } });
    const off = await blockingProblem(p, deps().d);
    expect(off).toMatchObject({ reason: 'SecretCANotAllowed' });
    expect((off as { message: string }).message).toContain('use tls.caConfigMapRef or tls.caBundle instead');
    const { d, reads, advance } = deps({ allowSecretCa: true });
    const cache = new Map();
    expect(await blockingProblem(p, d, cache)).toEqual({ caPem: '-----BEGIN CERTIFICATE-----' });
    await blockingProblem(p, d, cache);
    expect(reads()).toBe(1);
    advance(SECRET_CA_TTL_MS + 1);
    await blockingProblem(p, d, cache);
    expect(reads()).toBe(2);
  });
  it('returns an inline caBundle without any read', async () => {
    const { d, reads } = deps();
    expect(await blockingProblem(https({ caBundle: PEM }), d)).toEqual({ caPem: PEM });
    expect(reads()).toBe(0);
  });

  describe('caConfigMapRef', () => {
    const p = https({ caConfigMapRef: { name: 'ca', key: 'ca.crt' } });

    it('reads the CA from the ConfigMap in the policy namespace, without the Secret opt-in', async () => {
      const { d, readLog } = deps();
      expect(await blockingProblem(p, d)).toEqual({ caPem: PEM });
      expect(readLog()).toEqual(['ConfigMap shop/ca']);
    });
    it('takes binaryData when data lacks the key', async () => {
      const { d } = deps({}, { binaryData: { 'ca.crt': b64(PEM) } });
      expect(await blockingProblem(p, d)).toEqual({ caPem: PEM });
    });
    it('reads at most once per TTL, cached apart from a Secret of the same name', async () => {
      const { d, readLog, advance } = deps({ allowSecretCa: true });
      const cache = new Map();
      const secret = https({ caSecretRef: { name: 'ca', key: 'ca.crt' } });
      await blockingProblem(p, d, cache);
      expect(await blockingProblem(secret, d, cache)).toEqual({ caPem: '-----BEGIN CERTIFICATE-----' });
      expect(await blockingProblem(p, d, cache)).toEqual({ caPem: PEM });
      expect(readLog()).toEqual(['ConfigMap shop/ca', 'Secret shop/ca']);
      advance(SECRET_CA_TTL_MS - 1);
      await blockingProblem(p, d, cache);
      expect(readLog()).toHaveLength(2);
      advance(2);
      await blockingProblem(p, d, cache);
      expect(readLog()).toEqual(['ConfigMap shop/ca', 'Secret shop/ca', 'ConfigMap shop/ca']);
    });
    it('caches a failed read for the TTL too', async () => {
      const { d, reads, advance } = deps({}, { data: {} });
      const cache = new Map();
      await blockingProblem(p, d, cache);
      await blockingProblem(p, d, cache);
      expect(reads()).toBe(1);
      advance(SECRET_CA_TTL_MS + 1);
      await blockingProblem(p, d, cache);
      expect(reads()).toBe(2);
    });
    it('names the missing key', async () => {
      expect(await blockingProblem(p, deps({}, { data: { other: PEM } }).d)).toEqual({
        reason: 'CAConfigMapInvalid',
        message: 'ConfigMap ca has no key ca.crt',
      });
    });
    it('refuses a value that holds no PEM certificate', async () => {
      expect(await blockingProblem(p, deps({}, { data: { 'ca.crt': 'hello' } }).d)).toEqual({
        reason: 'CAConfigMapInvalid',
        message: 'key ca.crt of ConfigMap ca holds no PEM certificate',
      });
    });
    it('on 403 names the helm value that grants the read', async () => {
      const forbidden = new ApiException(
        403,
        'Forbidden',
        JSON.stringify({ message: 'configmaps "ca" is forbidden: User "op" cannot get resource "configmaps"' }),
        {},
      );
      expect(await blockingProblem(p, deps({}, forbidden).d)).toEqual({
        reason: 'CAConfigMapInvalid',
        message:
          'cannot read ConfigMap ca: HTTP 403: configmaps "ca" is forbidden: User "op" cannot get resource "configmaps" (the operator may read ConfigMaps only with helm value tls.allowConfigMapCA=true)',
      });
    });
    it('reports a missing ConfigMap without the RBAC hint', async () => {
      const missing = new ApiException(404, 'Not Found', JSON.stringify({ message: 'configmaps "ca" not found' }), {});
      expect(await blockingProblem(p, deps({}, missing).d)).toEqual({
        reason: 'CAConfigMapInvalid',
        message: 'cannot read ConfigMap ca: HTTP 404: configmaps "ca" not found',
      });
    });
  });
});
