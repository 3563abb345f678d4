// The chart's ValidatingAdmissionPolicy against the real kube-apiserver: a ProbePolicy author must
// hold the permissions the operator would use on their behalf (pods/exec, get on the Secret or
// ConfigMap named), and conditionType must carry an allowed prefix. Two users, by impersonation:
// alice may create pods/exec and get Secret "ca"; bob may only edit ProbePolicies.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminKubeConfig, createNamespace, deleteNamespace, statusMessage } from '../support/kube.ts';
import { eventually } from '../support/wait.ts';

const CHART = fileURLToPath(new URL('../../charts/readygate', import.meta.url));
const ADMISSION_KINDS = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const release = `vap-${randomBytes(3).toString('hex')}`;

type Spec = Record<string, unknown>;
type Policy = KubernetesObject & { metadata: { name: string }; spec: Spec };
const tcp = (): Spec => ({
  conditionType: 'readygate.dev/db',
  selector: { matchLabels: { app: 'db' } },
  probe: { tcpSocket: { port: 5432 } },
});
const exec = (): Spec => ({ ...tcp(), probe: { exec: { command: ['pg_isready', '-q'] } } });
const https = (tls: Spec): Spec => ({
  ...tcp(),
  probe: { httpGet: { port: 8443, scheme: 'HTTPS', tls: { verify: true, ...tls } } },
});

let admin: KubeConfig;
let ns: string; // the namespace the release watches: its binding applies here
let outside: string; // a namespace the release does not watch
let admissionObjects: KubernetesObject[] = [];

/** The admin's KubeConfig, impersonating user (the API server authorizes the request as that user). */
function as(user: string): KubeConfig {
  const kc = new KubeConfig();
  const cluster = admin.getCurrentCluster();
  const self = admin.getCurrentUser();
  if (!cluster || !self) throw new Error('the admin kubeconfig has no current cluster or user');
  kc.loadFromClusterAndUser(cluster, { ...self, name: `as-${user}`, impersonateUser: user });
  return kc;
}

const policies = (kc: KubeConfig) => {
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: 'readygate.dev', version: 'v1alpha1', plural: 'probepolicies' };
  return {
    create: (namespace: string, name: string, spec: Spec, dryRun?: 'All') =>
      api.createNamespacedCustomObject({
        ...base,
        namespace,
        dryRun,
        body: { apiVersion: 'readygate.dev/v1alpha1', kind: 'ProbePolicy', metadata: { name }, spec },
      }) as Promise<Policy>,
    get: (namespace: string, name: string) =>
      api.getNamespacedCustomObject({ ...base, namespace, name }) as Promise<Policy>,
    replace: (namespace: string, body: Policy) =>
      api.replaceNamespacedCustomObject({ ...base, namespace, name: body.metadata.name, body }) as Promise<Policy>,
  };
};

/** The API server's refusal of a request: its HTTP status and message (fails if it was accepted). */
async function refusal(request: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  const err = await request.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the API server accepted the request').toBeDefined();
  return { code: (err as { code?: number }).code, message: statusMessage(err) };
}

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/** A Role in namespace with the rules, bound to each of users. */
async function grant(namespace: string, name: string, rules: Rule[], users: string[]) {
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
  for (const user of users) {
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: `${name}-${user}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      },
    });
  }
}

const EDIT_POLICIES: Rule[] = [
  { apiGroups: ['readygate.dev'], resources: ['probepolicies'], verbs: ['get', 'create', 'update'] },
];

beforeAll(async () => {
  admin = adminKubeConfig();
  ns = await createNamespace(admin, 'vap');
  outside = await createNamespace(admin, 'vap-outside');
  const cp = inject('controlPlane');
  const rendered = execFileSync(
    `${cp.binDir}/helm`,
    ['template', release, CHART, '--namespace', 'readygate-system', '--set', `watchNamespaces={${ns}}`],
    { encoding: 'utf8' },
  );
  admissionObjects = (loadAllYaml(rendered) as KubernetesObject[]).filter(
    (o) => o && ADMISSION_KINDS.has(o.kind ?? ''),
  );
  expect(admissionObjects.map((o) => o.kind).sort()).toEqual([...ADMISSION_KINDS].sort());
  const client = KubernetesObjectApi.makeApiClient(admin);
  for (const o of admissionObjects) await client.create(o);

  for (const where of [ns, outside]) await grant(where, 'edit-probepolicies', EDIT_POLICIES, ['alice', 'bob']);
  await grant(
    ns,
    'exec-and-ca',
    [
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] },
      { apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['get'], resourceNames: ['ca'] },
    ],
    ['alice'],
  );
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'ca' }, stringData: { 'ca.crt': PEM } },
  });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'ca' }, data: { 'ca.crt': PEM } } });

  // A binding takes a moment to reach the admission plugin, and new RBAC the authorizer's cache:
  // wait for the first observable refusal and admission (dry runs, so that nothing is left behind).
  await eventually(
    async () => {
      const r = await refusal(policies(as('bob')).create(ns, 'probe-readiness', exec(), 'All'));
      expect(r.message).toContain('pods/exec');
      await policies(as('alice')).create(ns, 'probe-readiness', exec(), 'All');
    },
    60_000,
    250,
  );
});

afterAll(async () => {
  const client = KubernetesObjectApi.makeApiClient(admin);
  for (const o of [...admissionObjects].reverse()) {
    await client.delete(o).catch(() => {});
  }
  for (const name of [ns, outside]) if (name) await deleteNamespace(admin, name).catch(() => {});
});

describe('ValidatingAdmissionPolicy from the chart', () => {
  it('type-checks every expression against the ProbePolicy schema', async () => {
    const policy = admissionObjects.find((o) => o.kind === 'ValidatingAdmissionPolicy')!;
    const client = KubernetesObjectApi.makeApiClient(admin);
    const live = await eventually(async () => {
      const got = (await client.read(
        policy as KubernetesObject & { metadata: { name: string } },
      )) as KubernetesObject & {
        status?: { observedGeneration?: number; typeChecking?: { expressionWarnings?: unknown[] } };
      };
      expect(got.status?.observedGeneration).toBe(got.metadata?.generation);
      return got;
    });
    expect(live.status?.typeChecking?.expressionWarnings ?? []).toEqual([]);
  });

  it('refuses an exec probe from a user who may not create pods/exec, naming the permission', async () => {
    const r = await refusal(policies(as('bob')).create(ns, 'bob-exec', exec()));
    expect(r.code).toBe(403);
    expect(r.message).toContain(`spec.probe.exec: bob may not create pods/exec in namespace ${ns}`);
  });

  it('admits the same exec probe from a user who may create pods/exec', async () => {
    const created = await policies(as('alice')).create(ns, 'alice-exec', exec());
    expect(created.spec.probe).toMatchObject({ exec: { command: ['pg_isready', '-q'] } });
  });

  it('refuses a caSecretRef to a Secret the user may not get, naming the Secret permission', async () => {
    const r = await refusal(
      policies(as('bob')).create(ns, 'bob-secret', https({ caSecretRef: { name: 'ca', key: 'ca.crt' } })),
    );
    expect(r.code).toBe(403);
    expect(r.message).toContain(`spec.probe.httpGet.tls.caSecretRef: bob may not get secrets "ca" in namespace ${ns}`);
  });

  it('checks the Secret by name: get on "ca" admits "ca" and not "other"', async () => {
    await policies(as('alice')).create(ns, 'alice-secret', https({ caSecretRef: { name: 'ca', key: 'ca.crt' } }));
    const r = await refusal(
      policies(as('alice')).create(ns, 'alice-other', https({ caSecretRef: { name: 'other', key: 'ca.crt' } })),
    );
    expect(r.message).toContain('alice may not get secrets "other"');
  });

  it('checks a caConfigMapRef the same way', async () => {
    const ref = { caConfigMapRef: { name: 'ca', key: 'ca.crt' } };
    const r = await refusal(policies(as('bob')).create(ns, 'bob-configmap', https(ref)));
    expect(r.code).toBe(403);
    expect(r.message).toContain(
      `spec.probe.httpGet.tls.caConfigMapRef: bob may not get configmaps "ca" in namespace ${ns}`,
    );
    await policies(as('alice')).create(ns, 'alice-configmap', https(ref));
  });

  it('admits a tcp probe from a user who may only edit ProbePolicies', async () => {
    const created = await policies(as('bob')).create(ns, 'bob-tcp', tcp());
    expect(created.metadata.name).toBe('bob-tcp');
  });

  it('refuses a conditionType outside the allowed prefixes, naming them', async () => {
    const r = await refusal(
      policies(as('alice')).create(ns, 'foreign', { ...tcp(), conditionType: 'target-health.elbv2.k8s.aws/tg' }),
    );
    expect(r.code).toBe(422);
    expect(r.message).toContain('spec.conditionType: target-health.elbv2.k8s.aws/tg does not start with a prefix');
    expect(r.message).toContain('(readygate.dev/)');
    // A prefix is matched as a whole, with its '/': a longer domain does not pass.
    const lookalike = await refusal(
      policies(as('alice')).create(ns, 'lookalike', { ...tcp(), conditionType: 'readygate.devil.example/x' }),
    );
    expect(lookalike.code).toBe(422);
  });

  it('on update, checks a changed spec and lets a metadata-only change through', async () => {
    const bob = policies(as('bob'));
    // bob labels alice's exec policy: the spec is unchanged, nothing new is reached.
    const current = await bob.get(ns, 'alice-exec');
    const labelled = await bob.replace(ns, { ...current, metadata: { ...current.metadata, labels: { team: 'db' } } });
    expect(labelled.metadata.labels).toEqual({ team: 'db' });
    // bob points alice's command at other pods: refused.
    const retarget = await refusal(
      bob.replace(ns, { ...labelled, spec: { ...labelled.spec, selector: { matchLabels: { app: 'web' } } } }),
    );
    expect(retarget.code).toBe(403);
    expect(retarget.message).toContain('bob may not create pods/exec');
    // bob turns his tcp policy into an exec one: refused.
    const own = await bob.get(ns, 'bob-tcp');
    const toExec = await refusal(bob.replace(ns, { ...own, spec: { ...own.spec, probe: exec().probe } }));
    expect(toExec.message).toContain('bob may not create pods/exec');
    // alice may change her own exec policy.
    const mine = await policies(as('alice')).get(ns, 'alice-exec');
    await policies(as('alice')).replace(ns, {
      ...mine,
      spec: { ...mine.spec, selector: { matchLabels: { app: 'web' } } },
    });
  });

  it("does not apply outside the release's watched namespaces", async () => {
    const created = await policies(as('bob')).create(outside, 'bob-exec', exec());
    expect(created.metadata.namespace).toBe(outside);
  });
});
