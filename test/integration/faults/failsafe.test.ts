// Fault: every probe fails from the first second after a start, and again right after a
// failover. Found before (issue 10): with fixed windows that started when the policy state was
// created, 40 of 42 gates went False after a restart. Now at most maxUnavailable per policy may
// flip, counting the flips the previous process made. Counted from pods and the audit log.
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches } from '../../support/audit.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../../support/kube.ts';
import { APP_ANNOTATION, KubeletFixture } from '../../support/kubelet-fixture.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  probesMade,
  startOperator,
} from '../../support/operator.ts';
import { eventually } from '../../support/wait.ts';

const GATE = 'readygate.dev/outage';
const POLICIES = ['alpha', 'beta', 'gamma'];
const PODS = 6; // per policy; maxUnavailable 50% → 3
const MAX = 3;
const LEASE = 'readygate';
const cp = () => inject('controlPlane');
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;
let config: string;
const running: OperatorProcess[] = [];

const podName = (p: string, i: number) => `${p}-${i}`;
const allPods = () => POLICIES.flatMap((p) => Array.from({ length: PODS }, (_, i) => podName(p, i)));

const falseByPolicy = async () => {
  const pods = (await core.listNamespacedPod({ namespace: ns })).items;
  const out: Record<string, number> = {};
  for (const p of POLICIES) {
    out[p] = pods.filter(
      (pod) =>
        pod.metadata?.labels?.app === p && pod.status?.conditions?.some((c) => c.type === GATE && c.status === 'False'),
    ).length;
  }
  return out;
};

const degradedReason = async (name: string) => {
  const p = (await probePolicies(kc).get(ns, name)) as { status?: { conditions?: { type: string; reason: string }[] } };
  return p.status?.conditions?.find((c) => c.type === 'Degraded')?.reason;
};

/** Waits until every policy says Failsafe, then until the operator made `rounds` more probes of every pod. */
async function waitForHold(op: OperatorProcess, rounds = 3) {
  for (const p of POLICIES) await eventually(async () => expect(await degradedReason(p)).toBe('Failsafe'), 60_000);
  const made = await probesMade(op.healthUrl);
  const target = made + rounds * POLICIES.length * PODS;
  await eventually(async () => expect(await probesMade(op.healthUrl)).toBeGreaterThanOrEqual(target), 60_000);
}

async function allHealthyAndGated() {
  for (const name of allPods()) fixture.setApp(ns, name, 'healthy');
  for (const name of allPods()) {
    await eventually(async () => {
      const pod = await core.readNamespacedPodStatus({ name, namespace: ns });
      expect(pod.status?.conditions?.find((c) => c.type === GATE)?.status).toBe('True');
    }, 60_000);
  }
}

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'outage');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.63.0.1' });
  await fixture.start();
  config = await operatorKubeconfig(kc, cp());
  await kc
    .makeApiClient(CoordinationV1Api)
    .deleteNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE })
    .catch(() => {});
  for (const p of POLICIES) {
    await probePolicies(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: p },
      spec: {
        conditionType: GATE,
        selector: { matchLabels: { app: p } },
        // Window = failureThreshold × period = 15 s: longer than a failover (lease 6 s).
        probe: { httpGet: { port: 'http' }, periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 3 },
        failsafe: { maxUnavailable: '50%' },
      },
    });
    for (let i = 0; i < PODS; i++) {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: podName(p, i), labels: { app: p }, annotations: { [APP_ANNOTATION]: 'healthy' } },
          spec: {
            readinessGates: [{ conditionType: GATE }],
            containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
          },
        },
      });
    }
  }
});

afterAll(async () => {
  for (const op of running) await op.kill();
  await fixture?.stop();
  await deleteNamespace(kc, ns);
});

describe('fault: every probe fails from the first second', () => {
  it('after a restart, flips at most maxUnavailable per policy', async () => {
    const first = await startOperator(config, cp().dir, ['--namespaces', ns]);
    running.push(first);
    await allHealthyAndGated();
    await first.stop();

    // Every probe times out (the app accepts and never answers), as in the reproduction: a timeout
    // lands a second after its run, so the flips straddle one window after the start.
    for (const name of allPods()) fixture.setApp(ns, name, 'silent');
    const before = auditPosition(cp().dir);
    const second = await startOperator(config, cp().dir, ['--namespaces', ns]);
    running.push(second);
    await waitForHold(second);
    const flipped = await falseByPolicy();
    const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before).length;
    console.log(
      `all timing out from start: False per policy ${JSON.stringify(flipped)} (max ${MAX}), ${writes} pod writes`,
    );
    for (const p of POLICIES) expect(flipped[p]).toBeLessThanOrEqual(MAX);
    expect(writes).toBeLessThanOrEqual(MAX * POLICIES.length);
    await second.stop();
  });

  it('right after a failover, the new leader counts the flips the old one made', async () => {
    const args = (name: string) => ({
      args: [
        ...['--namespaces', ns, '--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE],
        ...['--leader-election-id', LEASE, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'],
      ],
      env: { POD_NAME: name },
    });
    const a = await startOperator(config, cp().dir, args('a').args, args('a').env);
    running.push(a);
    await allHealthyAndGated();
    const b = await startOperator(config, cp().dir, args('b').args, args('b').env);
    running.push(b);
    await eventually(async () => expect((await fetch(`${b.healthUrl}/readyz`)).status).toBe(200));

    const before = auditPosition(cp().dir);
    for (const name of allPods()) fixture.setApp(ns, name, 'failing');
    // The old leader flips some pods in every policy, then dies.
    await eventually(async () => {
      const flipped = await falseByPolicy();
      for (const p of POLICIES) expect(flipped[p]).toBeGreaterThan(0);
    }, 60_000);
    await a.kill();
    const byA = await falseByPolicy();
    await waitForHold(b);
    const flipped = await falseByPolicy();
    const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before).length;
    console.log(
      `all failing, leader killed: False per policy ${JSON.stringify(byA)} by the old leader, ` +
        `${JSON.stringify(flipped)} after the new one took over (max ${MAX}), ${writes} pod writes`,
    );
    for (const p of POLICIES) expect(flipped[p]).toBeLessThanOrEqual(MAX);
  });
});
