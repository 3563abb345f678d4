// The projected pod (what the operator caches) answers every question the reconcilers and the
// probe engine ask exactly as the full pod does, and is much smaller.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { INJECTED_GATES_ANNOTATION, injectedGates } from '../../../src/api/types.ts';
import { conditionChanges, unprovidedGates } from '../../../src/controllers/pod.ts';
import { desiredStatus } from '../../../src/controllers/policy.ts';
import { projectPod } from '../../../src/controllers/projection.ts';
import { computeTargets, podChange } from '../../../src/controllers/targets.ts';
import { groupUngated, owningWorkload } from '../../../src/controllers/ungated.ts';
import { resolvePort } from '../../../src/probes/ports.ts';

const GATE = 'readygate.dev/db';

/** A pod as the API server returns it, with what a kubelet and a Deployment add. */
function fullPod(name: string, gateStatus: 'True' | 'False' | undefined, extra: { deleting?: boolean } = {}): V1Pod {
  const t = '2026-11-27T08:00:00Z';
  return JSON.parse(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: 'shop',
        uid: `uid-${name}`,
        resourceVersion: '42',
        generateName: 'payments-7d9f-',
        creationTimestamp: t,
        ...(extra.deleting ? { deletionTimestamp: t, deletionGracePeriodSeconds: 30 } : {}),
        labels: { app: 'payments', 'pod-template-hash': '7d9f' },
        annotations: { 'kubectl.kubernetes.io/restartedAt': t, big: 'x'.repeat(2000) },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'payments-7d9f', uid: 'rs', controller: true },
        ],
        managedFields: [{ manager: 'kubelet', operation: 'Update', fieldsV1: { 'f:status': { 'f:conditions': {} } } }],
      },
      spec: {
        volumes: [{ name: 'token', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
        containers: [
          {
            name: 'app',
            image: 'registry.example/payments:1.2.3',
            ports: [
              { name: 'http', containerPort: 8080, protocol: 'TCP' },
              { name: 'grpc', containerPort: 9090, protocol: 'TCP' },
            ],
            env: Array.from({ length: 20 }, (_, i) => ({ name: `VAR_${i}`, value: `value-${i}` })),
            resources: { requests: { cpu: '100m', memory: '128Mi' } },
            volumeMounts: [{ name: 'token', mountPath: '/var/run/secrets' }],
          },
          { name: 'sidecar', image: 'proxy:1', ports: [{ name: 'admin', containerPort: 15000 }] },
        ],
        readinessGates: [{ conditionType: GATE }],
        nodeName: 'node-1',
        tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' }],
      },
      status: {
        phase: 'Running',
        podIP: '127.0.0.7',
        podIPs: [{ ip: '127.0.0.7' }],
        hostIP: '127.0.0.1',
        startTime: t,
        qosClass: 'Burstable',
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: t },
          { type: 'Ready', status: gateStatus === 'True' ? 'True' : 'False', lastTransitionTime: t },
          ...(gateStatus
            ? [{ type: GATE, status: gateStatus, reason: 'ProbeSucceeded', message: 'ok', lastTransitionTime: t }]
            : []),
        ],
        containerStatuses: [
          {
            name: 'app',
            ready: true,
            restartCount: 0,
            image: 'payments:1.2.3',
            imageID: 'sha256:abc',
            state: { running: { startedAt: t } },
          },
        ],
      },
    }),
  ) as V1Pod;
}

const policy: ProbePolicy = {
  metadata: {
    name: 'db',
    namespace: 'shop',
    uid: 'p1',
    generation: 2,
    creationTimestamp: '2026-01-01T00:00:00Z' as never,
  },
  spec: { conditionType: GATE, selector: { matchLabels: { app: 'payments' } }, probe: { tcpSocket: { port: 'grpc' } } },
};

describe('projectPod', () => {
  const cases = [
    fullPod('a', 'True'),
    fullPod('b', 'False'),
    fullPod('c', undefined),
    fullPod('d', 'True', { deleting: true }),
  ];
  const projected = () => cases.map((p) => projectPod(structuredClone(p)));

  it('gives the same targets, status, condition changes and ports as the full pod', () => {
    const full = cases;
    const slim = projected();
    const names = (r: ReturnType<typeof computeTargets>) => ({
      matched: r.matched.map((p) => p.metadata?.name),
      targets: r.targets.map((p) => p.metadata?.name),
      conflicted: r.conflicted.map((p) => p.metadata?.name),
    });
    expect(names(computeTargets(policy, slim, [policy]))).toEqual(names(computeTargets(policy, full, [policy])));
    const status = (pods: V1Pod[]) =>
      desiredStatus({ policy, matched: computeTargets(policy, pods, [policy]).matched, conflictedWith: [], now: 0 });
    expect(status(slim)).toEqual(status(full));
    const desired = [{ type: GATE, status: 'True' as const, reason: 'ProbeSucceeded', message: 'ok' }];
    const caches = {
      policies: { get: () => policy, list: () => [policy] },
      pods: { get: () => undefined, list: () => [] },
    };
    for (let i = 0; i < full.length; i++) {
      expect(conditionChanges(slim[i]!, desired)).toEqual(conditionChanges(full[i]!, desired));
      expect(unprovidedGates(slim[i]!, caches)).toEqual(unprovidedGates(full[i]!, caches));
      expect(owningWorkload(slim[i]!)).toEqual(owningWorkload(full[i]!));
      expect(injectedGates(slim[i]!.metadata?.annotations)).toEqual(injectedGates(full[i]!.metadata?.annotations));
      for (const port of ['http', 'grpc', 'admin', 'nope', 8080]) {
        expect(resolvePort(port, slim[i]!.spec!.containers)).toEqual(resolvePort(port, full[i]!.spec!.containers));
      }
    }
    // Two versions of a pod differ for the policies in the same way, projected or not.
    expect(podChange(slim[0]!, slim[1]!)).toBe(podChange(full[0]!, full[1]!));
    expect(groupUngated(slim)).toEqual(groupUngated(full));
  });

  it('keeps the injected-gates annotation alone, one shared copy per distinct value', () => {
    const withInjected = (name: string) => {
      const pod = fullPod(name, 'True');
      pod.metadata!.annotations = { ...pod.metadata!.annotations, [INJECTED_GATES_ANNOTATION]: GATE };
      return projectPod(pod);
    };
    const a = withInjected('a');
    const b = withInjected('b');
    expect(a.metadata?.annotations).toEqual({ [INJECTED_GATES_ANNOTATION]: GATE });
    expect(a.metadata?.annotations).toBe(b.metadata?.annotations);
    expect(injectedGates(a.metadata?.annotations)).toEqual([GATE]);
    expect(projectPod(fullPod('c', 'True')).metadata?.annotations).toBeUndefined();
  });

  it('keeps the controller ownerReference alone, one shared copy per controller', () => {
    const { apiVersion, kind, name, uid } = fullPod('a', 'True').metadata!.ownerReferences![0]!;
    const controller = { apiVersion, kind, name, uid, controller: true };
    const a = projectPod(fullPod('a', 'True'));
    expect(a.metadata?.ownerReferences).toEqual([controller]);
    // Another pod of the same ReplicaSet, with another owner that does not control it.
    const other = { apiVersion: 'v1', kind: 'ConfigMap', name: 'keeper', uid: 'cm' };
    const full = fullPod('b', 'True');
    full.metadata!.ownerReferences = [other, ...full.metadata!.ownerReferences!];
    const b = projectPod(full);
    expect(b.metadata?.ownerReferences).toBe(a.metadata?.ownerReferences);
    expect(Object.isFrozen(b.metadata?.ownerReferences)).toBe(true);
    expect(Object.isFrozen(b.metadata?.ownerReferences?.[0])).toBe(true);
    // The same UID under another name (never, from one API server) is not mistaken for it.
    const renamed = fullPod('c', 'True');
    renamed.metadata!.ownerReferences![0]!.name = 'payments-other';
    expect(projectPod(renamed).metadata?.ownerReferences).toEqual([{ ...controller, name: 'payments-other' }]);
    const orphan = fullPod('d', 'True');
    orphan.metadata!.ownerReferences = [other];
    expect(projectPod(orphan).metadata).not.toHaveProperty('ownerReferences');
  });

  it('keeps the identity the writes and Events need', () => {
    const [a] = projected();
    expect(a?.metadata).toMatchObject({ name: 'a', namespace: 'shop', uid: 'uid-a', resourceVersion: '42' });
    expect(a?.status?.conditions?.map((c) => c.type)).toEqual([GATE]);
  });

  it('is a fraction of the full pod', () => {
    const [a] = projected();
    const full = JSON.stringify(cases[0]).length;
    const slim = JSON.stringify(a).length;
    expect(slim).toBeLessThan(full / 5);
  });
});
