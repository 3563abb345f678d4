// Pods on the real node (test/support/node.ts): scheduled by kube-scheduler, run by the kubelet
// through containerd and runc, on the CNI bridge; readiness gates honoured by the real kubelet;
// pods/exec through kube-apiserver to the kubelet with its client certificate.
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createExecProber } from '../../src/probes/exec.ts';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';
import { APP_PORTS, appPod, condition, readTcp, runningPod } from '../support/node-pods.ts';
import { eventually } from '../support/wait.ts';

const GATE = 'readygate.dev/node-test';
const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const node = inject('realNode');
let ns = '';

beforeAll(async () => {
  ns = await createNamespace(kc, 'node');
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

const inPodSubnet = (ip: string) => ip.startsWith(node.podSubnet.replace(/0\/24$/, ''));

describe('a real node', () => {
  it('runs a pod kube-scheduler placed on it, with an address from the bridge, reachable over HTTP and TCP, its log read through kube-apiserver', async () => {
    await core.createNamespacedPod({ namespace: ns, body: appPod('web', node.appImage) });
    const pod = await runningPod(core, ns, 'web');
    expect(pod.spec?.nodeName).toBe(node.nodeName);
    const ip = pod.status?.podIP ?? '';
    expect(inPodSubnet(ip)).toBe(true);
    const res = await fetch(`http://${ip}:${APP_PORTS.http}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect([res.status, (await res.text()).trim()]).toEqual([200, 'ok']);
    await expect(readTcp(ip, APP_PORTS.tcp)).resolves.toBe('ok\n');
    // pods/log: kube-apiserver to the kubelet (client certificate, webhook authorization), as exec below.
    const logs = await core.readNamespacedPodLog({ namespace: ns, name: 'web', container: 'app' });
    expect(logs).toContain(`serving HTTP :${APP_PORTS.http}, TCP :${APP_PORTS.tcp}, gRPC :${APP_PORTS.grpc}`);
  });

  it('keeps a pod with a readiness gate not Ready until the gate is True, then the kubelet sets Ready', async () => {
    await core.createNamespacedPod({ namespace: ns, body: appPod('gated', node.appImage, [GATE]) });
    const pod = await runningPod(core, ns, 'gated');
    // The containers are ready, yet the kubelet holds Ready back for the gate.
    expect(condition(pod, 'Ready')).toBe('False');
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('ReadinessGatesNotReady');
    await core.patchNamespacedPodStatus(
      { namespace: ns, name: 'gated', body: { status: { conditions: [{ type: GATE, status: 'True' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await eventually(async () => {
      const now = await core.readNamespacedPod({ namespace: ns, name: 'gated' });
      expect(condition(now, 'Ready')).toBe('True');
    }, 30_000);
  });

  it('runs exec probes through kube-apiserver and the real kubelet: exit 0 succeeds, a switched check fails with its code', async () => {
    await core.createNamespacedPod({ namespace: ns, body: appPod('exec', node.appImage) });
    const ip = (await runningPod(core, ns, 'exec')).status?.podIP ?? '';
    const prober = createExecProber(kc);
    const check = () =>
      prober.probe({ namespace: ns, pod: 'exec', container: 'app', command: ['/app', 'check'], timeoutMs: 10_000 });
    expect(await check()).toMatchObject({ outcome: 'success', couldNotLook: false });

    const fail = await fetch(`http://${ip}:${APP_PORTS.http}/fail?code=3`, { method: 'POST' });
    expect(fail.status).toBe(200);
    const failed = await check();
    expect(failed).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(failed.message).toMatch(/exit code 3$/);

    expect((await fetch(`http://${ip}:${APP_PORTS.http}/recover`, { method: 'POST' })).status).toBe(200);
    expect(await check()).toMatchObject({ outcome: 'success' });
  });
});
