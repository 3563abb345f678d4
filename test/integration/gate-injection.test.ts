// The chart's gate injection (templates/gate-injection.yaml) against the real kube-apiserver: only its
// MutatingAdmissionPolicy and binding are applied, and pods are created as server-side dry runs, so
// the API server's admission decides each pod's readinessGates and nothing is stored. Its verdict on
// the shared selector table (test/support/selector-cases.ts) must equal selectorMatches', the
// operator's matcher: a pod the policy gates but the operator does not select would never get Ready.
//
// The admission plugin sees ProbePolicies through one cluster-wide informer, so it sees writes in
// order: syncPolicies() creates a sentinel policy last and waits until a pod gets its gate, after
// which every earlier write is visible and the other assertions need no retry.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1PodReadinessGate,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { selectorMatches } from '../../src/api/selector.ts';
import type { LabelSelector } from '../../src/api/types.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies, statusMessage } from '../support/kube.ts';
import { SELECTOR_CASES } from '../support/selector-cases.ts';
import { eventually } from '../support/wait.ts';

const CHART = fileURLToPath(new URL('../../charts/readygate', import.meta.url));
const MAP_API = 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy';
const KINDS = new Set(['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding']);
const SYNC_LABEL = 'readygate.dev/sync';
const release = `inj-${randomBytes(3).toString('hex')}`;

type Obj = KubernetesObject & { metadata: { name: string }; spec: Record<string, unknown> };
type Spec = { conditionType: string; selector: LabelSelector; injection?: 'Enabled' | 'Disabled' };

let admin: KubeConfig;
let releaseNs: string;
let ns: string; // where most policies live
let rendered: Obj[] = [];
const created: Obj[] = []; // admission objects to delete after the file
const systemPolicies: string[] = []; // ProbePolicies this file creates in kube-system
let syncs = 0;

const client = () => KubernetesObjectApi.makeApiClient(admin);

async function createPolicy(namespace: string, name: string, spec: Spec): Promise<void> {
  await probePolicies(admin).create(namespace, {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name },
    spec: { ...spec, probe: { tcpSocket: { port: 8080 } } },
  });
}

interface PodExtras {
  readinessGates?: V1PodReadinessGate[];
  annotations?: Record<string, string>;
  nodeName?: string;
}

/** The pod the API server would create with these labels (a dry run: admission runs, nothing is stored). */
function dryRunPod(namespace: string, labels: Record<string, string>, extras: PodExtras = {}): Promise<V1Pod> {
  const { readinessGates, annotations, nodeName } = extras;
  return admin.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace,
    dryRun: 'All',
    body: {
      metadata: { name: 'injected', labels, annotations },
      spec: { containers: [{ name: 'app', image: 'example.invalid/app' }], readinessGates, nodeName },
    },
  });
}

const INJECTED = 'readygate.dev/injected-gates';
const gatesOf = (pod: V1Pod) => (pod.spec?.readinessGates ?? []).map((g) => g.conditionType);
const sorted = (xs: string[]) => [...xs].sort();

/**
 * Creates a sentinel ProbePolicy in namespace (selecting only pods labelled with its number) and
 * waits until admission injects its gate: every ProbePolicy write before it is then visible too.
 */
async function syncPolicies(namespace = ns): Promise<void> {
  syncs += 1;
  const conditionType = `readygate.dev/sync-${syncs}`;
  const labels = { [SYNC_LABEL]: String(syncs) };
  await createPolicy(namespace, `sync-${syncs}`, { conditionType, selector: { matchLabels: labels } });
  await eventually(async () => expect(gatesOf(await dryRunPod(namespace, labels))).toContain(conditionType), 60_000);
}

beforeAll(async () => {
  admin = adminKubeConfig();
  releaseNs = await createNamespace(admin, 'inj-release');
  ns = await createNamespace(admin, 'inj');
  const helm = `${inject('controlPlane').binDir}/helm`;
  const out = execFileSync(helm, ['template', release, CHART, '--namespace', releaseNs, '--api-versions', MAP_API], {
    encoding: 'utf8',
  });
  rendered = (loadAllYaml(out) as Obj[]).filter((o) => o && KINDS.has(o.kind ?? ''));
  expect(rendered.map((o) => o.kind).sort()).toEqual([...KINDS].sort());
  for (const o of rendered) created.push((await client().create(o)) as Obj);
  // The policy and binding take a moment to reach the admission plugin.
  await syncPolicies();
});

afterAll(async () => {
  for (const o of [...created].reverse())
    await client()
      .delete(o)
      .catch(() => {});
  for (const name of systemPolicies)
    await probePolicies(admin)
      .delete('kube-system', name)
      .catch(() => {});
  for (const name of [ns, releaseNs]) if (name) await deleteNamespace(admin, name).catch(() => {});
});

describe('gate injection agrees with selectorMatches', () => {
  it(`gives every table pod exactly the gates of the ${SELECTOR_CASES.length} selectors that select it`, async () => {
    const where = await createNamespace(admin, 'inj-cases');
    const typeOf = (i: number) => `readygate.dev/case-${String(i).padStart(2, '0')}`;
    for (const [i, c] of SELECTOR_CASES.entries()) {
      await createPolicy(where, `case-${i}`, { conditionType: typeOf(i), selector: c.selector });
    }
    await syncPolicies(where);
    // One dry-run pod per distinct label set; each is checked against every case's selector.
    const labelSets = new Map(SELECTOR_CASES.map((c) => [JSON.stringify(Object.entries(c.labels).sort()), c.labels]));
    const disagreements: string[] = [];
    const apiVerdict = new Map<string, Set<string>>();
    for (const [key, labels] of labelSets) {
      const gates = gatesOf(await dryRunPod(where, labels));
      expect(gates.length, `duplicate gates on ${key}`).toBe(new Set(gates).size);
      apiVerdict.set(key, new Set(gates));
      for (const [i, c] of SELECTOR_CASES.entries()) {
        const api = gates.includes(typeOf(i));
        const ours = selectorMatches(c.selector, labels);
        if (api !== ours) {
          disagreements.push(`${c.name} ${JSON.stringify(c.selector)} on ${key}: API ${api}, selectorMatches ${ours}`);
        }
      }
    }
    expect(disagreements).toEqual([]);
    // And on its own labels each case gets the verdict the table states.
    const stated = SELECTOR_CASES.map((c, i) => [
      c.name,
      apiVerdict.get(JSON.stringify(Object.entries(c.labels).sort()))?.has(typeOf(i)),
    ]);
    expect(stated).toEqual(SELECTOR_CASES.map((c) => [c.name, c.matches]));
    await deleteNamespace(admin, where);
  });
});

describe('gate injection', () => {
  beforeAll(async () => {
    await createPolicy(ns, 'web', { conditionType: 'readygate.dev/web', selector: { matchLabels: { app: 'web' } } });
    await createPolicy(ns, 'front', {
      conditionType: 'readygate.dev/front',
      selector: { matchLabels: { tier: 'front' } },
    });
    await createPolicy(ns, 'db', { conditionType: 'readygate.dev/db', selector: { matchLabels: { app: 'db' } } });
    await syncPolicies();
  });

  it('adds the gate of every policy that selects the pod, and no other', async () => {
    expect(sorted(gatesOf(await dryRunPod(ns, { app: 'web', tier: 'front' })))).toEqual([
      'readygate.dev/front',
      'readygate.dev/web',
    ]);
    expect(gatesOf(await dryRunPod(ns, { app: 'db' }))).toEqual(['readygate.dev/db']);
    const two = await dryRunPod(ns, { app: 'web', tier: 'front' }, { annotations: { note: 'kept' } });
    expect(sorted((two.metadata?.annotations?.[INJECTED] ?? '').split(','))).toEqual([
      'readygate.dev/front',
      'readygate.dev/web',
    ]);
    expect(two.metadata?.annotations?.note).toBe('kept');
    const none = await dryRunPod(ns, { app: 'cache' });
    expect(none.spec?.readinessGates).toBeUndefined();
    expect(none.metadata?.annotations).toBeUndefined();
  });

  it('does not add a gate the pod already lists, and appends after the gates it has', async () => {
    const listed = await dryRunPod(ns, { app: 'web' }, { readinessGates: [{ conditionType: 'readygate.dev/web' }] });
    expect(gatesOf(listed)).toEqual(['readygate.dev/web']);
    const both = await dryRunPod(
      ns,
      { app: 'web', tier: 'front' },
      { readinessGates: [{ conditionType: 'readygate.dev/front' }] },
    );
    expect(sorted(gatesOf(both))).toEqual(['readygate.dev/front', 'readygate.dev/web']);
    // The annotation lists what admission added, not what the pod's author wrote.
    expect(both.metadata?.annotations?.[INJECTED]).toBe('readygate.dev/web');
    expect(listed.metadata?.annotations?.[INJECTED]).toBeUndefined();
    const others = [{ conditionType: 'example.com/lb' }, { conditionType: 'readygate.dev/elsewhere' }];
    const appended = await dryRunPod(ns, { app: 'web', tier: 'front' }, { readinessGates: others });
    const gates = gatesOf(appended);
    expect(gates.slice(0, 2)).toEqual(['example.com/lb', 'readygate.dev/elsewhere']);
    expect(sorted(gates.slice(2))).toEqual(['readygate.dev/front', 'readygate.dev/web']);
  });

  it('skips a policy with spec.injection: Disabled, and injects one with Enabled', async () => {
    const selector = { matchLabels: { app: 'web' } };
    await createPolicy(ns, 'off', { conditionType: 'readygate.dev/off', selector, injection: 'Disabled' });
    await createPolicy(ns, 'on', { conditionType: 'readygate.dev/on', selector, injection: 'Enabled' });
    await syncPolicies();
    expect(sorted(gatesOf(await dryRunPod(ns, { app: 'web' })))).toEqual(['readygate.dev/on', 'readygate.dev/web']);
  });

  it('never injects a conditionType outside conditions.allowedPrefixes (no ValidatingAdmissionPolicy here)', async () => {
    const selector = { matchLabels: { app: 'foreign' } };
    await createPolicy(ns, 'foreign', { conditionType: 'example.com/foreign', selector });
    // The prefix is matched with its '/': a longer domain does not pass.
    await createPolicy(ns, 'lookalike', { conditionType: 'readygate.devil.example/x', selector });
    await createPolicy(ns, 'allowed', { conditionType: 'readygate.dev/foreign', selector });
    await syncPolicies();
    expect(gatesOf(await dryRunPod(ns, { app: 'foreign' }))).toEqual(['readygate.dev/foreign']);
  });

  it('follows a policy whose selector changed: new pods get the gate by the new selector', async () => {
    const api = probePolicies(admin);
    const current = (await api.get(ns, 'db')) as Obj;
    await api.replace(ns, 'db', { ...current, spec: { ...current.spec, selector: { matchLabels: { app: 'pg' } } } });
    await syncPolicies();
    expect(gatesOf(await dryRunPod(ns, { app: 'pg' }))).toEqual(['readygate.dev/db']);
    expect(await dryRunPod(ns, { app: 'db' }).then((p) => p.spec?.readinessGates)).toBeUndefined();
  });

  it('leaves mirror pods alone', async () => {
    const labels = { app: 'web' };
    const mirror = await dryRunPod(ns, labels, {
      nodeName: 'node-a',
      annotations: { 'kubernetes.io/config.mirror': 'static' },
    });
    expect(mirror.spec?.readinessGates).toBeUndefined();
    // The control: the same pod, bound to the node but not a mirror pod, is gated.
    expect(gatesOf(await dryRunPod(ns, labels, { nodeName: 'node-a' }))).toContain('readygate.dev/web');
  });

  it('stops injecting in a namespace once it is labelled readygate.dev/injection=disabled', async () => {
    const where = await createNamespace(admin, 'inj-optout');
    await createPolicy(where, 'all', { conditionType: 'readygate.dev/all', selector: {} });
    await syncPolicies(where);
    expect(gatesOf(await dryRunPod(where, { app: 'web' }))).toEqual(['readygate.dev/all']);
    await admin
      .makeApiClient(CoreV1Api)
      .patchNamespace(
        { name: where, body: { metadata: { labels: { 'readygate.dev/injection': 'disabled' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    // The namespace's labels reach admission through its own cache: wait for the change.
    await eventually(async () => expect((await dryRunPod(where, { app: 'web' })).spec?.readinessGates).toBeUndefined());
    await deleteNamespace(admin, where);
  });

  it('never injects in kube-system or the release namespace', async () => {
    const everything = { selector: {} as LabelSelector };
    systemPolicies.push('readygate-injection-test');
    await createPolicy('kube-system', 'readygate-injection-test', {
      conditionType: 'readygate.dev/system',
      ...everything,
    });
    await createPolicy(releaseNs, 'all', { conditionType: 'readygate.dev/release', ...everything });
    await syncPolicies();
    expect((await dryRunPod('kube-system', { app: 'web' })).spec?.readinessGates).toBeUndefined();
    expect((await dryRunPod(releaseNs, { app: 'web' })).spec?.readinessGates).toBeUndefined();
  });
});

describe('failurePolicy', () => {
  it('admits pods unchanged in a namespace without ProbePolicies (parameterNotFoundAction Allow)', async () => {
    const where = await createNamespace(admin, 'inj-empty');
    const labels = { app: 'web', tier: 'front' };
    const pod = await dryRunPod(where, labels);
    expect(pod.spec?.readinessGates).toBeUndefined();
    // The same pod where the binding does not apply at all: admission changed nothing else either.
    expect(pod.spec).toEqual((await dryRunPod(releaseNs, labels)).spec);
    await deleteNamespace(admin, where);
  });

  // The ProbePolicy schema leaves an evaluation nothing to fail on (conditionType and selector are
  // required, In and NotIn carry values, sizes are bounded far below the CEL cost limit), so the error
  // comes from the policy's paramKind: a copy of the chart's policy whose ProbePolicy kind is not
  // served, as when the CRD is deleted while the policy stays.
  it('Ignore admits a pod when the policy errors; the control with Fail refuses it', async () => {
    const where = await createNamespace(admin, 'inj-broken');
    const [policy, binding] = ['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding'].map((kind) =>
      structuredClone(rendered.find((o) => o.kind === kind)!),
    ) as [Obj, Obj];
    expect(policy.spec.failurePolicy).toBe('Ignore');
    const name = `${policy.metadata.name}-broken`;
    policy.metadata.name = name;
    policy.spec.paramKind = { apiVersion: 'readygate.dev/v1alpha1', kind: 'NotServed' };
    binding.metadata.name = name;
    binding.spec.policyName = name;
    binding.spec.matchResources = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': where } },
    };
    const labels = { app: 'web' };
    const refused = async () => {
      const err = await dryRunPod(where, labels).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'the API server admitted the pod').toBeDefined();
      return statusMessage(err);
    };
    created.push((await client().create({ ...policy, spec: { ...policy.spec, failurePolicy: 'Fail' } })) as Obj);
    created.push((await client().create(binding)) as Obj);
    const message = await eventually(refused, 60_000);
    expect(message).toContain(`policy "${name}" denied request`);
    expect(message).toContain('paramKind');
    // Back to the chart's failurePolicy: the same pod is admitted, without a gate.
    const live = (await client().read(policy)) as Obj;
    await client().replace({ ...live, spec: { ...live.spec, failurePolicy: policy.spec.failurePolicy } });
    const admitted = await eventually(() => dryRunPod(where, labels), 60_000);
    expect(admitted.spec?.readinessGates).toBeUndefined();
    await deleteNamespace(admin, where);
  });
});
