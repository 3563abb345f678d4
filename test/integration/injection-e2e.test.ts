// Gate injection end to end (docs/gate-injection.md): the chart's MutatingAdmissionPolicy on the
// real kube-apiserver, Deployments through the real kube-controller-manager, pods run by the
// kubelet fixture, and the operator under the chart's RBAC. No pod template here lists a
// readiness gate: admission adds each selecting ProbePolicy's at pod creation.
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type GateInjection, installGateInjection, waitForGates } from '../support/injection.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_ANNOTATION, type AppBehaviour, KubeletFixture } from '../support/kubelet-fixture.ts';
import { type OperatorProcess, operatorKubeconfig, probesOf, startOperator } from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const cp = () => inject('controlPlane');
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let ns: string;
let fixture: KubeletFixture;
let injection: GateInjection;
let operatorConfig: string;
let operator: OperatorProcess | undefined;

const gate = (app: string) => `readygate.dev/${app}`;
// A short grace, so a gate whose policy is gone is released within the test (src/safety/gate-release.ts).
const ARGS = () => ['--namespaces', ns, '--release-orphaned-gates-after', '2s'];
const policy = (app: string) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name: app },
  spec: {
    conditionType: gate(app),
    selector: { matchLabels: { app } },
    probe: { httpGet: { port: 'http', path: '/ready' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
  },
});

const deployment = (app: string, image: string, behaviour: AppBehaviour, replicas = 3): V1Deployment => ({
  metadata: { name: app },
  spec: {
    replicas,
    selector: { matchLabels: { app } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: { labels: { app }, annotations: { [APP_ANNOTATION]: behaviour } },
      spec: { containers: [{ name: 'app', image, ports: [{ name: 'http', containerPort: 8080 }] }] },
    },
  },
});

const livePods = async (app: string): Promise<V1Pod[]> =>
  (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items.filter(
    (p) => !p.metadata?.deletionTimestamp,
  );
const gatesOf = (p: V1Pod) => (p.spec?.readinessGates ?? []).map((g) => g.conditionType);
const conditionOf = (p: V1Pod, type: string) => p.status?.conditions?.find((c) => c.type === type)?.status;

const rolledOut = (app: string, replicas = 3) =>
  eventually(async () => {
    const d = await apps.readNamespacedDeployment({ name: app, namespace: ns });
    expect(d.status?.updatedReplicas).toBe(replicas);
    expect(d.status?.availableReplicas).toBe(replicas);
    expect(d.status?.replicas).toBe(replicas);
  }, 90_000);

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  ns = await createNamespace(kc, 'inject');
  // The API server is shared by every test file: the binding matches this namespace only.
  injection = await installGateInjection(kc, cp().binDir, { release: 'inj-e2e', set: [`watchNamespaces={${ns}}`] });
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.31.0.1' });
  await fixture.start();
  operatorConfig = await operatorKubeconfig(kc, cp());
  operator = await startOperator(operatorConfig, cp().dir, ARGS());
});

afterAll(async () => {
  await operator?.stop();
  await fixture?.stop();
  await injection?.uninstall();
  if (ns) await deleteNamespace(kc, ns);
});

describe('a Deployment whose template lists no readiness gate', () => {
  it('gets the gate on every new pod; a broken rollout halts and the fixed one completes', async () => {
    await probePolicies(kc).create(ns, policy('shop'));
    await waitForGates(kc, ns, { app: 'shop' }, [gate('shop')]);
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('shop', 'shop:v1', 'healthy') });
    await rolledOut('shop');
    for (const p of await livePods('shop')) {
      expect(gatesOf(p)).toEqual([gate('shop')]);
      expect(conditionOf(p, gate('shop'))).toBe('True');
    }

    // v2 answers 503: its first pod is gated and never passes, so the rollout stops there.
    await apps.replaceNamespacedDeployment({
      name: 'shop',
      namespace: ns,
      body: deployment('shop', 'shop:v2', 'failing'),
    });
    const v2 = async () => (await livePods('shop')).filter((p) => p.spec?.containers[0]?.image === 'shop:v2');
    await eventually(async () => {
      const pods = await v2();
      expect(pods.length).toBe(1);
      expect(gatesOf(pods[0] as V1Pod)).toEqual([gate('shop')]);
      expect(conditionOf(pods[0] as V1Pod, gate('shop'))).toBe('False');
    }, 60_000);
    // Three more failed probes later the rollout has still not moved past the broken pod.
    const failed = await probesOf(operator?.healthUrl ?? '', 'shop', 'failure');
    await eventually(
      async () =>
        expect(await probesOf(operator?.healthUrl ?? '', 'shop', 'failure')).toBeGreaterThanOrEqual(failed + 3),
      60_000,
    );
    const d = await apps.readNamespacedDeployment({ name: 'shop', namespace: ns });
    expect(d.status?.updatedReplicas).toBe(1);
    expect(d.status?.availableReplicas).toBe(3);
    expect((await v2()).map((p) => conditionOf(p, gate('shop')))).toEqual(['False']);

    fixture.setImageApp('shop:v2', 'healthy');
    await rolledOut('shop');
    for (const p of await livePods('shop')) expect(gatesOf(p)).toEqual([gate('shop')]);
  });
});

describe('with the operator stopped', () => {
  it('pods are still created, with the gate, and turn Ready once it runs again', async () => {
    await probePolicies(kc).create(ns, policy('cart'));
    await waitForGates(kc, ns, { app: 'cart' }, [gate('cart')]);
    await operator?.stop();
    operator = undefined;

    // Admission runs inside kube-apiserver: the operator's absence does not block pod creation.
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('cart', 'cart:v1', 'healthy', 2) });
    await eventually(async () => {
      const pods = await livePods('cart');
      expect(pods.length).toBe(2);
      for (const p of pods) {
        expect(gatesOf(p)).toEqual([gate('cart')]);
        expect(p.status?.podIP).toBeTruthy();
        // The containers run, but nobody has probed the app: the pod is held NotReady.
        expect(conditionOf(p, 'ContainersReady')).toBe('True');
        expect(conditionOf(p, 'Ready')).toBe('False');
      }
    }, 60_000);

    operator = await startOperator(operatorConfig, cp().dir, ARGS());
    await rolledOut('cart', 2);
    for (const p of await livePods('cart')) expect(conditionOf(p, gate('cart'))).toBe('True');
  });
});

describe('a Deployment created before its ProbePolicy', () => {
  it('is counted as ungated and named in an Event; a rollout restart gates its new pods', async () => {
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('legacy', 'legacy:v1', 'healthy', 2) });
    await rolledOut('legacy', 2);
    for (const p of await livePods('legacy')) expect(gatesOf(p)).toEqual([]);

    await probePolicies(kc).create(ns, policy('legacy'));
    type Status = { ungatedPods?: number; matchedPods?: number };
    const statusOf = async () => ((await probePolicies(kc).get(ns, 'legacy')) as { status?: Status }).status;
    await eventually(async () => expect(await statusOf()).toMatchObject({ ungatedPods: 2, matchedPods: 0 }));
    await eventually(async () => {
      const events = (await core.listNamespacedEvent({ namespace: ns })).items.filter(
        (e) => e.involvedObject.name === 'legacy' && e.reason === 'PodsNotGated',
      );
      expect(events.map((e) => e.message)).toEqual([
        expect.stringContaining(`kubectl rollout restart deployment/legacy -n ${ns}`),
      ]);
    });

    // What the Event says to do: the restarted pods are created with the gate, probed, and Ready.
    await waitForGates(kc, ns, { app: 'legacy' }, [gate('legacy')]);
    const d = await apps.readNamespacedDeployment({ name: 'legacy', namespace: ns });
    const template = d.spec?.template as NonNullable<V1Deployment['spec']>['template'];
    template.metadata = {
      ...template.metadata,
      annotations: { ...template.metadata?.annotations, 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() },
    };
    await apps.replaceNamespacedDeployment({ name: 'legacy', namespace: ns, body: d });
    await rolledOut('legacy', 2);
    await eventually(async () => {
      const pods = await livePods('legacy');
      expect(pods.length).toBe(2);
      for (const p of pods) {
        expect(gatesOf(p)).toEqual([gate('legacy')]);
        expect(conditionOf(p, gate('legacy'))).toBe('True');
      }
      expect(await statusOf()).toMatchObject({ ungatedPods: 0, matchedPods: 2 });
    }, 60_000);
  });
});

describe('a gate injected while the operator was down, whose policy was deleted before it came back', () => {
  it('is released although it never had a condition; a hand-written gate on the same pod is not', async () => {
    await probePolicies(kc).create(ns, policy('brief'));
    await waitForGates(kc, ns, { app: 'brief' }, [gate('brief')]);
    await operator?.stop();
    operator = undefined;
    const handwritten = 'readygate.dev/handwritten';
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'brief', labels: { app: 'brief' }, annotations: { [APP_ANNOTATION]: 'healthy' } },
        spec: {
          readinessGates: [{ conditionType: handwritten }],
          containers: [{ name: 'app', image: 'brief:v1', ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      },
    });
    const pod = await core.readNamespacedPod({ name: 'brief', namespace: ns });
    expect(gatesOf(pod)).toEqual([handwritten, gate('brief')]);
    expect(pod.metadata?.annotations?.['readygate.dev/injected-gates']).toBe(gate('brief'));
    await probePolicies(kc).delete(ns, 'brief');

    operator = await startOperator(operatorConfig, cp().dir, ARGS());
    const released = await eventually(async () => {
      const p = await core.readNamespacedPodStatus({ name: 'brief', namespace: ns });
      const c = p.status?.conditions?.find((x) => x.type === gate('brief'));
      expect(c).toMatchObject({ status: 'True', reason: 'GateReleased' });
      return p;
    }, 60_000);
    // Both gates were first seen orphaned in the same look and decided together: the one the
    // pod's author wrote has no condition and stays so, holding the pod NotReady.
    expect(conditionOf(released, handwritten)).toBeUndefined();
    expect(conditionOf(released, 'Ready')).toBe('False');
  });
});
