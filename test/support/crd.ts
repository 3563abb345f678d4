// Installs the ProbePolicy CRD from crds/ and waits until the API server serves it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, KubeConfig, loadYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';

export const CRD_FILE = fileURLToPath(new URL('../../crds/readygate.dev_probepolicies.yaml', import.meta.url));

/** Creates or replaces the CRD and resolves once it is Established (throws with its conditions otherwise). */
export async function installCrd(kubeconfigPath: string, timeoutMs = 30_000): Promise<V1CustomResourceDefinition> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const api = kc.makeApiClient(ApiextensionsV1Api);
  // loadYaml maps x-kubernetes-* keys onto the client's model; a plain YAML parse would be
  // serialised without them (the CEL rules and int-or-string markers would silently vanish).
  const body = loadYaml<V1CustomResourceDefinition>(readFileSync(CRD_FILE, 'utf8'));
  const name = body.metadata?.name ?? '';
  try {
    await api.createCustomResourceDefinition({ body });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    const current = await api.readCustomResourceDefinition({ name });
    body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion };
    await api.replaceCustomResourceDefinition({ name, body });
  }
  const deadline = Date.now() + timeoutMs;
  let crd: V1CustomResourceDefinition | undefined;
  while (Date.now() < deadline) {
    crd = await api.readCustomResourceDefinition({ name });
    const established = crd.status?.conditions?.find((c) => c.type === 'Established');
    if (established?.status === 'True') return crd;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CRD ${name} not Established: ${JSON.stringify(crd?.status?.conditions)}`);
}
