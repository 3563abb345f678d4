// Orphaned gates are released (src/safety/gate-release.ts), end to end: the operator as a process
// under the chart's RBAC, the kubelet fixture, and writes counted from the API server's audit log.
// A gate whose ProbePolicy is gone (deleted, re-selected, deleted while the operator was down)
// is set True with reason GateReleased after the grace; True gates are never written; a policy
// re-created within the grace flips nothing; with release off the condition stays.
import { CoreV1Api, type KubeConfig, type V1Pod, type V1PodCondition } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches, receivedAt } from '../support/audit.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_ANNOTATION, type AppBehaviour, KubeletFixture } from '../support/kubelet-fixture.ts';
import {
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  probeRounds,
  startOperator,
} from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const GRACE_MS = 4_000;
const GRACE = '4s';
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;
let operator: OperatorProcess;
let operatorConfig: string;
const cp = () => inject('controlPlane');

const gateOf = (app: string) => `readygate.dev/${app}`;

const policy = (app: string, selector: Record<string, string> = { app }) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name: app },
  spec: {
    conditionType: gateOf(app),
    selector: { matchLabels: selector },
    probe: { httpGet: { port: 'http', path: '/ready' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 1 },
  },
});

const pod = (name: string, app: string, behaviour: AppBehaviour): V1Pod => ({
  metadata: { name, labels: { app }, annotations: { [APP_ANNOTATION]: behaviour } },
  spec: {
    readinessGates: [{ conditionType: gateOf(app) }],
    containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
  },
});

const conditionOf = async (name: string, type: string): Promise<V1PodCondition | undefined> =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === type);

const waitCondition = (name: string, type: string, status: string, reason?: string) =>
  eventually(async () => {
    const c = await conditionOf(name, type);
    expect(c?.status, `${name} ${type}: ${JSON.stringify(c)}`).toBe(status);
    if (reason) expect(c?.reason).toBe(reason);
    return c as V1PodCondition;
  }, 60_000);

/** Creates the policy and its pods, and waits for each pod's gate to say what its app does. */
async function gated(app: string, pods: Record<string, AppBehaviour>): Promise<void> {
  await probePolicies(kc).create(ns, policy(app));
  for (const [name, behaviour] of Object.entries(pods)) {
    await core.createNamespacedPod({ namespace: ns, body: pod(name, app, behaviour) });
  }
  for (const [name, behaviour] of Object.entries(pods)) {
    await waitCondition(name, gateOf(app), behaviour === 'healthy' ? 'True' : 'False');
  }
}

/** The operator's pods/status patches of one pod after an audit position. */
const patchesOf = (name: string, after: number) =>
  podStatusPatches(cp().dir, OPERATOR_USER, ns, after).filter((e) => e.objectRef?.name === name);

const eventsOf = async (kind: string, name: string, reason: string) =>
  (await core.listNamespacedEvent({ namespace: ns })).items.filter(
    (e) => e.involvedObject.kind === kind && e.involvedObject.name === name && e.reason === reason,
  );

/** readygate_gates_released_total of the namespace, from the operator process's /metrics. */
async function releasedTotal(): Promise<number> {
  const text = await (await fetch(`${operator.healthUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`readygate_gates_released_total{namespace="${ns}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const start = async (grace: string) => {
  operator = await startOperator(operatorConfig, cp().dir, [
    '--namespaces',
    ns,
    '--release-orphaned-gates-after',
    grace,
  ]);
  await eventually(async () => expect((await fetch(`${operator.healthUrl}/readyz`)).status).toBe(200));
};

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'release');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.74.0.1' });
  await fixture.start();
  operatorConfig = await operatorKubeconfig(kc, cp());
  await start(GRACE);
});

afterAll(async () => {
  await operator?.stop();
  await fixture?.stop();
  await deleteNamespace(kc, ns);
});

describe('a deleted ProbePolicy', () => {
  it("releases a failing pod's gate after the grace and never writes a passing pod", async () => {
    await gated('gone', { 'gone-fail': 'failing', 'gone-pass': 'healthy' });
    const before = auditPosition(cp().dir);
    await probePolicies(kc).delete(ns, 'gone');
    const released = await waitCondition('gone-fail', gateOf('gone'), 'True', 'GateReleased');
    expect(released.message).toBe(
      `no ProbePolicy in namespace ${ns} provides readygate.dev/gone to this pod any more (deleted, or its selector no longer matches); released after ${GRACE} so the pod is not held NotReady`,
    );
    // The pod is not held NotReady any more (the fixture computes Ready as the kubelet does).
    await waitCondition('gone-fail', 'Ready', 'True');
    expect(patchesOf('gone-fail', before)).toHaveLength(1);
    // gone-pass was looked at with gone-fail, when the deletion reached the cache: True, never written.
    expect(patchesOf('gone-pass', before)).toEqual([]);
    expect((await conditionOf('gone-pass', gateOf('gone')))?.reason).toBe('ProbeSucceeded');
    await eventually(async () => {
      const [e] = await eventsOf('Pod', 'gone-fail', 'GateReleased');
      expect(e?.type).toBe('Normal');
      expect(e?.message).toBe(released.message);
    });
    await eventually(async () => {
      const [deleted] = await eventsOf('ProbePolicy', 'gone', 'PolicyDeleted');
      expect(deleted?.message).toContain(`is set True (reason GateReleased) after ${GRACE}`);
    });
    // A True gate holds nothing back: no warning either.
    expect(await eventsOf('Pod', 'gone-pass', 'NoProbePolicy')).toEqual([]);
    // Counted before the GateReleased Event was sent.
    expect(await releasedTotal()).toBe(1);
  });

  it('whose selector no longer matches a pod releases that pod after the grace', async () => {
    await gated('moved', { 'moved-fail': 'failing' });
    const before = auditPosition(cp().dir);
    await probePolicies(kc).replace(ns, 'moved', {
      ...((await probePolicies(kc).get(ns, 'moved')) as object),
      spec: policy('moved', { app: 'elsewhere' }).spec,
    });
    await waitCondition('moved-fail', gateOf('moved'), 'True', 'GateReleased');
    expect(patchesOf('moved-fail', before)).toHaveLength(1);
  });

  it('re-created within the grace flips nothing', async () => {
    await gated('again', { 'again-fail': 'failing' });
    await gated('witness', { 'witness-fail': 'failing' });
    const released = await releasedTotal();
    const before = auditPosition(cp().dir);
    const condition = await conditionOf('again-fail', gateOf('again'));
    await probePolicies(kc).delete(ns, 'again');
    await probePolicies(kc).create(ns, policy('again'));
    // The re-created policy is in the operator's cache and probes again-fail.
    await eventually(async () => {
      const p = (await probePolicies(kc).get(ns, 'again')) as { status?: { matchedPods?: number } };
      expect(p.status?.matchedPods).toBe(1);
    });
    await probeRounds(operator.healthUrl, { again: 1 }, 2);
    // The witness's gate is orphaned later than again-fail's was: once it is released, again-fail's
    // grace would have run out too, had the re-created policy not taken the gate back.
    await probePolicies(kc).delete(ns, 'witness');
    await waitCondition('witness-fail', gateOf('witness'), 'True', 'GateReleased');
    expect(patchesOf('again-fail', before)).toEqual([]);
    expect(await conditionOf('again-fail', gateOf('again'))).toEqual(condition);
    await eventually(async () => expect(await releasedTotal()).toBe(released + 1));
  });
});

describe('a ProbePolicy deleted while the operator is down', () => {
  it('is released once the restarted operator has seen it orphaned for the grace', async () => {
    await gated('down', { 'down-fail': 'failing' });
    await operator.stop();
    await probePolicies(kc).delete(ns, 'down');
    const before = auditPosition(cp().dir);
    const startedAt = Date.now();
    await start(GRACE);
    await waitCondition('down-fail', gateOf('down'), 'True', 'GateReleased');
    const patches = patchesOf('down-fail', before);
    expect(patches).toHaveLength(1);
    // Not at the first look: the grace counts from when this process first saw the gate orphaned.
    expect(receivedAt(patches[0]!) - startedAt).toBeGreaterThanOrEqual(GRACE_MS);
  });
});

describe('with release off (--release-orphaned-gates-after 0)', () => {
  it("keeps a deleted policy's False condition, and says so", async () => {
    await operator.stop();
    await start('0');
    await gated('keep', { 'keep-fail': 'failing' });
    await gated('live', { 'live-pass': 'healthy' });
    const condition = await conditionOf('keep-fail', gateOf('keep'));
    const before = auditPosition(cp().dir);
    await probePolicies(kc).delete(ns, 'keep');
    await eventually(async () => {
      const [e] = await eventsOf('ProbePolicy', 'keep', 'PolicyDeleted');
      expect(e?.message).toContain('kept as they are (release of orphaned gates is off)');
    });
    // keep-fail was looked at with the policy gone from the cache: its reconcile recorded this.
    await eventually(async () => {
      const [e] = await eventsOf('Pod', 'keep-fail', 'NoProbePolicy');
      expect(e?.message).toContain('its condition is kept as it is (release of orphaned gates is off)');
    });
    // Three rounds of live's probes after it: time in which a write to keep-fail would have landed.
    await probeRounds(operator.healthUrl, { live: 1 }, 3);
    expect(patchesOf('keep-fail', before)).toEqual([]);
    expect(await conditionOf('keep-fail', gateOf('keep'))).toEqual(condition);
    expect(await releasedTotal()).toBe(0);
  });
});
