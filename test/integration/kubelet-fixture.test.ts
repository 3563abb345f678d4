// The kubelet fixture itself, so that e2e failures can be told apart from fixture bugs.
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';
import { APP_ANNOTATION, KubeletFixture } from '../support/kubelet-fixture.ts';
import { eventually } from '../support/wait.ts';

let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;

const gatedPod = (name: string, app: string): V1Pod => ({
  metadata: { name, annotations: { [APP_ANNOTATION]: app } },
  spec: {
    readinessGates: [{ conditionType: 'readygate.dev/test' }],
    containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
  },
});

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'fixture');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.20.0.1' });
  await fixture.start();
});
afterAll(async () => {
  await fixture.stop();
  await deleteNamespace(kc, ns);
});

const readyOf = async (name: string) =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === 'Ready');

describe('kubelet fixture', () => {
  it('binds, runs and reports a pod, holding Ready False until its gate is True', async () => {
    await core.createNamespacedPod({ namespace: ns, body: gatedPod('p1', 'healthy') });
    const pod = await eventually(async () => {
      const p = await core.readNamespacedPod({ name: 'p1', namespace: ns });
      expect(p.status?.phase).toBe('Running');
      expect(p.status?.podIP).toMatch(/^127\./);
      return p;
    });
    expect(pod.spec?.nodeName).toBe('fixture-node');
    expect(await readyOf('p1')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady' });

    const res = await fetch(`http://${pod.status?.podIP}:8080/ready`);
    expect(res.status).toBe(200);

    await core.patchNamespacedPodStatus(
      {
        name: 'p1',
        namespace: ns,
        body: { status: { conditions: [{ type: 'readygate.dev/test', status: 'True' }] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await eventually(async () => expect(await readyOf('p1')).toMatchObject({ status: 'True' }));
  });

  it('serves the behaviour the test sets', async () => {
    await core.createNamespacedPod({ namespace: ns, body: gatedPod('p2', 'failing') });
    const ip = await eventually(async () => {
      const ip = fixture.ipOf(ns, 'p2');
      expect(ip).toBeDefined();
      return ip;
    });
    await eventually(async () => expect((await fetch(`http://${ip}:8080/`)).status).toBe(503));
    fixture.setApp(ns, 'p2', 'healthy');
    expect((await fetch(`http://${ip}:8080/`)).status).toBe(200);
  });

  it('completes graceful deletion and stops the app', async () => {
    const ip = fixture.ipOf(ns, 'p2');
    await core.deleteNamespacedPod({ name: 'p2', namespace: ns });
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: ns });
      expect(pods.items.map((p) => p.metadata?.name)).not.toContain('p2');
    });
    await expect(fetch(`http://${ip}:8080/`)).rejects.toThrow();
  });
});
