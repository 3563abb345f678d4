// What `helm template` renders for the chart's modes: the exact RBAC rules, the Deployment's
// arguments, security context and availability settings, labels, and the optional objects.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../../src/cli/options.ts';
import {
  grants,
  helm,
  type K8sObject,
  NAMESPACE,
  ofKind,
  one,
  type PolicyRule,
  render,
  templateArgs,
  toolsDir,
} from './helm.ts';

const WATCH = [
  'core/events:create',
  'core/events:patch',
  'core/pods/status:patch',
  'core/pods:get',
  'core/pods:list',
  'core/pods:watch',
  'events.k8s.io/events:create',
  'events.k8s.io/events:patch',
  'readygate.dev/probepolicies/status:get',
  'readygate.dev/probepolicies/status:patch',
  'readygate.dev/probepolicies/status:update',
  'readygate.dev/probepolicies:get',
  'readygate.dev/probepolicies:list',
  'readygate.dev/probepolicies:watch',
];
const EXEC = ['core/pods/exec:create', 'core/pods/exec:get'];
const SECRETS = ['core/secrets:get'];
const CONFIGMAPS = ['core/configmaps:get'];
// The leader Lease by name, and a LIST of every Lease (no resourceNames: a label selector cannot be
// limited by name) so that an unsharded leader waits for shard bucket Leases to go.
const LEASE = [
  'coordination.k8s.io/leases:create',
  'coordination.k8s.io/leases:get@readygate',
  'coordination.k8s.io/leases:update@readygate',
  'coordination.k8s.io/leases:list',
];
// Sharded, also: update of the bucket and member Leases, named after pod names (no resourceNames).
const SHARD_LEASES = ['coordination.k8s.io/leases:update'];
const sorted = (xs: string[]) => [...xs].sort();

/** Every grant of every Role and ClusterRole rendered, keyed "Kind namespace/name". */
function allGrants(objects: K8sObject[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const o of objects.filter((x) => x.kind === 'Role' || x.kind === 'ClusterRole')) {
    out.set(`${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, grants(o.rules as PolicyRule[]));
  }
  return out;
}

const deployment = (objects: K8sObject[]) => one(objects, 'Deployment', 'readygate');
const container = (objects: K8sObject[]) => deployment(objects).spec.template.spec.containers[0];
const args = (objects: K8sObject[]) => container(objects).args as string[];

beforeAll(() => {
  toolsDir();
}, 900_000);

describe('default values (cluster-wide, leader election, no opt-ins)', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render();
  });

  it('renders exactly the expected objects', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/readygate',
      'ClusterRoleBinding/readygate',
      'CustomResourceDefinition/probepolicies.readygate.dev',
      'Deployment/readygate',
      'FlowSchema/readygate-leases',
      'PodDisruptionBudget/readygate',
      'Role/readygate-leader-election',
      'RoleBinding/readygate-leader-election',
      'Service/readygate-metrics',
      'ServiceAccount/readygate',
      'ValidatingAdmissionPolicy/readygate-probepolicies',
      'ValidatingAdmissionPolicyBinding/readygate-probepolicies',
    ]);
  });

  it('grants exactly the watch rules cluster-wide and the Lease rules in the release namespace', () => {
    expect(Object.fromEntries(allGrants(objects))).toEqual({
      'ClusterRole /readygate': sorted(WATCH),
      [`Role ${NAMESPACE}/readygate-leader-election`]: sorted(LEASE),
    });
  });

  it('grants no pods/exec, no secrets, no delete and no write to pods besides pods/status patch', () => {
    const every = [...allGrants(objects).values()].flat();
    expect(every.filter((g) => g.includes('pods/exec') || g.includes('secrets') || g.includes('configmaps'))).toEqual(
      [],
    );
    expect(every.filter((g) => g.endsWith(':delete') || g.endsWith(':deletecollection'))).toEqual([]);
    expect(every.filter((g) => g.startsWith('core/pods:') && !/:(get|list|watch)$/.test(g))).toEqual([]);
    expect(every.filter((g) => g.includes('*'))).toEqual([]);
  });

  it('binds the roles to the ServiceAccount in the release namespace', () => {
    const subject = [{ kind: 'ServiceAccount', name: 'readygate', namespace: NAMESPACE }];
    expect(one(objects, 'ClusterRoleBinding').subjects).toEqual(subject);
    expect(one(objects, 'ClusterRoleBinding').roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'readygate',
    });
    const lease = one(objects, 'RoleBinding', 'readygate-leader-election');
    expect(lease.metadata.namespace).toBe(NAMESPACE);
    expect(lease.subjects).toEqual(subject);
    expect(lease.roleRef.name).toBe('readygate-leader-election');
  });

  it('runs `readygate run` with leader election and the health port on all interfaces', () => {
    expect(args(objects)).toEqual([
      'run',
      '--health-addr=0.0.0.0:8081',
      '--log-level=info',
      '--log-format=json',
      '--probe-concurrency=256',
      '--workers=4',
      '--pod-workers=32',
      '--max-period-stretch=10',
      '--api-qps=200',
      '--api-burst=400',
      '--resync=10m',
      '--shutdown-grace=10s',
      '--release-orphaned-gates-after=60s',
      '--allowed-condition-prefixes=readygate.dev/',
      '--leader-elect',
      `--leader-election-namespace=${NAMESPACE}`,
      '--leader-election-id=readygate',
      '--lease-duration=15s',
      '--renew-deadline=10s',
      '--retry-period=2s',
    ]);
    // The operator accepts every argument the chart renders (a refused flag would crash-loop).
    const opts = parseRunOptions(args(objects).slice(1), {});
    expect(opts.allowedConditionPrefixes).toEqual(['readygate.dev/']);
    expect(opts.leaderElect).toBe(true);
    expect(opts.releaseOrphanedGatesAfterMs).toBe(60_000);
    expect(container(objects).env).toEqual([
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]);
    expect(container(objects).image).toBe('ghcr.io/readygate/readygate:0.1.0');
  });

  it('meets the restricted Pod Security Standard', () => {
    const pod = deployment(objects).spec.template.spec;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container(objects).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }]);
  });

  it('is highly available: 2 replicas, surge-first rollout, PDB, soft anti-affinity, probes', () => {
    const d = deployment(objects);
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const selector = { 'app.kubernetes.io/name': 'readygate', 'app.kubernetes.io/instance': 'readygate' };
    expect(d.spec.selector.matchLabels).toEqual(selector);
    expect(one(objects, 'PodDisruptionBudget').spec).toEqual({ minAvailable: 1, selector: { matchLabels: selector } });
    expect(d.spec.template.spec.affinity.podAntiAffinity).toEqual({
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } },
        },
      ],
    });
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(30);
    expect(d.spec.template.spec.priorityClassName).toBeUndefined();
    const c = container(objects);
    expect(c.ports).toEqual([{ name: 'health', containerPort: 8081, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
  });

  it('puts the standard labels on every object', () => {
    for (const o of objects) {
      expect(o.metadata.labels, `${o.kind}/${o.metadata.name}`).toMatchObject({
        'app.kubernetes.io/name': 'readygate',
        'app.kubernetes.io/instance': 'readygate',
        'app.kubernetes.io/version': '0.1.0',
        'app.kubernetes.io/managed-by': 'Helm',
        'helm.sh/chart': 'readygate-0.1.0',
      });
    }
    expect(deployment(objects).spec.template.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'readygate' });
  });

  it('exposes the health port as the metrics Service', () => {
    expect(one(objects, 'Service').spec.ports).toEqual([
      { name: 'http-metrics', port: 8081, targetPort: 'health', protocol: 'TCP' },
    ]);
  });
});

describe('namespace-scoped mode (watchNamespaces)', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render(['watchNamespaces={shop,billing}']);
  });

  it('creates nothing cluster-scoped', () => {
    expect(ofKind(objects, 'ClusterRole')).toEqual([]);
    expect(ofKind(objects, 'ClusterRoleBinding')).toEqual([]);
    expect(ofKind(objects, 'FlowSchema')).toEqual([]);
  });

  it('grants the watch rules in each listed namespace only, and the Lease rules in the release namespace', () => {
    expect(Object.fromEntries(allGrants(objects))).toEqual({
      'Role shop/readygate': sorted(WATCH),
      'Role billing/readygate': sorted(WATCH),
      [`Role ${NAMESPACE}/readygate-leader-election`]: sorted(LEASE),
    });
    for (const ns of ['shop', 'billing']) {
      const rb = ofKind(objects, 'RoleBinding').find((o) => o.metadata.namespace === ns);
      expect(rb?.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'readygate' });
      expect(rb?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'readygate', namespace: NAMESPACE }]);
    }
  });

  it('passes --namespaces', () => {
    expect(args(objects)).toContain('--namespaces=shop,billing');
  });
});

describe('opt-ins', () => {
  it('exec.enabled adds pods/exec create+get and --enable-exec, nothing else', () => {
    const objects = render(['exec.enabled=true']);
    expect(allGrants(objects).get('ClusterRole /readygate')).toEqual(sorted([...WATCH, ...EXEC]));
    expect(args(objects)).toContain('--enable-exec');
    expect(args(objects)).not.toContain('--allow-secret-ca');
  });

  it('tls.allowSecretCA adds secrets get and --allow-secret-ca, nothing else', () => {
    const objects = render(['tls.allowSecretCA=true']);
    expect(allGrants(objects).get('ClusterRole /readygate')).toEqual(sorted([...WATCH, ...SECRETS]));
    expect(args(objects)).toContain('--allow-secret-ca');
    expect(args(objects)).not.toContain('--enable-exec');
  });

  it('tls.allowConfigMapCA adds configmaps get and no operator flag', () => {
    const objects = render(['tls.allowConfigMapCA=true']);
    expect(allGrants(objects).get('ClusterRole /readygate')).toEqual(sorted([...WATCH, ...CONFIGMAPS]));
    expect(args(render(['tls.allowConfigMapCA=true']))).toEqual(args(render()));
  });

  it('both opt-ins in namespace mode stay inside the listed namespaces', () => {
    const objects = render([
      'watchNamespaces={shop}',
      'exec.enabled=true',
      'tls.allowSecretCA=true',
      'tls.allowConfigMapCA=true',
    ]);
    expect(Object.fromEntries(allGrants(objects))).toEqual({
      'Role shop/readygate': sorted([...WATCH, ...EXEC, ...SECRETS, ...CONFIGMAPS]),
      [`Role ${NAMESPACE}/readygate-leader-election`]: sorted(LEASE),
    });
  });
});

describe('sharding (sharding.enabled)', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render(['sharding.enabled=true', 'replicaCount=3']);
  });

  it('passes --shard-buckets after the leader election flags, with POD_NAME from metadata.name', () => {
    expect(args(objects).slice(-7)).toEqual([
      '--leader-elect',
      `--leader-election-namespace=${NAMESPACE}`,
      '--leader-election-id=readygate',
      '--lease-duration=15s',
      '--renew-deadline=10s',
      '--retry-period=2s',
      '--shard-buckets=16',
    ]);
    expect(container(objects).env).toContainEqual({
      name: 'POD_NAME',
      valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    // The operator accepts the rendered flags with the POD_NAME the kubelet sets.
    const opts = parseRunOptions(args(objects).slice(1), { POD_NAME: 'readygate-5d9c7-x2x7q' });
    expect(opts.shardBuckets).toBe(16);
    expect(args(render(['sharding.enabled=true', 'sharding.buckets=3'])).at(-1)).toBe('--shard-buckets=3');
  });

  it('off by default: no flag, no Lease update beyond the leader Lease', () => {
    expect(args(render()).filter((a) => a.startsWith('--shard'))).toEqual([]);
    expect(allGrants(render()).get(`Role ${NAMESPACE}/readygate-leader-election`)).toEqual(sorted(LEASE));
  });

  it('adds leases update, without names, to the Role in the release namespace only', () => {
    expect(Object.fromEntries(allGrants(objects))).toEqual({
      'ClusterRole /readygate': sorted(WATCH),
      [`Role ${NAMESPACE}/readygate-leader-election`]: sorted([...LEASE, ...SHARD_LEASES]),
    });
    const namespaced = render(['sharding.enabled=true', 'watchNamespaces={shop}']);
    expect(Object.fromEntries(allGrants(namespaced))).toEqual({
      'Role shop/readygate': sorted(WATCH),
      [`Role ${NAMESPACE}/readygate-leader-election`]: sorted([...LEASE, ...SHARD_LEASES]),
    });
    expect(one(objects, 'Role', 'readygate-leader-election').metadata.namespace).toBe(NAMESPACE);
  });

  it('the PDB defaults to maxUnavailable 1, and an explicit value still wins', () => {
    const selector = { 'app.kubernetes.io/name': 'readygate', 'app.kubernetes.io/instance': 'readygate' };
    expect(one(objects, 'PodDisruptionBudget').spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: selector },
    });
    const pdb = (set: string[]) =>
      one(render(['sharding.enabled=true', 'replicaCount=3', ...set]), 'PodDisruptionBudget').spec;
    expect(pdb(['podDisruptionBudget.minAvailable=2'])).toEqual({
      minAvailable: 2,
      selector: { matchLabels: selector },
    });
    expect(pdb(['podDisruptionBudget.maxUnavailable=2'])).toEqual({
      maxUnavailable: 2,
      selector: { matchLabels: selector },
    });
    expect(ofKind(render(['sharding.enabled=true', 'replicaCount=1']), 'PodDisruptionBudget')).toEqual([]);
  });

  it('keeps the surge-first rollout and soft anti-affinity', () => {
    const d = deployment(objects);
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(d.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(
      1,
    );
  });
});

describe('admission policy (no confused deputy) and condition prefixes', () => {
  const policyOf = (objects: K8sObject[]) => one(objects, 'ValidatingAdmissionPolicy', 'readygate-probepolicies');
  const bindingOf = (objects: K8sObject[]) =>
    one(objects, 'ValidatingAdmissionPolicyBinding', 'readygate-probepolicies');
  const expressions = (objects: K8sObject[]) =>
    (policyOf(objects).spec.validations as { expression: string }[]).map((v) => v.expression);

  it('matches ProbePolicy create and update (not the status subresource) and fails closed', () => {
    const spec = policyOf(render()).spec;
    expect(policyOf(render()).apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(spec.failurePolicy).toBe('Fail');
    expect(spec.matchConstraints).toEqual({
      // A named version (not "*") is what kube-controller-manager type-checks the expressions against.
      matchPolicy: 'Equivalent',
      resourceRules: [
        {
          apiGroups: ['readygate.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['CREATE', 'UPDATE'],
          resources: ['probepolicies'],
        },
      ],
    });
    expect(spec.variables).toContainEqual({
      name: 'specChanged',
      expression: "request.operation == 'CREATE' || object.spec != oldObject.spec",
    });
  });

  it("asks the authorizer for the requester's own pods/exec, Secret get and ConfigMap get", () => {
    const [exec, secret, configMap, prefix] = expressions(render());
    expect(exec).toContain(
      "authorizer.group('').resource('pods').subresource('exec').namespace(request.namespace).check('create').allowed()",
    );
    expect(exec).toContain('has(object.spec.probe.exec)');
    expect(secret).toContain(
      "authorizer.group('').resource('secrets').namespace(request.namespace).name(variables.secretRef.value().name).check('get').allowed()",
    );
    expect(configMap).toContain(
      "authorizer.group('').resource('configmaps').namespace(request.namespace).name(variables.configMapRef.value().name).check('get').allowed()",
    );
    expect(prefix).toContain('variables.allowedPrefixes.exists(p, object.spec.conditionType.startsWith(p))');
    for (const e of [exec, secret, configMap, prefix]) expect(e).toMatch(/^!variables\.specChanged \|\| /);
    const messages = (policyOf(render()).spec.validations as { messageExpression: string; reason: string }[]).map(
      (v) => [v.reason, v.messageExpression],
    );
    expect(messages.map(([reason]) => reason)).toEqual(['Forbidden', 'Forbidden', 'Forbidden', 'Invalid']);
    expect(messages[0]![1]).toContain("' may not create pods/exec in namespace '");
    expect(messages[1]![1]).toContain("' may not get secrets \"'");
    expect(messages[2]![1]).toContain("' may not get configmaps \"'");
  });

  it('renders conditions.allowedPrefixes into the CEL list and the operator flag', () => {
    const defaults = render();
    expect(policyOf(defaults).spec.variables).toContainEqual({
      name: 'allowedPrefixes',
      expression: '["readygate.dev/"]',
    });
    const custom = render(['conditions.allowedPrefixes={example.com/,team.example.org/db-}']);
    expect(policyOf(custom).spec.variables).toContainEqual({
      name: 'allowedPrefixes',
      expression: '["example.com/","team.example.org/db-"]',
    });
    expect(args(custom)).toContain('--allowed-condition-prefixes=example.com/,team.example.org/db-');
    expect(args(custom).filter((a) => a.startsWith('--allowed-condition-prefixes'))).toHaveLength(1);
  });

  it('binds cluster-wide by default, and to the watched namespaces only in namespace mode', () => {
    const cluster = bindingOf(render()).spec;
    expect(cluster).toEqual({ policyName: 'readygate-probepolicies', validationActions: ['Deny'] });
    expect(bindingOf(render(['watchNamespaces={shop,billing}'])).spec).toEqual({
      policyName: 'readygate-probepolicies',
      validationActions: ['Deny'],
      matchResources: {
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop', 'billing'] }],
        },
      },
    });
  });

  it('admissionPolicy.enabled=false renders neither object and keeps the operator flag', () => {
    const objects = render(['admissionPolicy.enabled=false']);
    expect(ofKind(objects, 'ValidatingAdmissionPolicy')).toEqual([]);
    expect(ofKind(objects, 'ValidatingAdmissionPolicyBinding')).toEqual([]);
    expect(args(objects)).toContain('--allowed-condition-prefixes=readygate.dev/');
  });

  it('names the policy and binding after the release', () => {
    const objects = render(['fullnameOverride=gate']);
    expect(one(objects, 'ValidatingAdmissionPolicyBinding', 'gate-probepolicies').spec.policyName).toBe(
      'gate-probepolicies',
    );
    expect(one(objects, 'ValidatingAdmissionPolicy', 'gate-probepolicies').metadata.labels).toMatchObject({
      'app.kubernetes.io/instance': 'readygate',
    });
  });
});

describe('API Priority and Fairness for the Lease calls (leaderElection.flowSchema)', () => {
  it("serves the ServiceAccount's Lease calls in the release namespace at the leader-election level", () => {
    const fs = one(render(), 'FlowSchema', 'readygate-leases');
    expect(fs.apiVersion).toBe('flowcontrol.apiserver.k8s.io/v1');
    expect(fs.spec).toEqual({
      priorityLevelConfiguration: { name: 'leader-election' },
      matchingPrecedence: 250,
      distinguisherMethod: { type: 'ByUser' },
      rules: [
        {
          subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: 'readygate', namespace: NAMESPACE } }],
          resourceRules: [
            {
              apiGroups: ['coordination.k8s.io'],
              resources: ['leases'],
              namespaces: [NAMESPACE],
              verbs: ['get', 'list', 'create', 'update'],
            },
          ],
        },
      ],
    });
  });

  it('takes another level and precedence, and is left out when disabled or without leader election', () => {
    const custom = render([
      'leaderElection.flowSchema.priorityLevel=workload-high',
      'leaderElection.flowSchema.matchingPrecedence=500',
    ]);
    expect(one(custom, 'FlowSchema').spec).toMatchObject({
      priorityLevelConfiguration: { name: 'workload-high' },
      matchingPrecedence: 500,
    });
    expect(ofKind(render(['leaderElection.flowSchema.enabled=false']), 'FlowSchema')).toEqual([]);
    expect(ofKind(render(['replicaCount=1', 'leaderElection.enabled=false']), 'FlowSchema')).toEqual([]);
  });

  it('refuses a precedence the API server would refuse', () => {
    for (const p of ['0', '10000']) {
      const r = helm(templateArgs([`leaderElection.flowSchema.matchingPrecedence=${p}`]));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('/leaderElection/flowSchema/matchingPrecedence');
    }
  });
});

describe('other settings', () => {
  it('a single replica without leader election: no Lease role, no PDB, Recreate strategy', () => {
    const objects = render(['replicaCount=1', 'leaderElection.enabled=false']);
    expect([...allGrants(objects).keys()]).toEqual(['ClusterRole /readygate']);
    expect(ofKind(objects, 'PodDisruptionBudget')).toEqual([]);
    expect(deployment(objects).spec.strategy).toEqual({ type: 'Recreate' });
    expect(args(objects).filter((a) => a.startsWith('--leader'))).toEqual([]);
  });

  it('priorityClassName, hard anti-affinity, grace period, digest and extra args', () => {
    const objects = render([
      'priorityClassName=system-cluster-critical',
      'podAntiAffinity=hard',
      'terminationGracePeriodSeconds=45',
      `image.digest=sha256:${'a'.repeat(64)}`,
      'extraArgs={--log-level=debug}',
    ]);
    const pod = deployment(objects).spec.template.spec;
    expect(pod.priorityClassName).toBe('system-cluster-critical');
    expect(pod.terminationGracePeriodSeconds).toBe(45);
    expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe(
      'kubernetes.io/hostname',
    );
    expect(container(objects).image).toBe(`ghcr.io/readygate/readygate@sha256:${'a'.repeat(64)}`);
    expect(args(objects).at(-1)).toBe('--log-level=debug');
  });

  it('logFormat=text becomes --log-format=text, which the operator takes; the schema refuses other formats', () => {
    const objects = render(['logFormat=text']);
    expect(args(objects)).toContain('--log-format=text');
    expect(parseRunOptions(args(objects).slice(1), {}).logFormat).toBe('text');
    const r = helm(templateArgs(['logFormat=pretty']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('logFormat');
  });

  it('ServiceMonitor scrapes the metrics Service port', () => {
    const objects = render(['metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.labels.release=prom']);
    const sm = one(objects, 'ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels?.release).toBe('prom');
    expect(sm.spec.endpoints).toEqual([
      { port: 'http-metrics', path: '/metrics', honorLabels: true, interval: '30s', scrapeTimeout: '10s' },
    ]);
    expect(sm.spec.selector.matchLabels).toEqual(one(objects, 'Service').spec.selector);
  });

  it('metrics.auth: --metrics-auth, the reviews it needs, a metrics-reader ClusterRole and a token for the ServiceMonitor', () => {
    const off = render(['metrics.serviceMonitor.enabled=true']);
    expect(args(off)).not.toContain('--metrics-auth');
    expect(ofKind(off, 'ClusterRole').map((r) => r.metadata.name)).toEqual(['readygate']);
    expect(one(off, 'ServiceMonitor').spec.endpoints[0]).not.toHaveProperty('bearerTokenFile');

    for (const mode of [[], ['watchNamespaces={shop}']]) {
      const objects = render(['metrics.auth.enabled=true', 'metrics.serviceMonitor.enabled=true', ...mode]);
      expect(args(objects)).toContain('--metrics-auth');
      expect(parseRunOptions(args(objects).slice(1), {}).metricsAuth).toBe(true);
      const reviews = one(objects, 'ClusterRole', 'readygate-metrics-auth');
      expect(grants(reviews.rules)).toEqual([
        'authentication.k8s.io/tokenreviews:create',
        'authorization.k8s.io/subjectaccessreviews:create',
      ]);
      const bound = one(objects, 'ClusterRoleBinding', 'readygate-metrics-auth');
      expect(bound.roleRef.name).toBe('readygate-metrics-auth');
      expect(bound.subjects).toEqual([{ kind: 'ServiceAccount', name: 'readygate', namespace: NAMESPACE }]);
      expect(one(objects, 'ClusterRole', 'readygate-metrics-reader').rules).toEqual([
        { nonResourceURLs: ['/metrics'], verbs: ['get'] },
      ]);
      expect(one(objects, 'ServiceMonitor').spec.endpoints[0].bearerTokenFile).toBe(
        '/var/run/secrets/kubernetes.io/serviceaccount/token',
      );
    }
  });

  it('ServiceMonitor and PodMonitor carry relabelings and metricRelabelings', () => {
    const relabel = [
      'relabelings[0].sourceLabels={__meta_kubernetes_pod_node_name}',
      'relabelings[0].targetLabel=node',
      'metricRelabelings[0].sourceLabels={__name__}',
      'metricRelabelings[0].regex=nodejs_.*',
      'metricRelabelings[0].action=drop',
    ];
    const expected = {
      relabelings: [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }],
      metricRelabelings: [{ sourceLabels: ['__name__'], regex: 'nodejs_.*', action: 'drop' }],
    };
    const sm = one(
      render(['metrics.serviceMonitor.enabled=true', ...relabel.map((r) => `metrics.serviceMonitor.${r}`)]),
      'ServiceMonitor',
    );
    expect(sm.spec.endpoints[0]).toMatchObject(expected);
    const pm = one(
      render(['metrics.podMonitor.enabled=true', ...relabel.map((r) => `metrics.podMonitor.${r}`)]),
      'PodMonitor',
    );
    expect(pm.spec.podMetricsEndpoints[0]).toMatchObject(expected);
  });

  it("PodMonitor scrapes the pods' health port, without the Service, and not with the ServiceMonitor", () => {
    const objects = render([
      'metrics.podMonitor.enabled=true',
      'metrics.podMonitor.labels.release=prom',
      'metrics.service.enabled=false',
    ]);
    expect(ofKind(objects, 'ServiceMonitor')).toEqual([]);
    expect(ofKind(objects, 'Service')).toEqual([]);
    const pm = one(objects, 'PodMonitor');
    expect(pm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pm.metadata.labels?.release).toBe('prom');
    expect(pm.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
    expect(pm.spec.podMetricsEndpoints).toEqual([
      { port: 'health', path: '/metrics', honorLabels: true, interval: '30s', scrapeTimeout: '10s' },
    ]);
    const ports = container(objects).ports as { name: string }[];
    expect(ports.map((p) => p.name)).toContain('health');
    expect(pm.spec.selector.matchLabels).toEqual(deployment(objects).spec.selector.matchLabels);
    const both = helm(templateArgs(['metrics.podMonitor.enabled=true', 'metrics.serviceMonitor.enabled=true']));
    expect(both.status).not.toBe(0);
    expect(both.stderr).toContain('would scrape every replica twice: enable one');
  });

  it('NetworkPolicy: ingress to the health port only; egress to the API server, DNS and probe targets', () => {
    const objects = render(['networkPolicy.enabled=true']);
    const np = one(objects, 'NetworkPolicy').spec;
    expect(np.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.ingress).toEqual([{ ports: [{ port: 'health', protocol: 'TCP' }] }]);
    expect(np.egress).toEqual([
      {
        ports: [
          { port: 443, protocol: 'TCP' },
          { port: 6443, protocol: 'TCP' },
        ],
      },
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      { to: [{ namespaceSelector: {} }] },
    ]);
  });

  it('NetworkPolicy in namespace mode limits probe targets to the watched namespaces and listed ports', () => {
    const objects = render([
      'networkPolicy.enabled=true',
      'watchNamespaces={shop}',
      'networkPolicy.probeTargets.ports={8080,http}',
      'networkPolicy.apiServer.cidrs={10.0.0.1/32}',
    ]);
    const egress = one(objects, 'NetworkPolicy').spec.egress;
    expect(egress[0].to).toEqual([{ ipBlock: { cidr: '10.0.0.1/32' } }]);
    expect(egress[2]).toEqual({
      to: [
        {
          namespaceSelector: {
            matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop'] }],
          },
        },
      ],
      ports: [
        { port: 8080, protocol: 'TCP' },
        { port: 'http', protocol: 'TCP' },
      ],
    });
  });

  it('an existing ServiceAccount gets the bindings and no ServiceAccount is created', () => {
    const objects = render(['serviceAccount.create=false', 'serviceAccount.name=ops']);
    expect(ofKind(objects, 'ServiceAccount')).toEqual([]);
    expect(one(objects, 'ClusterRoleBinding').subjects).toEqual([
      { kind: 'ServiceAccount', name: 'ops', namespace: NAMESPACE },
    ]);
    expect(deployment(objects).spec.template.spec.serviceAccountName).toBe('ops');
  });
});

describe('extension values other charts accept', () => {
  it('commonLabels land on every object, the pods and the namespace Roles; podLabels win on the pods', () => {
    const objects = render([
      'commonLabels.team=payments',
      'commonLabels.tier=platform',
      'podLabels.tier=operator',
      'watchNamespaces={shop}',
      'metrics.serviceMonitor.enabled=true',
      'metrics.serviceMonitor.labels.release=prom',
      'metrics.serviceMonitor.labels.team=observability',
      'networkPolicy.enabled=true',
    ]);
    expect(objects.length).toBeGreaterThan(8);
    for (const o of objects.filter((x) => x.kind !== 'ServiceMonitor')) {
      expect(o.metadata.labels, `${o.kind}/${o.metadata.name}`).toMatchObject({
        team: 'payments',
        tier: 'platform',
        'app.kubernetes.io/name': 'readygate',
      });
    }
    expect(one(objects, 'ServiceMonitor').metadata.labels).toMatchObject({
      team: 'observability',
      tier: 'platform',
      release: 'prom',
      'app.kubernetes.io/instance': 'readygate',
    });
    const d = deployment(objects);
    expect(d.spec.template.metadata.labels).toEqual({
      'helm.sh/chart': 'readygate-0.1.0',
      'app.kubernetes.io/name': 'readygate',
      'app.kubernetes.io/instance': 'readygate',
      'app.kubernetes.io/version': '0.1.0',
      'app.kubernetes.io/component': 'operator',
      'app.kubernetes.io/part-of': 'readygate',
      'app.kubernetes.io/managed-by': 'Helm',
      team: 'payments',
      tier: 'operator',
    });
    // The selector stays the immutable pair.
    expect(d.spec.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'readygate',
      'app.kubernetes.io/instance': 'readygate',
    });
  });

  it('deploymentAnnotations go on the Deployment, not the pods', () => {
    const d = deployment(render([], ['--set-string', 'deploymentAnnotations.reloader\\.stakater\\.com/auto=true']));
    expect(d.metadata.annotations).toEqual({ 'reloader.stakater.com/auto': 'true' });
    expect(d.spec.template.metadata.annotations).toBeUndefined();
    expect(deployment(render()).metadata.annotations).toBeUndefined();
  });

  it('revisionHistoryLimit defaults to 5 and can be set', () => {
    expect(deployment(render()).spec.revisionHistoryLimit).toBe(5);
    expect(deployment(render(['revisionHistoryLimit=0'])).spec.revisionHistoryLimit).toBe(0);
  });

  it('extraVolumes and extraVolumeMounts come after the tmp volume; the root filesystem stays read-only', () => {
    const objects = render([
      'extraVolumes[0].name=ca',
      'extraVolumes[0].configMap.name=corp-ca',
      'extraVolumeMounts[0].name=ca',
      'extraVolumeMounts[0].mountPath=/etc/ssl/corp',
      'extraVolumeMounts[0].readOnly=true',
    ]);
    const pod = deployment(objects).spec.template.spec;
    expect(pod.volumes).toEqual([
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      { name: 'ca', configMap: { name: 'corp-ca' } },
    ]);
    expect(container(objects).volumeMounts).toEqual([
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'ca', mountPath: '/etc/ssl/corp', readOnly: true },
    ]);
    expect(container(objects).securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
  });

  it('extraObjects render as maps or strings, through tpl', () => {
    const objects = render(
      [],
      [
        '--set-json',
        `extraObjects=${JSON.stringify([
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: '{{ include "readygate.fullname" . }}-extra', namespace: '{{ .Release.Namespace }}' },
            data: { replicas: '{{ .Values.replicaCount }}' },
          },
          'apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra-secret\n  labels:\n    {{- include "readygate.labels" . | nindent 4 }}\nstringData:\n  ns: {{ .Release.Namespace }}\n',
        ])}`,
      ],
    );
    expect(one(objects, 'ConfigMap', 'readygate-extra')).toMatchObject({
      metadata: { namespace: NAMESPACE },
      data: { replicas: '2' },
    });
    const secret = one(objects, 'Secret', 'extra-secret');
    expect(secret.stringData).toEqual({ ns: NAMESPACE });
    expect(secret.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': 'readygate' });
    expect(ofKind(render(), 'ConfigMap')).toEqual([]);
  });

  it('PodDisruptionBudget: minAvailable 1 when neither is set, else exactly the one given', () => {
    const pdb = (set: string[]) => one(render(set), 'PodDisruptionBudget').spec;
    expect(pdb([])).toMatchObject({ minAvailable: 1 });
    expect(pdb(['podDisruptionBudget.maxUnavailable=1'])).not.toHaveProperty('minAvailable');
    expect(pdb(['podDisruptionBudget.maxUnavailable=1'])).toMatchObject({ maxUnavailable: 1 });
    expect(pdb(['podDisruptionBudget.maxUnavailable=50%'])).toMatchObject({ maxUnavailable: '50%' });
    expect(pdb(['podDisruptionBudget.minAvailable=0'])).toMatchObject({ minAvailable: 0 });
    expect(pdb(['podDisruptionBudget.minAvailable=0'])).not.toHaveProperty('maxUnavailable');
    expect(pdb(['podDisruptionBudget.minAvailable=50%'])).toMatchObject({ minAvailable: '50%' });
  });
});

describe('Kubernetes version', () => {
  it('renders for 1.29 and for managed pre-release versions, and refuses 1.28 with a clear error', () => {
    // 1.29 has no admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (see the next test).
    expect(render(['admissionPolicy.enabled=false'], ['--kube-version', '1.29.0']).length).toBeGreaterThan(0);
    expect(render([], ['--kube-version', 'v1.30.2-gke.1']).length).toBeGreaterThan(0);
    const old = helm(templateArgs([], ['--kube-version', '1.28.9']));
    expect(old.status).not.toBe(0);
    expect(old.stderr).toContain(
      'chart requires kubeVersion: >=1.29.0-0 which is incompatible with Kubernetes v1.28.9',
    );
  });

  it('refuses the admission policy on 1.29, where it does not exist, instead of dropping it silently', () => {
    const r = helm(templateArgs([], ['--kube-version', '1.29.9']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('admissionPolicy.enabled=true needs Kubernetes 1.30 or newer');
    expect(r.stderr).toContain('set admissionPolicy.enabled=false');
    const objects = render([], ['--kube-version', 'v1.30.0-eks-1']);
    expect(ofKind(objects, 'ValidatingAdmissionPolicy')).toHaveLength(1);
  });

  it('renders offline without --kube-version: helm is built with the Kubernetes version it ships for', () => {
    expect(render().length).toBeGreaterThan(0);
  });
});
