// Fault: the leader's connection to the API server freezes for 13 s (lease 6 s, renew 4 s, retry
// 1 s) while a standby takes over. Found before (issue 10): both replicas said leader, and 19 s
// after the standby took the lease the old leader's queued PATCH set a healthy pod's gate False.
// Counted from the audit log: the old leader's requests leave through a proxy from 127.0.0.77.
import { readFileSync, writeFileSync } from 'node:fs';
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches, requestsFrom } from '../../support/audit.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../../support/kube.ts';
import { APP_ANNOTATION, KubeletFixture } from '../../support/kubelet-fixture.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  startOperator,
} from '../../support/operator.ts';
import { TcpProxy } from '../../support/tcp-proxy.ts';
import { eventually } from '../../support/wait.ts';

const GATE = 'readygate.dev/partition';
const LEASE = 'readygate';
const PROXY_SOURCE = '127.0.0.77';
const RENEW_DEADLINE_MS = 4_000;
const cp = () => inject('controlPlane');
let kc: KubeConfig;
let core: CoreV1Api;
let coordination: CoordinationV1Api;
let ns: string;
let fixture: KubeletFixture;
let proxy: TcpProxy;
const running: OperatorProcess[] = [];

const electionArgs = () => [
  ...['--namespaces', ns, '--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE],
  ...['--leader-election-id', LEASE, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'],
];

const holder = async () =>
  (await coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE }).catch(() => undefined))?.spec
    ?.holderIdentity;

const gate = async (name: string) =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === GATE);

const at = (e: { requestReceivedTimestamp: string }) => new Date(e.requestReceivedTimestamp).getTime();

/** A ProbePolicy `name` on pods labelled app=name: HTTP every 2 s, two failures flip. */
const createPolicy = (namespace: string, name: string, extra: Record<string, unknown> = {}) =>
  probePolicies(kc).create(namespace, {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name },
    spec: {
      conditionType: GATE,
      selector: { matchLabels: { app: name } },
      probe: { httpGet: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
      ...extra,
    },
  });

/** A healthy fixture pod gated on GATE, labelled app=app. */
const createPod = (namespace: string, name: string, app: string) =>
  core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app }, annotations: { [APP_ANNOTATION]: 'healthy' } },
      spec: {
        readinessGates: [{ conditionType: GATE }],
        containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
      },
    },
  });

/** The operator's kubeconfig and a copy of it that reaches the API server through the proxy. */
async function kubeconfigs(suffix: string): Promise<{ direct: string; proxied: string }> {
  const direct = await operatorKubeconfig(kc, cp());
  const proxied = direct.replace(/\.kubeconfig$/, `-${suffix}.kubeconfig`);
  writeFileSync(proxied, readFileSync(direct, 'utf8').replace(cp().server, `https://127.0.0.1:${proxy.port}`));
  return { direct, proxied };
}

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  coordination = kc.makeApiClient(CoordinationV1Api);
  ns = await createNamespace(kc, 'partition');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.62.0.1' });
  await fixture.start();
  // Any lease left by an earlier file would make this one wait out its duration.
  await coordination.deleteNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE }).catch(() => {});
  const url = new URL(cp().server);
  proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port), localAddress: PROXY_SOURCE });
});

afterAll(async () => {
  for (const op of running) await op.kill();
  await proxy?.stop();
  await fixture?.stop();
  await deleteNamespace(kc, ns);
});

describe('fault: the leader is partitioned from the API server', () => {
  it('writes nothing after its renew deadline; the standby takes over with no wrong flip', async () => {
    await createPolicy(ns, 'partition', { failsafe: { maxUnavailable: '100%' } });
    for (let i = 0; i < 4; i++) await createPod(ns, `p-${i}`, 'partition');
    const { direct, proxied } = await kubeconfigs('proxied');

    const a = await startOperator(proxied, cp().dir, electionArgs(), { POD_NAME: 'operator-a' });
    running.push(a);
    await eventually(async () => expect(await holder()).toBe('operator-a'));
    for (let i = 0; i < 4; i++) await eventually(async () => expect((await gate(`p-${i}`))?.status).toBe('True'));
    const b = await startOperator(direct, cp().dir, electionArgs(), { POD_NAME: 'operator-b' });
    running.push(b);
    await eventually(async () => expect((await fetch(`${b.healthUrl}/readyz`)).status).toBe(200));

    const before = auditPosition(cp().dir);
    const frozenAt = Date.now();
    proxy.freeze();
    // The leader now wants to write: p-0 fails, and its PATCH has nowhere to go but the frozen link.
    fixture.setApp(ns, 'p-0', 'failing');
    await eventually(async () => expect(await holder()).toBe('operator-b'), 30_000);
    const takeoverMs = Date.now() - frozenAt;
    // The standby is the leader now and acts: p-0 goes False, then True again once it recovers.
    await eventually(async () => expect((await gate('p-0'))?.status).toBe('False'));
    fixture.setApp(ns, 'p-0', 'healthy');
    await eventually(async () => expect((await gate('p-0'))?.status).toBe('True'));
    // The old leader stepped down on its own timer and exited (its Deployment would restart it).
    await eventually(() => expect(a.child.exitCode).not.toBeNull());
    // Not a synchronisation but the fault itself: the partition lasts 13 s, as in issue 10's reproduction.
    await eventually(() => expect(Date.now() - frozenAt).toBeGreaterThan(13_000), 30_000, 250);
    proxy.thaw();
    const thawedAt = Date.now();
    // Whatever the old leader had queued would arrive now: wait until the proxy holds nothing.
    await eventually(() => expect(proxy.connections()).toBe(0));

    const fromA = requestsFrom(cp().dir, OPERATOR_USER, PROXY_SOURCE, before);
    const renewsByA = requestsFrom(cp().dir, OPERATOR_USER, PROXY_SOURCE)
      .filter((e) => e.objectRef?.resource === 'leases' && e.responseStatus?.code === 200)
      .map(at);
    const deadline = Math.max(...renewsByA) + RENEW_DEADLINE_MS;
    const lateWrites = fromA.filter((e) => at(e) > deadline);
    const patchesByA = fromA.filter((e) => e.objectRef?.subresource === 'status');
    const byB = podStatusPatches(cp().dir, OPERATOR_USER, ns, before).filter(
      (e) => !(e.sourceIPs ?? []).includes(PROXY_SOURCE),
    );
    console.log(
      `leader partitioned 13 s (lease 6/4/1 s): takeover after ${takeoverMs} ms; ` +
        `old leader: ${fromA.length} requests landed after the freeze, ${lateWrites.length} after its renew deadline, ` +
        `${patchesByA.length} pod status writes; ${proxy.dropped} bytes it had queued were discarded; ` +
        `new leader: ${byB.length} pod status writes (p-0 False, then True); thawed ${thawedAt - frozenAt} ms after the freeze`,
    );
    expect(lateWrites).toEqual([]);
    expect(patchesByA).toEqual([]);
    expect(byB.map((e) => e.objectRef?.name)).toEqual(['p-0', 'p-0']);
    for (let i = 0; i < 4; i++) expect((await gate(`p-${i}`))?.status).toBe('True');
    expect(a.log()).toContain('stopped leading');
  });
});

describe('fault: the connections to the API server are cut', () => {
  it('resumes its watches; healthy gates are not written, a new pod is still gated', async () => {
    const ns2 = await createNamespace(kc, 'cut');
    const fixture2 = new KubeletFixture(kc, { namespaces: [ns2], firstIp: '127.62.1.1' });
    await fixture2.start();
    try {
      await createPolicy(ns2, 'cut');
      const gate2 = async (name: string) =>
        (await core.readNamespacedPodStatus({ name, namespace: ns2 })).status?.conditions?.find((c) => c.type === GATE);
      for (let i = 0; i < 3; i++) await createPod(ns2, `cut-${i}`, 'cut');
      const { proxied } = await kubeconfigs('cut');
      const op = await startOperator(proxied, cp().dir, ['--namespaces', ns2]);
      running.push(op);
      for (let i = 0; i < 3; i++) await eventually(async () => expect((await gate2(`cut-${i}`))?.status).toBe('True'));

      const before = auditPosition(cp().dir);
      for (let round = 0; round < 3; round++) {
        await eventually(() => expect(proxy.connections()).toBeGreaterThan(0)); // reconnected
        proxy.cut();
      }
      await createPod(ns2, 'cut-3', 'cut');
      await eventually(async () => expect((await gate2('cut-3'))?.status).toBe('True'), 60_000);
      const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns2, before).map((e) => e.objectRef?.name);
      console.log(`connections cut 3 times: pod writes ${JSON.stringify(writes)}`);
      expect(writes).toEqual(['cut-3']);
      for (let i = 0; i < 3; i++) expect((await gate2(`cut-${i}`))?.status).toBe('True');
      await op.stop();
    } finally {
      await fixture2.stop();
      await deleteNamespace(kc, ns2);
    }
  });
});
