// Test helpers usable outside vitest too (the demo): clients, namespaces, ProbePolicy calls.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';

/** A KubeConfig loaded from a kubeconfig file. */
export function adminKubeConfigFrom(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** Creates a namespace with a random suffix and returns its name. */
export async function createNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/** Deletes a namespace without waiting for its finalizers. */
export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).deleteNamespace({ name });
}

export const probePoliciesApi = (kc: KubeConfig) => {
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: 'readygate.dev', version: 'v1alpha1', plural: 'probepolicies' };
  return {
    create: (namespace: string, body: object) => api.createNamespacedCustomObject({ ...base, namespace, body }),
    get: (namespace: string, name: string) => api.getNamespacedCustomObject({ ...base, namespace, name }),
    replace: (namespace: string, name: string, body: object) =>
      api.replaceNamespacedCustomObject({ ...base, namespace, name, body }),
    delete: (namespace: string, name: string) => api.deleteNamespacedCustomObject({ ...base, namespace, name }),
  };
};

/** The API server's error message from a client-node ApiException (its JSON Status body). */
export function statusMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return String(err);
}
