// The operator end to end: real etcd + kube-apiserver + kube-controller-manager, the kubelet
// fixture for pods, loopback apps as probe targets, and the operator as a separate process under
// the chart's RBAC. Writes are counted from the API server's audit log.
import {
  AppsV1Api,
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
  type V1PodCondition,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches } from '../support/audit.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_ANNOTATION, type AppBehaviour, KubeletFixture } from '../support/kubelet-fixture.ts';
import {
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  probeRounds as probeRoundsBy,
  probesOf as probesOfBy,
  startOperator,
} from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const GATE = 'readygate.dev/app';
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let ns: string;
let fixture: KubeletFixture;
let operator: OperatorProcess;
let operatorConfig: string;
const cp = () => inject('controlPlane');

const policy = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name },
  spec: {
    conditionType: GATE,
    selector: { matchLabels: { app: name } },
    probe: { httpGet: { port: 'http', path: '/ready' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
    ...spec,
  },
});

const pod = (name: string, app: string, opts: { gates?: string[]; behaviour?: AppBehaviour } = {}): V1Pod => ({
  metadata: { name, labels: { app }, annotations: { [APP_ANNOTATION]: opts.behaviour ?? 'healthy' } },
  spec: {
    readinessGates: (opts.gates ?? [GATE]).map((conditionType) => ({ conditionType })),
    containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
  },
});

const conditionOf = async (name: string, type: string): Promise<V1PodCondition | undefined> =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === type);

const waitCondition = (name: string, type: string, status: string, timeoutMs = 30_000) =>
  eventually(async () => {
    const c = await conditionOf(name, type);
    expect(c?.status, `${name} ${type}: ${JSON.stringify(c)}`).toBe(status);
    return c as V1PodCondition;
  }, timeoutMs);

const probesOf = (policy: string, result?: string) => probesOfBy(operator.healthUrl, policy, result);
/** Waits for `rounds` more probes per target of each policy (policy → targets): the operator had its chance. */
const probeRounds = (targets: Record<string, number>, rounds: number) =>
  probeRoundsBy(operator.healthUrl, targets, rounds);

const matchedPods = async (policy: string) =>
  ((await probePolicies(kc).get(ns, policy)) as { status?: { matchedPods?: number } }).status?.matchedPods;

/** The API server's clock in ms, to the second (a dry-run create stamps creationTimestamp, stores nothing). */
const serverTime = async (): Promise<number> => {
  const cm = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { generateName: 'clock-' } },
    dryRun: 'All',
  });
  const stamp = cm.metadata?.creationTimestamp;
  if (!stamp) throw new Error('the dry-run create returned no creationTimestamp');
  return new Date(stamp).getTime();
};

/** The readiness gates of live pods in the namespace whose condition is not True, as pod/type=status. */
const gatesNotTrue = async (): Promise<string[]> =>
  (await core.listNamespacedPod({ namespace: ns })).items
    .filter((p) => !p.metadata?.deletionTimestamp)
    .flatMap((p) =>
      (p.spec?.readinessGates ?? []).map((g) => {
        const c = p.status?.conditions?.find((x) => x.type === g.conditionType);
        return `${p.metadata?.name}/${g.conditionType}=${c?.status}`;
      }),
    )
    .filter((s) => !s.endsWith('=True'));

/** The value of one series of the operator's /metrics, by its exact name and labels; undefined: absent. */
const metric = async (series: string): Promise<number | undefined> => {
  const text = await (await fetch(`${operator.healthUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

const eventsFor = async (kind: string, name: string): Promise<CoreV1Event[]> =>
  (await core.listNamespacedEvent({ namespace: ns })).items.filter(
    (e) => e.involvedObject.kind === kind && e.involvedObject.name === name,
  );

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  ns = await createNamespace(kc, 'e2e');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.30.0.1' });
  await fixture.start();
  operatorConfig = await operatorKubeconfig(kc, cp());
  operator = await startOperator(operatorConfig, cp().dir, ['--namespaces', ns]);
  await eventually(async () => expect((await fetch(`${operator.healthUrl}/readyz`)).status).toBe(200));
});

afterAll(async () => {
  await operator?.stop();
  await fixture?.stop();
  await deleteNamespace(kc, ns);
});

describe('a pod with the gate', () => {
  it('becomes Ready only after the probe passes, flips False after failureThreshold failures, and back', async () => {
    await probePolicies(kc).create(ns, policy('web', {}));
    await core.createNamespacedPod({ namespace: ns, body: pod('web-1', 'web', { behaviour: 'failing' }) });
    const failed = await waitCondition('web-1', GATE, 'False');
    expect(failed.reason).toBe('ProbeFailed');
    expect(failed.message).toMatch(/^HTTP GET http:\/\/127\.30\.\d+\.\d+:8080\/ready: 503/);
    expect((await conditionOf('web-1', 'Ready'))?.status).toBe('False');

    fixture.setApp(ns, 'web-1', 'healthy');
    const passed = await waitCondition('web-1', GATE, 'True');
    expect(passed.reason).toBe('ProbeSucceeded');
    await waitCondition('web-1', 'Ready', 'True');

    fixture.setApp(ns, 'web-1', 'failing');
    await waitCondition('web-1', GATE, 'False');
    await waitCondition('web-1', 'Ready', 'False');

    fixture.setApp(ns, 'web-1', 'silent');
    const timedOut = await eventually(async () => {
      const c = await conditionOf('web-1', GATE);
      expect(c?.reason).toBe('ProbeTimeout');
      return c;
    });
    expect(timedOut?.status).toBe('False');
    fixture.setApp(ns, 'web-1', 'healthy');
    await waitCondition('web-1', GATE, 'True');
  });

  it('reports the policy status: matched, ready, failing pods and conditions', async () => {
    const status = await eventually(async () => {
      const p = (await probePolicies(kc).get(ns, 'web')) as {
        status?: Record<string, unknown>;
        metadata: { generation: number };
      };
      expect(p.status).toMatchObject({
        observedGeneration: p.metadata.generation,
        matchedPods: 1,
        readyPods: 1,
        failingPods: [],
      });
      return p.status as { conditions: { type: string; status: string }[] };
    });
    expect(status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(status.conditions.find((c) => c.type === 'Degraded')?.status).toBe('False');
    // The same counts as gauges, and the client-go workqueue metrics of both controllers.
    const labels = `{namespace="${ns}",policy="web"}`;
    await eventually(async () => expect(await metric(`readygate_policy_ready_pods${labels}`)).toBe(1));
    expect(await metric(`readygate_policy_matched_pods${labels}`)).toBe(1);
    expect(await metric(`readygate_policy_failing_pods${labels}`)).toBe(0);
    expect(await metric(`readygate_policy_ungated_pods${labels}`)).toBe(0);
    expect(await metric(`readygate_probes_total{policy="web",namespace="${ns}",result="error"}`)).toBe(0);
    for (const name of ['probepolicy', 'pod']) {
      expect(await metric(`workqueue_adds_total{name="${name}"}`)).toBeGreaterThan(0);
      expect(await metric(`workqueue_work_duration_seconds_count{name="${name}"}`)).toBeGreaterThan(0);
      expect(await metric(`workqueue_depth{name="${name}"}`)).toBeGreaterThanOrEqual(0);
    }
  });

  it('never touches a pod without the gate', async () => {
    const before = auditPosition(cp().dir);
    await core.createNamespacedPod({ namespace: ns, body: pod('web-nogate', 'web', { gates: [] }) });
    await eventually(async () =>
      expect((await core.readNamespacedPodStatus({ name: 'web-nogate', namespace: ns })).status?.podIP).toBeTruthy(),
    );
    // A gated pod of the same policy created after it gets its condition: the watch delivers events
    // in order, so web's targets were computed from a cache that held web-nogate with its address.
    await core.createNamespacedPod({ namespace: ns, body: pod('web-2', 'web') });
    await waitCondition('web-2', GATE, 'True');
    // Then two rounds of every pod web selects by label (web-1, web-2, web-nogate): two periods and
    // more in which the operator would have probed and patched web-nogate had it made it a target.
    await probeRounds({ web: 3 }, 2);
    const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before).filter(
      (e) => e.objectRef?.name === 'web-nogate',
    );
    expect(writes).toEqual([]);
    expect(await conditionOf('web-nogate', GATE)).toBeUndefined();
  });
});

describe('several policies', () => {
  it('gates one pod on two conditions; Ready only when both pass', async () => {
    await probePolicies(kc).create(ns, policy('multi-http', { selector: { matchLabels: { app: 'multi' } } }));
    await probePolicies(kc).create(
      ns,
      policy('multi-tcp', {
        conditionType: 'readygate.dev/tcp',
        selector: { matchLabels: { app: 'multi' } },
        probe: { tcpSocket: { port: 9999 }, periodSeconds: 2, timeoutSeconds: 1 },
      }),
    );
    await core.createNamespacedPod({
      namespace: ns,
      body: pod('multi-1', 'multi', { gates: [GATE, 'readygate.dev/tcp'] }),
    });
    await waitCondition('multi-1', GATE, 'True');
    const tcp = await waitCondition('multi-1', 'readygate.dev/tcp', 'False');
    expect(tcp.message).toMatch(/9999/);
    expect((await conditionOf('multi-1', 'Ready'))?.status).toBe('False');

    // A spec change (new port) takes effect without a restart: the app's own port passes.
    const current = (await probePolicies(kc).get(ns, 'multi-tcp')) as { spec: Record<string, unknown> };
    await probePolicies(kc).replace(ns, 'multi-tcp', {
      ...current,
      spec: { ...current.spec, probe: { tcpSocket: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1 } },
    });
    await waitCondition('multi-1', 'readygate.dev/tcp', 'True');
    await waitCondition('multi-1', 'Ready', 'True');
  });

  it('lets the older of two conflicting policies own the condition; the newer is Degraded/Conflict', async () => {
    const owner = (await probePolicies(kc).create(
      ns,
      policy('owner', { selector: { matchLabels: { app: 'contested' } } }),
    )) as { metadata: { creationTimestamp: string } };
    // creationTimestamp has second precision: wait until the API server's clock is past owner's
    // second, so that rival is younger by age and not merely later by name.
    await eventually(async () =>
      expect(await serverTime()).toBeGreaterThan(Date.parse(owner.metadata.creationTimestamp)),
    );
    const rival = (await probePolicies(kc).create(
      ns,
      policy('rival', {
        selector: { matchLabels: { app: 'contested' } },
        probe: { httpGet: { port: 'http', path: '/other' }, periodSeconds: 2, timeoutSeconds: 1 },
      }),
    )) as { metadata: { creationTimestamp: string } };
    expect(Date.parse(rival.metadata.creationTimestamp)).toBeGreaterThan(Date.parse(owner.metadata.creationTimestamp));
    await core.createNamespacedPod({ namespace: ns, body: pod('contested-1', 'contested') });
    await waitCondition('contested-1', GATE, 'True');
    await eventually(async () => {
      const p = (await probePolicies(kc).get(ns, 'rival')) as {
        status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
      };
      const degraded = p.status?.conditions?.find((c) => c.type === 'Degraded');
      expect(degraded).toMatchObject({ status: 'True', reason: 'Conflict' });
      expect(degraded?.message).toContain('owner');
    });
  });
});

describe('pods being deleted', () => {
  it('are not probed or patched', async () => {
    await probePolicies(kc).create(ns, policy('term', {}));
    const body = pod('term-1', 'term');
    body.metadata = { ...body.metadata, finalizers: ['readygate.dev/test-hold'] };
    await core.createNamespacedPod({ namespace: ns, body });
    await waitCondition('term-1', GATE, 'True');
    await core.deleteNamespacedPod({ name: 'term-1', namespace: ns });
    // The fixture's grace-0 delete leaves the pod Terminating because of the finalizer.
    await eventually(async () => {
      const p = await core.readNamespacedPod({ name: 'term-1', namespace: ns });
      expect(p.metadata?.deletionTimestamp).toBeDefined();
    });
    const before = auditPosition(cp().dir);
    // The operator has seen the deletion once the policy no longer counts the pod: the same
    // reconcile removed its target, after which no probe result of it is counted.
    await eventually(async () => expect(await matchedPods('term')).toBe(0));
    const probed = await probesOf('term');
    // Three rounds of web's targets: periods in which the operator would have probed and patched term-1.
    await probeRounds({ web: 2 }, 3);
    expect(await probesOf('term')).toBe(probed);
    expect(podStatusPatches(cp().dir, OPERATOR_USER, ns, before).filter((e) => e.objectRef?.name === 'term-1')).toEqual(
      [],
    );
    await core.patchNamespacedPod(
      { name: 'term-1', namespace: ns, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  });
});

describe('rollouts', () => {
  const deployment = (image: string, behaviour: AppBehaviour): V1Deployment => ({
    metadata: { name: 'shop' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'shop' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { app: 'shop' }, annotations: { [APP_ANNOTATION]: behaviour } },
        spec: {
          readinessGates: [{ conditionType: GATE }],
          containers: [{ name: 'app', image, ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      },
    },
  });
  const readyPods = async (image: string) =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=shop' })).items.filter(
      (p) =>
        !p.metadata?.deletionTimestamp &&
        p.spec?.containers[0]?.image === image &&
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );

  it('halts on a version whose pods fail the probe, keeps the old pods serving, and completes once fixed', async () => {
    await probePolicies(kc).create(ns, policy('shop', {}));
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('shop:v1', 'healthy') });
    await eventually(async () => {
      const d = await apps.readNamespacedDeployment({ name: 'shop', namespace: ns });
      expect(d.status?.availableReplicas).toBe(3);
      expect(d.status?.updatedReplicas).toBe(3);
    }, 60_000);

    // Roll out v2, whose app answers 503: its first pod never passes the gate.
    const broken = deployment('shop:v2', 'failing');
    await apps.replaceNamespacedDeployment({ name: 'shop', namespace: ns, body: broken });
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=shop' });
      const v2 = pods.items.filter((p) => p.spec?.containers[0]?.image === 'shop:v2');
      expect(v2.length).toBe(1);
      const gate = v2[0]?.status?.conditions?.find((c) => c.type === GATE);
      expect(gate?.status).toBe('False');
    }, 60_000);
    // Three more failed probes of the broken pod (the only one failing) later, its gate is still
    // False and the rollout still has not progressed past it.
    const failed = await probesOf('shop', 'failure');
    await eventually(async () => expect(await probesOf('shop', 'failure')).toBeGreaterThanOrEqual(failed + 3), 60_000);
    const v2 = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=shop' })).items.filter(
      (p) => p.spec?.containers[0]?.image === 'shop:v2',
    );
    expect(v2.map((p) => p.status?.conditions?.find((c) => c.type === GATE)?.status)).toEqual(['False']);
    const d = await apps.readNamespacedDeployment({ name: 'shop', namespace: ns });
    expect(d.status?.updatedReplicas).toBe(1);
    expect(d.status?.availableReplicas).toBe(3);
    expect((await readyPods('shop:v1')).length).toBe(3);

    // Fix the app behind v2 (same pod template): its pods pass, and the rollout completes.
    fixture.setImageApp('shop:v2', 'healthy');
    await eventually(async () => {
      const d = await apps.readNamespacedDeployment({ name: 'shop', namespace: ns });
      expect(d.status?.updatedReplicas).toBe(3);
      expect(d.status?.availableReplicas).toBe(3);
      expect(d.status?.replicas).toBe(3);
    }, 90_000);
  });
});

describe('writes', () => {
  // What probes once the tests above have run: policy → targets (rival owns no pod, so probes none).
  const STEADY_TARGETS = { web: 2, 'multi-http': 1, 'multi-tcp': 1, owner: 1, shop: 3 };

  it('makes no writes in steady state', async () => {
    // Everything created so far has settled: every gate of every live pod is True, nothing to write.
    await eventually(async () => expect(await gatesNotTrue()).toEqual([]));
    const before = auditPosition(cp().dir);
    // Four rounds of every target of every policy that probes (rival owns no pod): several periods
    // of probing, so silence is not a dead operator.
    await probeRounds(STEADY_TARGETS, 4);
    const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before);
    expect(writes.map((w) => w.objectRef?.name)).toEqual([]);
  });

  it('flips no condition across an operator restart with a healthy fleet', async () => {
    await probePolicies(kc).create(
      ns,
      policy('fleet', { probe: { tcpSocket: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1 } }),
    );
    for (let i = 0; i < 10; i++) await core.createNamespacedPod({ namespace: ns, body: pod(`fleet-${i}`, 'fleet') });
    for (let i = 0; i < 10; i++) await waitCondition(`fleet-${i}`, GATE, 'True');
    const before = auditPosition(cp().dir);
    await operator.kill(); // SIGKILL: no graceful anything
    operator = await startOperator(operatorConfig, cp().dir, ['--namespaces', ns]);
    await eventually(async () => expect((await fetch(`${operator.healthUrl}/readyz`)).status).toBe(200));
    // The new process probes the fleet, and every other target, three times over.
    await probeRounds({ ...STEADY_TARGETS, fleet: 10 }, 3);
    const patches = podStatusPatches(cp().dir, OPERATOR_USER, ns, before);
    expect(patches.map((p) => p.objectRef?.name)).toEqual([]);
    for (let i = 0; i < 10; i++) expect((await conditionOf(`fleet-${i}`, GATE))?.status).toBe('True');
  });
});

describe('failsafe', () => {
  it('flips at most maxUnavailable pods when every target goes dark at once', async () => {
    await probePolicies(kc).create(
      ns,
      policy('dark', {
        failsafe: { maxUnavailable: 2 },
        probe: { httpGet: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
      }),
    );
    for (let i = 0; i < 8; i++) await core.createNamespacedPod({ namespace: ns, body: pod(`dark-${i}`, 'dark') });
    for (let i = 0; i < 8; i++) await waitCondition(`dark-${i}`, GATE, 'True');
    for (let i = 0; i < 8; i++) fixture.setApp(ns, `dark-${i}`, 'silent');
    await eventually(async () => {
      const p = (await probePolicies(kc).get(ns, 'dark')) as {
        status?: { conditions?: { type: string; status: string; reason: string }[] };
      };
      expect(p.status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
        status: 'True',
        reason: 'Failsafe',
      });
    });
    await probeRounds({ dark: 8 }, 3); // three more rounds of every dark target: the hold must last
    let flipped = 0;
    for (let i = 0; i < 8; i++) if ((await conditionOf(`dark-${i}`, GATE))?.status === 'False') flipped++;
    expect(flipped).toBeLessThanOrEqual(2);
    const events = await eventsFor('ProbePolicy', 'dark');
    expect(events.some((e) => e.reason === 'FailsafeTripped' && e.type === 'Warning')).toBe(true);
  });
});

describe('events', () => {
  it('warns about a gate that no policy provides', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: pod('orphan-1', 'orphan', { gates: ['readygate.dev/nobody'] }),
    });
    await eventually(async () => {
      const events = await eventsFor('Pod', 'orphan-1');
      const e = events.find((x) => x.reason === 'NoProbePolicy');
      expect(e?.type).toBe('Warning');
      expect(e?.message).toContain('readygate.dev/nobody');
    });
  });

  it('counts the pods a policy selects without its gate, and says so once per workload', async () => {
    const legacy = (spec: Record<string, unknown>) => policy('legacy', spec);
    // The policy exists first with injection Disabled: nothing counted, nothing said.
    await probePolicies(kc).create(ns, legacy({ injection: 'Disabled' }));
    // A Deployment and a bare pod from before injection covered them: no gate in their spec.
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'legacy' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'legacy' } },
          template: {
            metadata: { labels: { app: 'legacy' }, annotations: { [APP_ANNOTATION]: 'healthy' } },
            spec: { containers: [{ name: 'app', image: 'legacy:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
          },
        },
      },
    });
    await core.createNamespacedPod({ namespace: ns, body: pod('legacy-bare', 'legacy', { gates: [] }) });
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=legacy' });
      expect(pods.items.filter((p) => p.status?.podIP).length).toBe(3);
    }, 60_000);
    // Created after the others and gated by the operator: its cache (one watch) holds all of them.
    await core.createNamespacedPod({ namespace: ns, body: pod('legacy-gated', 'legacy') });
    await waitCondition('legacy-gated', GATE, 'True');
    type Status = { matchedPods?: number; readyPods?: number; ungatedPods?: number };
    const statusOf = async () => ((await probePolicies(kc).get(ns, 'legacy')) as { status?: Status }).status;
    await eventually(async () => expect(await statusOf()).toMatchObject({ matchedPods: 1, readyPods: 1 }));
    expect(await statusOf()).not.toHaveProperty('ungatedPods');
    const notGated = async () => (await eventsFor('ProbePolicy', 'legacy')).filter((e) => e.reason === 'PodsNotGated');
    expect(await notGated()).toEqual([]);

    const current = (await probePolicies(kc).get(ns, 'legacy')) as { spec: Record<string, unknown> };
    await probePolicies(kc).replace(ns, 'legacy', { ...current, spec: { ...current.spec, injection: 'Enabled' } });
    await eventually(async () => expect(await statusOf()).toMatchObject({ matchedPods: 1, ungatedPods: 3 }));
    const expected = [
      expect.stringMatching(
        new RegExp(
          `^2 pods of deployment/legacy are selected but do not list ${GATE} in spec\\.readinessGates .*: kubectl rollout restart deployment/legacy -n ${ns}\\. `,
        ),
      ),
      expect.stringMatching(/^pod legacy-bare is selected but does not list .*: delete and recreate the pod /),
    ];
    await eventually(async () => {
      const events = await notGated();
      expect(events.map((e) => e.message).sort()).toEqual(expected);
      for (const e of events) expect(e.type).toBe('Warning');
    });

    // More passes over the namespace (the gated pod flips False and back; each flip re-counts the
    // policy): the same ungated pods, so no new Event.
    fixture.setApp(ns, 'legacy-gated', 'failing');
    await eventually(async () => expect(await statusOf()).toMatchObject({ readyPods: 0, ungatedPods: 3 }));
    fixture.setApp(ns, 'legacy-gated', 'healthy');
    await eventually(async () => expect(await statusOf()).toMatchObject({ readyPods: 1, ungatedPods: 3 }));
    expect((await notGated()).map((e) => e.message).sort()).toEqual(expected);
  });

  it('leaves conditions in place when a policy is deleted, and says so', async () => {
    await probePolicies(kc).create(ns, policy('gone', {}));
    await core.createNamespacedPod({ namespace: ns, body: pod('gone-1', 'gone') });
    const before = await waitCondition('gone-1', GATE, 'True');
    const gone = `{namespace="${ns}",policy="gone"}`;
    await eventually(async () => expect(await metric(`readygate_policy_ready_pods${gone}`)).toBe(1));
    await probePolicies(kc).delete(ns, 'gone');
    await eventually(async () => {
      const events = await eventsFor('ProbePolicy', 'gone');
      expect(
        events.some(
          (e) => e.reason === 'PolicyDeleted' && /True conditions are left as they are/.test(e.message ?? ''),
        ),
      ).toBe(true);
    });
    // Its series go with it: no per-policy series outlives the policy.
    await eventually(async () => expect(await metric(`readygate_policy_matched_pods${gone}`)).toBeUndefined());
    expect(await metric(`readygate_probes_total{policy="gone",namespace="${ns}",result="success"}`)).toBeUndefined();
    const probed = await probesOf('gone');
    fixture.setApp(ns, 'gone-1', 'failing');
    // Four rounds of web's targets: more than failureThreshold (2) periods, in which gone-1 would have
    // been flipped had it still been probed.
    await probeRounds({ web: 2 }, 4);
    expect(await probesOf('gone')).toBe(probed);
    const after = await conditionOf('gone-1', GATE);
    expect(after?.status).toBe('True');
    expect(after?.lastTransitionTime).toEqual(before.lastTransitionTime);
  });
});
