// The Helm chart against the real kube-apiserver: helm install / upgrade / uninstall (the Deployment's
// pods must pass the restricted Pod Security admission), server-side dry runs of the rendered modes,
// and what the chart's ServiceAccount may and may not do, asked of the API server's RBAC authorizer
// with `kubectl auth can-i --as system:serviceaccount:...`.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
} from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';
import { eventually } from '../support/wait.ts';

const CHART = fileURLToPath(new URL('../../charts/readygate', import.meta.url));
const CRD_NAME = 'probepolicies.readygate.dev';
const cp = () => inject('controlPlane');
/** The kinds the chart renders without a namespace. */
const CLUSTER_SCOPED = new Set([
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
  'FlowSchema',
]);

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function tool(name: 'helm' | 'kubectl', args: string[], input?: string): Result {
  const r = spawnSync(join(cp().binDir, name), [...args, '--kubeconfig', cp().kubeconfigPath], {
    encoding: 'utf8',
    input,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Result, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const setFlags = (set: string[]) => set.flatMap((s) => ['--set', s]);
/**
 * The tests share one API server whose CRD test/support installs with no Helm ownership: a release
 * rendering it (crds.enabled, the default) would be refused by helm ("invalid ownership metadata"),
 * and an upgrade that adopted it would rewrite the CRD under every other test file. So releases here
 * leave it alone; 'the CRD as a template' below installs, upgrades and keeps a renamed copy.
 */
const NO_CRD = setFlags(['crds.enabled=false']);

/** Objects of a multi-document YAML text (empty documents dropped). */
function objectsOf(yamlText: string): KubernetesObject[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

let kc: KubeConfig;
let ns: string; // release namespace, enforcing the restricted Pod Security Standard
let watched: string; // a namespace the namespace-scoped mode watches
let other: string; // a namespace no mode but cluster-wide covers
const release = `readygate-${randomBytes(3).toString('hex')}`; // contains the chart name: fullname = release
let installed = false;

beforeAll(async () => {
  kc = adminKubeConfig();
  ns = await createNamespace(kc, 'chart');
  watched = await createNamespace(kc, 'chart-watched');
  other = await createNamespace(kc, 'chart-other');
  const labels = { enforce: 'restricted', warn: 'restricted', audit: 'restricted' };
  ok(
    tool('kubectl', [
      'label',
      'namespace',
      ns,
      ...Object.entries(labels).map(([mode, level]) => `pod-security.kubernetes.io/${mode}=${level}`),
    ]),
    'kubectl label',
  );
});

afterAll(async () => {
  if (installed) tool('helm', ['uninstall', release, '--namespace', ns]);
  for (const name of [ns, watched, other]) if (name) await deleteNamespace(kc, name).catch(() => {});
});

/**
 * Asks the RBAC authorizer, as the chart's ServiceAccount, each "verb resource[/subresource][ name]
 * @namespace" question (namespace "*" = all namespaces) and returns question → allowed.
 */
function canI(questions: string[]): Record<string, boolean> {
  const user = `system:serviceaccount:${ns}:${release}`;
  const answers: Record<string, boolean> = {};
  for (const q of questions) {
    const m = /^(\S+) ([^\s/]+)(?:\/(\S+))?(?: (\S+))? @(\S+)$/.exec(q);
    if (!m) throw new Error(`bad question ${q}`);
    const [, verb = '', resource = '', sub, name, where = ''] = m;
    const args = ['auth', 'can-i', verb, name ? `${resource}/${name}` : resource, '--as', user];
    if (sub) args.push(`--subresource=${sub}`);
    args.push(...(where === '*' ? ['--all-namespaces'] : ['--namespace', where]));
    const r = tool('kubectl', args);
    // can-i exits 0 for yes and 1 for no; anything else (or no answer) is an error.
    if (r.status !== 0 && !(r.status === 1 && r.stdout.trim() === 'no')) {
      throw new Error(`kubectl auth can-i ${q}: ${r.status}\n${r.stderr}`);
    }
    answers[q] = r.status === 0;
  }
  return answers;
}

/** Retries until the authorizer gives exactly the expected answers (its RBAC cache lags writes slightly). */
async function expectPermissions(expected: Record<string, boolean>): Promise<void> {
  const questions = Object.keys(expected);
  await eventually(() => expect(canI(questions)).toEqual(expected), 30_000, 250);
}

const yes = (qs: string[]) => Object.fromEntries(qs.map((q) => [q, true]));
const no = (qs: string[]) => Object.fromEntries(qs.map((q) => [q, false]));

/** What the operator needs in a namespace it watches. */
const watchVerbs = (where: string) => [
  `get pods @${where}`,
  `list pods @${where}`,
  `watch pods @${where}`,
  `patch pods/status @${where}`,
  `create events @${where}`,
  `patch events @${where}`,
  `create events.events.k8s.io @${where}`,
  `patch events.events.k8s.io @${where}`,
  `get probepolicies.readygate.dev @${where}`,
  `list probepolicies.readygate.dev @${where}`,
  `watch probepolicies.readygate.dev @${where}`,
  `get probepolicies.readygate.dev/status @${where}`,
  `update probepolicies.readygate.dev/status @${where}`,
  `patch probepolicies.readygate.dev/status @${where}`,
];
/** What it must never be able to do, whatever the mode. */
const forbidden = (where: string) => [
  `patch pods @${where}`,
  `update pods @${where}`,
  `create pods @${where}`,
  `delete pods @${where}`,
  `deletecollection pods @${where}`,
  `update pods/status @${where}`,
  `create pods/eviction @${where}`,
  `create pods/binding @${where}`,
  `create probepolicies.readygate.dev @${where}`,
  `update probepolicies.readygate.dev @${where}`,
  `patch probepolicies.readygate.dev @${where}`,
  `delete probepolicies.readygate.dev @${where}`,
  `update deployments.apps @${where}`,
  `patch deployments.apps @${where}`,
  `list secrets @${where}`,
  `get configmaps @${where}`,
  `delete events @${where}`,
  `create serviceaccounts/token @${where}`,
  `create roles.rbac.authorization.k8s.io @${where}`,
];
const execVerbs = (where: string) => [`create pods/exec @${where}`, `get pods/exec @${where}`];
const secretVerbs = (where: string) => [`get secrets @${where}`];
const leaseVerbs = () => [
  `create leases.coordination.k8s.io @${ns}`,
  `get leases.coordination.k8s.io readygate @${ns}`,
  `update leases.coordination.k8s.io readygate @${ns}`,
  // The leader lists shard bucket Leases by label before it probes (turning sharding off in a
  // rollout, docs/sharding.md decision 6); a label-selector LIST cannot be limited by name.
  `list leases.coordination.k8s.io @${ns}`,
];
const leaseForbidden = () => [
  `get leases.coordination.k8s.io other-lease @${ns}`,
  `update leases.coordination.k8s.io other-lease @${ns}`,
  `delete leases.coordination.k8s.io readygate @${ns}`,
  `list leases.coordination.k8s.io @${other}`,
  `create leases.coordination.k8s.io @${other}`,
  `get leases.coordination.k8s.io readygate @${other}`,
];

describe('helm install into the test control plane', () => {
  it('installs with crds.enabled=false and leaves the CRD that exists untouched', async () => {
    const crds = kc.makeApiClient(ApiextensionsV1Api);
    const before = await crds.readCustomResourceDefinition({ name: CRD_NAME });
    const r = tool('helm', [
      'install',
      release,
      CHART,
      '--namespace',
      ns,
      '--wait=false',
      '--timeout',
      '60s',
      ...NO_CRD,
    ]);
    const out = ok(r, 'helm install');
    installed = true;
    // The namespace warns on workloads that would violate the restricted Pod Security Standard.
    expect(r.stderr).not.toMatch(/PodSecurity|violate/i);
    expect(out).toContain('STATUS: deployed');
    // NOTES.txt tells the user how to gate a pod: this API server serves MutatingAdmissionPolicy v1,
    // so with injection.enabled=auto the gate is injected (and NOTES says where it is not).
    expect(out).toContain('1. Gate injection is on');
    expect(out).toContain(`${release}-gate-injection`);
    expect(out).toContain('readinessGates:');
    expect(out).toContain('kind: ProbePolicy');
    // ...and its ProbePolicy example is valid against the real CRD (schema and CEL rules).
    const example = /^ {3}apiVersion: readygate\.dev\/v1alpha1\n[\s\S]*?(?=\n\n)/m.exec(out)?.[0];
    expect(example).toBeDefined();
    const policy = parseAllDocuments(example!.replace(/^ {3}/gm, ''))[0]!.toJS() as KubernetesObject & {
      spec: { conditionType: string };
    };
    expect(out).toContain(`- conditionType: ${policy.spec.conditionType}`);
    policy.metadata = { ...policy.metadata, namespace: watched };
    const applied = tool('kubectl', ['apply', '--dry-run=server', '-o', 'name', '-f', '-'], JSON.stringify(policy));
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe('probepolicy.readygate.dev/payments-db');
    const after = await crds.readCustomResourceDefinition({ name: CRD_NAME });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.metadata?.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
  });

  it('created every object of the release manifest', async () => {
    const manifest = objectsOf(ok(tool('helm', ['get', 'manifest', release, '--namespace', ns]), 'helm get manifest'));
    expect(manifest.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual([
      `ClusterRole/${release}`,
      `ClusterRoleBinding/${release}`,
      `Deployment/${release}`,
      `FlowSchema/${release}-leases`,
      `MutatingAdmissionPolicy/${release}-gate-injection`,
      `MutatingAdmissionPolicyBinding/${release}-gate-injection`,
      `PodDisruptionBudget/${release}`,
      `Role/${release}-leader-election`,
      `RoleBinding/${release}-leader-election`,
      `Service/${release}-metrics`,
      `ServiceAccount/${release}`,
      `ValidatingAdmissionPolicy/${release}-probepolicies`,
      `ValidatingAdmissionPolicyBinding/${release}-probepolicies`,
    ]);
    const client = KubernetesObjectApi.makeApiClient(kc);
    for (const o of manifest) {
      const live = await client.read(o as KubernetesObject & { metadata: { name: string } });
      expect(live.metadata?.labels?.['app.kubernetes.io/instance'], `${o.kind}/${o.metadata?.name}`).toBe(release);
    }
  });

  it("serves the ServiceAccount's Lease calls at the leader-election priority level, and nothing else of it", async () => {
    // API Priority and Fairness names the FlowSchema that classified a request in every answer.
    const flowSchema = (name: string) =>
      JSON.parse(ok(tool('kubectl', ['get', 'flowschema', name, '-o', 'json']), `get flowschema ${name}`)) as {
        metadata: { uid: string };
        spec: { priorityLevelConfiguration: { name: string } };
      };
    const fs = flowSchema(`${release}-leases`);
    expect(fs.spec.priorityLevelConfiguration.name).toBe('leader-election');
    const ours = fs.metadata.uid;
    const serviceAccounts = flowSchema('service-accounts').metadata.uid;
    const token = (
      await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        name: release,
        namespace: ns,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      })
    ).status?.token;
    const dispatcher = new Agent({ connect: { ca: cp().caPem } });
    const classifiedBy = async (path: string) => {
      const res = await request(`${cp().server}${path}`, {
        dispatcher,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
      await res.body.text();
      return { status: res.statusCode, schema: res.headers['x-kubernetes-pf-flowschema-uid'] };
    };
    try {
      // A LIST of Leases in the release namespace (the shard coordinator's call), and a GET of one
      // (the leader elector's; 404 here, still classified), by the release's ServiceAccount.
      const leases = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
      expect(await classifiedBy(`${leases}?labelSelector=readygate.dev%2Fshard-bucket`)).toEqual({
        status: 200,
        schema: ours,
      });
      expect(await classifiedBy(`${leases}/readygate`)).toEqual({ status: 404, schema: ours });
      // Its pod LIST stays where every ServiceAccount's requests go.
      expect(await classifiedBy(`/api/v1/namespaces/${other}/pods`)).toEqual({ status: 200, schema: serviceAccounts });
    } finally {
      await dispatcher.close();
    }
  });

  it("the Deployment's pods pass the namespace's restricted Pod Security admission", async () => {
    // kube-controller-manager creates them; PodSecurity would refuse a non-compliant pod (FailedCreate).
    // There is no scheduler or kubelet: they stay Pending, which is all this needs.
    const core = kc.makeApiClient(CoreV1Api);
    const pods = await eventually(async () => {
      const list = await core.listNamespacedPod({
        namespace: ns,
        labelSelector: `app.kubernetes.io/instance=${release}`,
      });
      expect(list.items).toHaveLength(2);
      return list.items;
    }, 60_000);
    // The control: the same namespace refuses a pod without the restricted settings.
    const plain = tool('kubectl', ['run', 'plain', '--image=example.invalid/x', '--namespace', ns, '--dry-run=server']);
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toContain('violates PodSecurity "restricted:latest"');
    for (const pod of pods) {
      expect(pod.spec?.serviceAccountName).toBe(release);
      expect(pod.spec?.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);
    }
  });

  it('default mode: the ServiceAccount can do exactly the listed verbs, cluster-wide, and nothing more', async () => {
    await expectPermissions({
      ...yes(watchVerbs(other)),
      ...yes(watchVerbs(watched)),
      ...yes(['list pods @*', 'watch pods @*', 'list probepolicies.readygate.dev @*']),
      ...yes(leaseVerbs()),
      ...no(forbidden(other)),
      ...no(execVerbs(other)),
      ...no(secretVerbs(other)),
      ...no(leaseForbidden()),
      ...no([
        'list nodes @*',
        'get namespaces @*',
        'list secrets @*',
        'update customresourcedefinitions.apiextensions.k8s.io @*',
      ]),
    });
  });

  it('exec.enabled=true (helm upgrade) adds pods/exec create+get and nothing else', async () => {
    ok(
      tool('helm', [
        'upgrade',
        release,
        CHART,
        '--namespace',
        ns,
        '--wait=false',
        ...NO_CRD,
        ...setFlags(['exec.enabled=true']),
      ]),
      'helm upgrade',
    );
    await expectPermissions({
      ...yes(watchVerbs(other)),
      ...yes(execVerbs(other)),
      ...yes(leaseVerbs()),
      ...no(forbidden(other)),
      ...no(secretVerbs(other)),
    });
  });

  it('tls.allowSecretCA=true (helm upgrade) adds secrets get and nothing else', async () => {
    ok(
      tool('helm', [
        'upgrade',
        release,
        CHART,
        '--namespace',
        ns,
        '--wait=false',
        ...NO_CRD,
        ...setFlags(['tls.allowSecretCA=true']),
      ]),
      'helm upgrade',
    );
    await expectPermissions({
      ...yes(watchVerbs(other)),
      ...yes(secretVerbs(other)),
      ...yes(leaseVerbs()),
      ...no(forbidden(other)),
      ...no(execVerbs(other)),
    });
  });

  it('tls.allowConfigMapCA=true (helm upgrade) adds configmaps get and nothing else', async () => {
    ok(
      tool('helm', [
        'upgrade',
        release,
        CHART,
        '--namespace',
        ns,
        '--wait=false',
        ...NO_CRD,
        ...setFlags(['tls.allowConfigMapCA=true']),
      ]),
      'helm upgrade',
    );
    const configMapGet = `get configmaps @${other}`;
    await expectPermissions({
      ...yes(watchVerbs(other)),
      ...yes([configMapGet]),
      ...yes(leaseVerbs()),
      ...no(forbidden(other).filter((q) => q !== configMapGet)),
      ...no([`list configmaps @${other}`, `watch configmaps @${other}`, `update configmaps @${other}`]),
      ...no(execVerbs(other)),
      ...no(secretVerbs(other)),
    });
  });

  it('namespace-scoped mode (helm upgrade): the watched namespace only, no cluster-wide read of pods', async () => {
    ok(
      tool('helm', [
        'upgrade',
        release,
        CHART,
        '--namespace',
        ns,
        '--wait=false',
        ...NO_CRD,
        ...setFlags([`watchNamespaces={${watched}}`]),
      ]),
      'helm upgrade',
    );
    const manifest = objectsOf(ok(tool('helm', ['get', 'manifest', release, '--namespace', ns]), 'helm get manifest'));
    expect(manifest.filter((o) => o.kind?.startsWith('Cluster'))).toEqual([]);
    const crb = tool('kubectl', ['get', 'clusterrolebinding', release]);
    expect(crb.stderr).toContain('NotFound');
    await expectPermissions({
      ...yes(watchVerbs(watched)),
      ...yes(leaseVerbs()),
      ...no(watchVerbs(other)),
      ...no(['list pods @*', 'watch pods @*', 'list probepolicies.readygate.dev @*']),
      ...no(forbidden(watched)),
      ...no(execVerbs(watched)),
      ...no(secretVerbs(watched)),
    });
  });

  it('helm uninstall removes the release and keeps the CRD', async () => {
    ok(tool('helm', ['uninstall', release, '--namespace', ns]), 'helm uninstall');
    installed = false;
    for (const [kind, where] of [
      ['deployment', ns],
      ['serviceaccount', ns],
      ['role', watched],
      ['rolebinding', ns],
    ] as const) {
      expect(tool('kubectl', ['get', kind, release, '--namespace', where]).stderr).toContain('NotFound');
    }
    for (const kind of ['mutatingadmissionpolicy', 'mutatingadmissionpolicybinding']) {
      expect(tool('kubectl', ['get', kind, `${release}-gate-injection`]).stderr).toContain('NotFound');
    }
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME });
    expect(crd.metadata?.name).toBe(CRD_NAME);
    await expectPermissions(no([`get pods @${watched}`, `create leases.coordination.k8s.io @${ns}`]));
  });
});

describe('helm install with watchNamespaces naming a namespace that does not exist', () => {
  it('refuses before applying anything, naming the namespace and the command that creates it', async () => {
    const where = await createNamespace(kc, 'chart-missing');
    const name = `readygate-${randomBytes(3).toString('hex')}`;
    const missing = `absent-${randomBytes(3).toString('hex')}`;
    try {
      const r = tool('helm', [
        'install',
        name,
        CHART,
        '--namespace',
        where,
        '--wait=false',
        ...NO_CRD,
        ...setFlags([`watchNamespaces={${where},${missing}}`, 'replicaCount=1']),
      ]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(
        `watchNamespaces names namespaces this cluster does not have: ${missing}. The chart puts a Role and RoleBinding in each, so create them first (kubectl create namespace ${missing})`,
      );
      // Nothing was applied: no release, no Role in the namespace that does exist.
      expect(tool('helm', ['status', name, '--namespace', where]).stderr).toContain('release: not found');
      expect(tool('kubectl', ['get', 'roles', '--namespace', where, '-o', 'name']).stdout).toBe('');
    } finally {
      tool('helm', ['uninstall', name, '--namespace', where]);
      await deleteNamespace(kc, where).catch(() => {});
    }
  });
});

describe('helm install with injection.enabled=false', () => {
  it('creates no MutatingAdmissionPolicy, and NOTES.txt says how to add the gate by hand', async () => {
    const where = await createNamespace(kc, 'chart-noinject');
    const name = `readygate-${randomBytes(3).toString('hex')}`;
    const install = ['install', name, CHART, '--namespace', where, '--wait=false', '--timeout', '60s'];
    try {
      const out = ok(
        tool('helm', [...install, ...NO_CRD, ...setFlags(['injection.enabled=false', 'replicaCount=1'])]),
        'helm install',
      );
      expect(out).toContain('1. Gate injection is off (injection.enabled=false).');
      expect(out).toContain("Add the condition to the pod template's readinessGates");
      const manifest = objectsOf(
        ok(tool('helm', ['get', 'manifest', name, '--namespace', where]), 'helm get manifest'),
      );
      expect(manifest.map((o) => o.kind)).toContain('Deployment');
      expect(manifest.filter((o) => o.kind?.startsWith('MutatingAdmissionPolicy'))).toEqual([]);
      expect(tool('kubectl', ['get', 'mutatingadmissionpolicy', `${name}-gate-injection`]).stderr).toContain(
        'NotFound',
      );
    } finally {
      tool('helm', ['uninstall', name, '--namespace', where]);
      await deleteNamespace(kc, where).catch(() => {});
    }
  });
});

/**
 * A copy of the chart whose CRD serves group <group> instead of readygate.dev (the shared CRD stays
 * untouched), edited by `edit` before it is written to files/.
 */
function chartWithCrd(dir: string, group: string, edit: (crd: CrdDoc) => void = () => {}): string {
  const chart = join(dir, 'readygate');
  rmSync(chart, { recursive: true, force: true });
  cpSync(CHART, chart, { recursive: true });
  const file = join(chart, 'files/readygate.dev_probepolicies.yaml');
  const crd = parse(readFileSync(file, 'utf8')) as CrdDoc;
  crd.metadata.name = `${crd.spec.names.plural}.${group}`;
  crd.spec.group = group;
  edit(crd);
  writeFileSync(file, stringify(crd));
  return chart;
}

interface CrdDoc {
  metadata: { name: string };
  spec: {
    group: string;
    names: { plural: string };
    versions: { name: string; additionalPrinterColumns: { name: string; type: string; jsonPath: string }[] }[];
  };
}

describe('the CRD as a template (crds.enabled): install, upgrade, uninstall with crds.keep', () => {
  it('adopts a CRD installed before, updates it on helm upgrade and keeps it on uninstall', async () => {
    const id = randomBytes(3).toString('hex');
    const group = `crd-${id}.readygate.dev`;
    const crdName = `probepolicies.${group}`;
    const name = `readygate-${id}`;
    const where = await createNamespace(kc, 'chart-crd');
    const dir = mkdtempSync(join(tmpdir(), 'readygate-crd-chart-'));
    const crds = kc.makeApiClient(ApiextensionsV1Api);
    const helmArgs = (verb: string, chart: string) => [
      verb,
      name,
      chart,
      '--namespace',
      where,
      '--wait=false',
      '--timeout',
      '60s',
      ...setFlags(['replicaCount=1', 'injection.enabled=false', 'admissionPolicy.enabled=false']),
    ];
    try {
      // As an older chart (crds/) left it: the CRD exists with no Helm ownership.
      let chart = chartWithCrd(dir, group);
      const plain = readFileSync(join(chart, 'files/readygate.dev_probepolicies.yaml'), 'utf8');
      ok(tool('kubectl', ['create', '-f', '-'], plain), 'kubectl create crd');
      const refused = tool('helm', helmArgs('install', chart));
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('invalid ownership metadata');
      tool('helm', ['uninstall', name, '--namespace', where]);
      // The chart README's adoption commands, then the install takes the CRD over.
      ok(tool('kubectl', ['label', 'crd', crdName, 'app.kubernetes.io/managed-by=Helm', '--overwrite']), 'label');
      ok(
        tool('kubectl', [
          'annotate',
          'crd',
          crdName,
          `meta.helm.sh/release-name=${name}`,
          `meta.helm.sh/release-namespace=${where}`,
        ]),
        'annotate',
      );
      ok(tool('helm', helmArgs('install', chart)), 'helm install');
      const installed = await crds.readCustomResourceDefinition({ name: crdName });
      expect(installed.metadata?.annotations?.['helm.sh/resource-policy']).toBe('keep');
      expect(installed.metadata?.labels?.['app.kubernetes.io/instance']).toBe(name);
      const columns = (c: typeof installed) => c.spec.versions[0]?.additionalPrinterColumns?.map((p) => p.name);
      expect(columns(installed)).not.toContain('Upgraded');

      // A new chart version changes the CRD: helm upgrade applies it, and kubectl gets the new column.
      chart = chartWithCrd(dir, group, (crd) =>
        crd.spec.versions[0]?.additionalPrinterColumns.push({
          name: 'Upgraded',
          type: 'string',
          jsonPath: '.spec.conditionType',
        }),
      );
      ok(tool('helm', helmArgs('upgrade', chart)), 'helm upgrade');
      const upgraded = await crds.readCustomResourceDefinition({ name: crdName });
      expect(columns(upgraded)).toContain('Upgraded');
      const policy = {
        apiVersion: `${group}/v1alpha1`,
        kind: 'ProbePolicy',
        metadata: { name: 'db', namespace: where },
        spec: {
          conditionType: 'readygate.dev/db',
          selector: { matchLabels: { app: 'db' } },
          probe: { tcpSocket: { port: 5432 } },
        },
      };
      await eventually(
        () => ok(tool('kubectl', ['apply', '-f', '-'], JSON.stringify(policy)), 'kubectl apply'),
        30_000,
      );
      await eventually(() => {
        const out = ok(tool('kubectl', ['get', crdName, '--namespace', where]), 'kubectl get');
        expect(out.split('\n')[0]).toMatch(/\bUPGRADED\b/);
        expect(out).toMatch(/^db\s.*readygate\.dev\/db/m);
      }, 30_000);

      // crds.keep: helm uninstall leaves the CRD and its objects.
      ok(tool('helm', ['uninstall', name, '--namespace', where]), 'helm uninstall');
      const kept = await crds.readCustomResourceDefinition({ name: crdName });
      expect(columns(kept)).toContain('Upgraded');
      expect(ok(tool('kubectl', ['get', crdName, 'db', '--namespace', where, '-o', 'name']), 'get').trim()).toBe(
        `probepolicy.${group}/db`,
      );
    } finally {
      tool('helm', ['uninstall', name, '--namespace', where]);
      tool('kubectl', ['delete', 'crd', crdName, '--ignore-not-found', '--wait=false']);
      await deleteNamespace(kc, where).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('server-side dry run of the rendered templates', () => {
  const modes: Record<string, string[]> = {
    default: [],
    'namespace-scoped, with NetworkPolicy': [
      'networkPolicy.enabled=true',
      'networkPolicy.probeTargets.ports={8080,http}',
    ],
    'exec and secret CA enabled, single replica without leader election': [
      'exec.enabled=true',
      'tls.allowSecretCA=true',
      'replicaCount=1',
      'leaderElection.enabled=false',
    ],
  };
  for (const [mode, set] of Object.entries(modes)) {
    it(`${mode}: the API server accepts every object`, () => {
      const values = mode.startsWith('namespace') ? [...set, `watchNamespaces={${watched},${other}}`] : set;
      const rendered = ok(
        tool('helm', ['template', 'dryrun', CHART, '--namespace', ns, ...setFlags(values)]),
        'helm template',
      );
      const objects = objectsOf(rendered);
      // Every namespaced object names its namespace, so the chart works without kubectl -n too.
      expect(objects.filter((o) => !CLUSTER_SCOPED.has(o.kind ?? '') && !o.metadata?.namespace)).toEqual([]);
      const out = ok(
        tool('kubectl', ['apply', '--dry-run=server', '-o', 'name', '-f', '-'], rendered),
        'kubectl apply --dry-run=server',
      );
      expect(out.trim().split('\n').sort()).toEqual(
        objects
          .map((o) => {
            const [group] = (o.apiVersion ?? '').split('/').reverse().slice(1);
            return `${o.kind?.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata?.name}`;
          })
          .sort(),
      );
    });
  }
});
