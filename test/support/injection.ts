// The chart's gate injection (charts/readygate/templates/gate-injection.yaml) on the test API
// server: render it with `helm template`, apply the MutatingAdmissionPolicy and its binding, and
// wait until admission applies it. Usable outside vitest (the demo).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
} from '@kubernetes/client-node';
import { eventually } from './wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KINDS = new Set(['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding']);
export const MAP_API_VERSION = 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy';

export interface GateInjection {
  objects: KubernetesObject[];
  /** Deletes the policy and binding (pods created afterwards get no gates). */
  uninstall(): Promise<void>;
}

/**
 * Installs the chart's gate injection as release `release` in `namespace`, with --set values. Tests
 * share one API server: pass watchNamespaces so the binding matches only the test's namespaces.
 */
export async function installGateInjection(
  admin: KubeConfig,
  binDir: string,
  opts: { release?: string; namespace?: string; set?: string[] } = {},
): Promise<GateInjection> {
  const rendered = execFileSync(
    join(binDir, 'helm'),
    [
      'template',
      opts.release ?? 'readygate',
      join(ROOT, 'charts/readygate'),
      '--namespace',
      opts.namespace ?? 'readygate-system',
      '--api-versions',
      MAP_API_VERSION,
      ...(opts.set ?? []).flatMap((s) => ['--set', s]),
    ],
    { encoding: 'utf8' },
  );
  const objects = (loadAllYaml(rendered) as KubernetesObject[]).filter((o) => o && KINDS.has(o.kind ?? ''));
  if (objects.length !== 2) throw new Error(`the chart rendered ${objects.length} gate injection objects, not 2`);
  const client = KubernetesObjectApi.makeApiClient(admin);
  for (const obj of objects) await client.create(obj);
  return {
    objects,
    uninstall: async () => {
      for (const obj of objects) {
        await client.delete(obj).catch((err: unknown) => {
          if ((err as { code?: number }).code !== 404) throw err;
        });
      }
    },
  };
}

/**
 * The readiness gates the API server would give a pod with these labels in namespace now: a
 * server-side dry-run create, which runs admission and stores nothing.
 */
export async function gatesAdmitted(admin: KubeConfig, namespace: string, labels: Record<string, string>) {
  const pod = await admin.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace,
    dryRun: 'All',
    body: {
      metadata: { generateName: 'dry-run-', labels },
      spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
    },
  });
  return (pod.spec?.readinessGates ?? []).map((g) => g.conditionType);
}

/**
 * Waits until admission gives a pod with these labels exactly `expected` gates: the API server
 * applies a new MutatingAdmissionPolicy, binding or ProbePolicy a moment after it is stored.
 */
export async function waitForGates(
  admin: KubeConfig,
  namespace: string,
  labels: Record<string, string>,
  expected: string[],
  timeoutMs = 30_000,
): Promise<void> {
  const want = JSON.stringify([...expected].sort());
  await eventually(
    async () => {
      const got = JSON.stringify((await gatesAdmitted(admin, namespace, labels)).sort());
      if (got !== want) {
        throw new Error(`a pod labelled ${JSON.stringify(labels)} in ${namespace} gets gates ${got}, not ${want}`);
      }
    },
    timeoutMs,
    200,
  );
}
