// The readygate operator (run on the host, as in test/integration/, under the chart's RBAC with
// exec enabled) gating pods on the real node: HTTP, TCP, gRPC and exec probes against the test
// app, a container switched to failing turns its gate False and the real kubelet takes the pod
// out of Ready, and back.
import { CoreV1Api, type V1PodCondition } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_PORTS, appPod, runningPod, switchApp } from '../support/node-pods.ts';
import { type OperatorProcess, operatorKubeconfig, startOperator } from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const node = inject('realNode');
const cp = () => inject('controlPlane');
let ns = '';
let operator: OperatorProcess;

/** One probe handler per kind, all against the test app's ports or its check command. */
const PROBES: Record<string, Record<string, unknown>> = {
  http: { httpGet: { port: 'http', path: '/healthz' } },
  tcp: { tcpSocket: { port: 'tcp' } },
  grpc: { grpc: { port: APP_PORTS.grpc } },
  exec: { exec: { command: ['/app', 'check'] } },
};

const gateOf = (kind: string) => `readygate.dev/${kind}`;

const policy = (kind: string) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name: kind },
  spec: {
    conditionType: gateOf(kind),
    selector: { matchLabels: { app: kind } },
    injection: 'Disabled',
    probe: { ...PROBES[kind], periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
  },
});

const waitConditions = (pod: string, expected: Record<string, string>, timeoutMs = 60_000) =>
  eventually(async () => {
    const conditions = (await core.readNamespacedPodStatus({ namespace: ns, name: pod })).status?.conditions ?? [];
    const byType = new Map<string, V1PodCondition>(conditions.map((c) => [c.type, c]));
    for (const [type, status] of Object.entries(expected)) {
      expect(byType.get(type)?.status, `${pod} ${type}: ${JSON.stringify(byType.get(type))}`).toBe(status);
    }
    return byType;
  }, timeoutMs);

beforeAll(async () => {
  ns = await createNamespace(kc, 'node-op');
  const config = await operatorKubeconfig(kc, cp(), ['exec.enabled=true']);
  operator = await startOperator(config, cp().dir, ['--namespaces', ns, '--enable-exec']);
  await eventually(async () => expect((await fetch(`${operator.healthUrl}/readyz`)).status).toBe(200));
});

afterAll(async () => {
  await operator?.stop();
  await deleteNamespace(kc, ns);
});

describe('the operator gating pods on a real node', () => {
  it.each(Object.keys(PROBES))(
    '%s: the gate goes True and the kubelet sets Ready; a failing app turns the gate False and the pod not Ready; and back',
    async (kind) => {
      await probePolicies(kc).create(ns, policy(kind));
      await core.createNamespacedPod({ namespace: ns, body: appPod(kind, node.appImage, [gateOf(kind)]) });
      const ip = (await runningPod(core, ns, kind)).status?.podIP ?? '';
      const passed = await waitConditions(kind, { [gateOf(kind)]: 'True', Ready: 'True' });
      expect(passed.get(gateOf(kind))?.reason).toBe('ProbeSucceeded');

      await switchApp(ip, '/fail?code=4');
      const failed = await waitConditions(kind, { [gateOf(kind)]: 'False', Ready: 'False' });
      expect(failed.get(gateOf(kind))?.reason).toBe('ProbeFailed');
      expect(failed.get('ContainersReady')?.status).toBe('True');
      if (kind === 'exec') expect(failed.get(gateOf(kind))?.message).toMatch(/: exit code 4 /);

      await switchApp(ip, '/recover');
      await waitConditions(kind, { [gateOf(kind)]: 'True', Ready: 'True' });
    },
  );
});
