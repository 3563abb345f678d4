// `readygate release` as a user runs it after `helm uninstall` (`node src/main.ts release`), against
// the test control plane: which gates it sets True, that it writes nothing else (counted from the
// audit log), and that it refuses while an operator Lease is still renewed.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1PodCondition,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { heldSpec, type Lease, releasedLease, restLeaseSetClient } from '../../src/kube/lease.ts';
import { auditPosition, readAudit } from '../support/audit.ts';
import { writeKubeconfig } from '../support/control-plane.ts';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GATE = 'readygate.dev/release';
const OTHER = 'readygate.dev/second';
const FOREIGN = 'example.com/lb';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'src/main.ts'), ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let lease: Lease;
const dir = () => inject('controlPlane').dir;
const kubeconfig = () => inject('controlPlane').kubeconfigPath;
/** release against the test namespace, with the test namespace standing in for the operator's. */
const release = (...more: string[]) =>
  cli(['release', '-n', ns, '--kubeconfig', kubeconfig(), '--operator-namespace', ns, ...more]);

const pod = (name: string, gates: string[], extra: Partial<V1Pod['metadata']> = {}): V1Pod => ({
  metadata: { name, ...extra },
  spec: {
    readinessGates: gates.map((conditionType) => ({ conditionType })),
    containers: [{ name: 'app', image: 'example/app:1' }],
  },
});

const setConditions = (name: string, conditions: Record<string, string>) =>
  core.patchNamespacedPodStatus(
    {
      name,
      namespace: ns,
      body: {
        status: {
          conditions: Object.entries(conditions).map(([type, status]) => ({ type, status, reason: 'Test' })),
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );

const conditionOf = async (name: string, type: string): Promise<V1PodCondition | undefined> =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === type);

/** Patches of pods/status in the namespace after an audit position, by anyone, as pod names. */
const statusPatches = (after: number) =>
  readAudit(dir())
    .slice(after)
    .filter(
      (e) =>
        e.verb === 'patch' &&
        e.objectRef?.resource === 'pods' &&
        e.objectRef.subresource === 'status' &&
        e.objectRef.namespace === ns,
    )
    .map((e) => e.objectRef?.name)
    .sort();

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'release-cli');
  // Unscheduled pods stay Pending: live, as far as release is concerned, and nothing else writes them.
  await core.createNamespacedPod({ namespace: ns, body: pod('p-false', [GATE]) });
  await core.createNamespacedPod({ namespace: ns, body: pod('p-missing', [GATE]) });
  await core.createNamespacedPod({ namespace: ns, body: pod('p-true', [GATE]) });
  await core.createNamespacedPod({ namespace: ns, body: pod('p-two', [GATE, OTHER]) });
  await core.createNamespacedPod({ namespace: ns, body: pod('p-foreign', [FOREIGN]) });
  await core.createNamespacedPod({
    namespace: ns,
    body: pod('p-deleting', [GATE], { finalizers: ['readygate.dev/test-hold'] }),
  });
  await setConditions('p-false', { [GATE]: 'False' });
  await setConditions('p-true', { [GATE]: 'True' });
  await setConditions('p-two', { [GATE]: 'True', [OTHER]: 'False' });
  await setConditions('p-foreign', { [FOREIGN]: 'False' });
  await setConditions('p-deleting', { [GATE]: 'False' });
  await core.deleteNamespacedPod({ name: 'p-deleting', namespace: ns });
  lease = await restLeaseSetClient(kc, ns).create(
    { metadata: { name: 'readygate', namespace: ns }, spec: heldSpec('readygate-7d9c', 60_000, Date.now()) },
    AbortSignal.timeout(10_000),
  );
});

afterAll(async () => {
  await core
    .patchNamespacedPod(
      { name: 'p-deleting', namespace: ns, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )
    .catch(() => {});
  await deleteNamespace(kc, ns);
});

describe('readygate release', () => {
  it('refuses, writing nothing, while the operator Lease is held and renewed', async () => {
    const before = auditPosition(dir());
    const r = await release();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('readygate release: the readygate operator still runs: Lease readygate (held by');
    expect(r.stderr).toContain(`in namespace ${ns}`);
    const dry = await release('--dry-run');
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain(`would release pod ${ns}/p-false`);
    expect(dry.stderr).toContain('a run without --dry-run would refuse');
    expect(statusPatches(before)).toEqual([]);
  });

  it('with --dry-run once the Lease is handed back, prints what it would release and writes nothing', async () => {
    lease = await restLeaseSetClient(kc, ns).update(releasedLease(lease, Date.now()), AbortSignal.timeout(10_000));
    const before = auditPosition(dir());
    const r = await release('--dry-run');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      `would release pod ${ns}/p-false: ${GATE} (False)`,
      `would release pod ${ns}/p-missing: ${GATE} (no condition)`,
      `would release pod ${ns}/p-two: ${OTHER} (False)`,
      'dry run: would release 3 gates on 3 pods; nothing written',
      '',
    ]);
    // Every namespace without -n: the same pods are in the plan.
    const all = await cli(['release', '--dry-run', '--kubeconfig', kubeconfig(), '--operator-namespace', ns]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(`would release pod ${ns}/p-missing: ${GATE} (no condition)`);
    expect(statusPatches(before)).toEqual([]);
  });

  it('sets every readygate gate that is not True to True, reason Uninstalled, and touches nothing else', async () => {
    const trueBefore = await conditionOf('p-true', GATE);
    const before = auditPosition(dir());
    const r = await release();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('released 3 gates on 3 pods');
    // One patch per pod with something to release; none for True, foreign or terminating gates.
    expect(statusPatches(before)).toEqual(['p-false', 'p-missing', 'p-two']);
    for (const [name, type] of [
      ['p-false', GATE],
      ['p-missing', GATE],
      ['p-two', OTHER],
    ] as const) {
      expect(await conditionOf(name, type), name).toMatchObject({
        status: 'True',
        reason: 'Uninstalled',
        message: 'readygate was uninstalled: released by `readygate release` so the pod is not held NotReady',
      });
    }
    expect(await conditionOf('p-true', GATE)).toEqual(trueBefore);
    expect((await conditionOf('p-two', GATE))?.reason).toBe('Test');
    expect((await conditionOf('p-foreign', FOREIGN))?.status).toBe('False');
    expect((await conditionOf('p-deleting', GATE))?.status).toBe('False');

    // Run again: nothing left, nothing written.
    const again = auditPosition(dir());
    const second = await release();
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('released 0 gates on 0 pods\n');
    expect(statusPatches(again)).toEqual([]);
  });

  it('with --force, releases while a Lease is held', async () => {
    lease = await restLeaseSetClient(kc, ns).update(
      { ...lease, spec: heldSpec('readygate-7d9c', 60_000, Date.now(), lease.spec) },
      AbortSignal.timeout(10_000),
    );
    await setConditions('p-false', { [GATE]: 'False' });
    expect((await release()).code).toBe(1);
    const before = auditPosition(dir());
    const r = await release('--force');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`released pod ${ns}/p-false: ${GATE} (False)`);
    expect(statusPatches(before)).toEqual(['p-false']);
    expect((await conditionOf('p-false', GATE))?.reason).toBe('Uninstalled');
  });

  it('says exit code 3 when the cluster cannot be read, naming what it could not read', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
    const token = await core.createNamespacedServiceAccountToken({
      name: 'nobody',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const cp = inject('controlPlane');
    const path = join(cp.dir, `release-nobody-${ns}.kubeconfig`);
    writeKubeconfig(path, cp.server, cp.caPem, 'nobody', token.status?.token ?? '');
    const leases = await cli(['release', '-n', ns, '--kubeconfig', path, '--operator-namespace', ns]);
    expect(leases.code).toBe(3);
    expect(leases.stderr).toContain(
      `cannot tell whether the operator still runs: cannot list Leases in namespace ${ns}`,
    );
    expect(leases.stderr).toContain(
      `(Error from server (Forbidden): leases.coordination.k8s.io is forbidden: User "system:serviceaccount:${ns}:nobody" cannot list resource "leases"`,
    );
    const pods = await cli(['release', '-n', ns, '--kubeconfig', path, '--force']);
    expect(pods.code).toBe(3);
    // As kubectl says it, and nothing of client-node's ApiException dump.
    expect(pods.stderr).toBe(
      `Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:${ns}:nobody" cannot list resource "pods" in API group "" in the namespace "${ns}"\n`,
    );
  });
});
