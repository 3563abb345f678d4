// Gate injection (templates/gate-injection.yaml): when `injection.enabled` renders the
// MutatingAdmissionPolicy and its binding, what they hold, the refusals, and what NOTES.txt says.
// test/integration/gate-injection.test.ts runs the rendered objects on kube-apiserver.
import { beforeAll, describe, expect, it } from 'vitest';
import { helm, type K8sObject, NAMESPACE, ofKind, one, render, renderNotes, templateArgs, toolsDir } from './helm.ts';

const MAP_API = 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy';
const WITH_MAP = ['--api-versions', MAP_API];
const NAME = 'readygate-gate-injection';
const injection = (objects: K8sObject[]) =>
  objects.filter((o) => o.kind === 'MutatingAdmissionPolicy' || o.kind === 'MutatingAdmissionPolicyBinding');
const names = (objects: K8sObject[]) => injection(objects).map((o) => `${o.kind}/${o.metadata.name}`);
const BOTH = [`MutatingAdmissionPolicy/${NAME}`, `MutatingAdmissionPolicyBinding/${NAME}`];

beforeAll(() => {
  toolsDir();
}, 900_000);

describe('when the chart renders gate injection', () => {
  it('auto: not where the cluster lacks MutatingAdmissionPolicy v1 (helm template offline)', () => {
    expect(names(render())).toEqual([]);
  });

  it('auto: both objects where the cluster serves it', () => {
    expect(names(render([], WITH_MAP))).toEqual(BOTH);
  });

  it('auto on Kubernetes 1.33: renders cleanly, without them', () => {
    const r = helm(templateArgs([], ['--kube-version', '1.33.0']));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The CRD's field descriptions mention gate injection by name; no other document may.
    const docs = r.stdout.split(/^---$/m).filter((d) => !/^kind: CustomResourceDefinition$/m.test(d));
    expect(docs.length).toBeGreaterThan(5);
    expect(docs.join('---')).not.toContain('MutatingAdmissionPolicy');
  });

  it("grants the operator's ServiceAccount nothing for it: the RBAC is the same with and without", () => {
    const rbac = (objects: K8sObject[]) =>
      objects.filter((o) => ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'].includes(o.kind));
    const on = rbac(render([], WITH_MAP));
    expect(on).toEqual(rbac(render(['injection.enabled=false'], WITH_MAP)));
    expect(JSON.stringify(on)).not.toContain('admissionregistration');
  });

  it('false: never, even where the cluster serves it', () => {
    expect(names(render(['injection.enabled=false'], WITH_MAP))).toEqual([]);
  });

  it('true: both objects', () => {
    expect(names(render(['injection.enabled=true'], WITH_MAP))).toEqual(BOTH);
  });

  it('true where the cluster does not serve it: refused, naming auto and false', () => {
    const r = helm(templateArgs(['injection.enabled=true'], ['--kube-version', '1.33.0']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      'injection.enabled=true needs a cluster that serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36 or newer), and this one (Kubernetes v1.33.0) does not list it among its API versions: set injection.enabled=auto or false',
    );
    // helm template without a cluster lacks it too, and is told how to render anyway.
    const offline = helm(templateArgs(['injection.enabled=true']));
    expect(offline.status).not.toBe(0);
    expect(offline.stderr).toContain(`pass --api-versions ${MAP_API}`);
  });

  it('the schema refuses injection.enabled=maybe, listing the values it takes', () => {
    const r = helm(templateArgs(['injection.enabled=maybe']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("at '/injection/enabled': value must be one of 'auto', true, false");
    // Past the schema (--skip-schema-validation) the template refuses it too, instead of reading it as false.
    const skipped = helm(templateArgs(['injection.enabled=maybe'], ['--skip-schema-validation', ...WITH_MAP]));
    expect(skipped.status).not.toBe(0);
    expect(skipped.stderr).toContain('injection.enabled must be auto, true or false, got "maybe"');
  });
});

describe('the MutatingAdmissionPolicy and its binding', () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render([], WITH_MAP);
  });
  const policy = () => one(objects, 'MutatingAdmissionPolicy', NAME).spec;
  const binding = () => one(objects, 'MutatingAdmissionPolicyBinding', NAME).spec;

  it('never blocks pod creation and may run again: failurePolicy Ignore, reinvocationPolicy IfNeeded', () => {
    expect(policy().failurePolicy).toBe('Ignore');
    expect(policy().reinvocationPolicy).toBe('IfNeeded');
  });

  it('runs on pod creation only, once per ProbePolicy of the namespace, and allows none', () => {
    expect(policy().paramKind).toEqual({ apiVersion: 'readygate.dev/v1alpha1', kind: 'ProbePolicy' });
    expect(policy().matchConstraints).toEqual({
      resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
    });
    expect(binding().policyName).toBe(NAME);
    expect(binding().paramRef).toEqual({ selector: {}, parameterNotFoundAction: 'Allow' });
  });

  it('excludes kube-system, the release namespace, opted-out namespaces and mirror pods', () => {
    expect(binding().matchResources).toEqual({
      namespaceSelector: {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NAMESPACE] },
          { key: 'readygate.dev/injection', operator: 'NotIn', values: ['disabled'] },
        ],
      },
    });
    expect(policy().matchConditions).toEqual([
      {
        name: 'not-a-mirror-pod',
        expression: "!('kubernetes.io/config.mirror' in object.metadata.?annotations.orValue({}))",
      },
    ]);
  });

  it('injects only conditionTypes with an allowed prefix, and never twice', () => {
    const inject = policy().variables.find((v: { name: string }) => v.name === 'inject').expression;
    expect(inject).toContain('variables.allowedPrefixes.exists(p, params.spec.conditionType.startsWith(p))');
    expect(inject).toContain("params.spec.?injection.orValue('Enabled') == 'Enabled'");
    expect(inject).toContain(
      '!object.spec.?readinessGates.orValue([]).exists(g, g.conditionType == params.spec.conditionType)',
    );
    const custom = render(['conditions.allowedPrefixes={example.com/,team.example/}'], WITH_MAP);
    const prefixes = one(custom, 'MutatingAdmissionPolicy').spec.variables.find(
      (v: { name: string }) => v.name === 'allowedPrefixes',
    );
    expect(prefixes.expression).toBe('["example.com/","team.example/"]');
  });

  it('watchNamespaces adds an In requirement on the namespace name', () => {
    const scoped = render(['watchNamespaces={shop,billing}'], WITH_MAP);
    expect(
      one(scoped, 'MutatingAdmissionPolicyBinding').spec.matchResources.namespaceSelector.matchExpressions,
    ).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NAMESPACE] },
      { key: 'readygate.dev/injection', operator: 'NotIn', values: ['disabled'] },
      { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop', 'billing'] },
    ]);
  });

  it('carries the chart labels', () => {
    for (const o of injection(objects)) {
      expect(o.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': 'readygate' });
      expect(o.metadata.namespace).toBeUndefined();
    }
  });

  it('is cluster-scoped and named after the release', () => {
    expect(ofKind(render(['fullnameOverride=gates'], WITH_MAP), 'MutatingAdmissionPolicy')[0]?.metadata.name).toBe(
      'gates-gate-injection',
    );
  });
});

describe('NOTES.txt', () => {
  const HAND = ['readinessGates:', '- conditionType: readygate.dev/payments-db'];

  it('with injection on: says so, names the policy and where it does not apply, and the gate by hand', () => {
    const notes = renderNotes([], WITH_MAP);
    expect(notes).toContain(`1. Gate injection is on: a pod created from now on gets the conditionType`);
    expect(notes).toContain(`(by the MutatingAdmissionPolicy\n   ${NAME})`);
    expect(notes).toContain(`Nothing is injected in kube-system, in ${NAMESPACE} (the release namespace)`);
    expect(notes).toContain('readygate.dev/injection=disabled');
    expect(notes).toContain('spec.injection: Disabled');
    for (const line of HAND) expect(notes).toContain(line);
  });

  it('with injection.enabled=false: says it is off and how to add the gate by hand', () => {
    const notes = renderNotes(['injection.enabled=false'], WITH_MAP);
    expect(notes).toContain('1. Gate injection is off (injection.enabled=false).');
    expect(notes).toContain("Add the condition to the pod template's readinessGates");
    expect(notes).not.toContain('MutatingAdmissionPolicy');
    for (const line of HAND) expect(notes).toContain(line);
  });

  it('on a cluster without MutatingAdmissionPolicy v1: says why it is off and how to add the gate', () => {
    const notes = renderNotes([], ['--kube-version', '1.33.0']);
    expect(notes).toContain(
      '1. Gate injection is off (this cluster, Kubernetes v1.33.0, does not serve\n   admissionregistration.k8s.io/v1 MutatingAdmissionPolicy; Kubernetes 1.36 and newer do).',
    );
    for (const line of HAND) expect(notes).toContain(line);
  });
});
