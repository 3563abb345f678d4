// Helpers for integration tests: the admin client of the global control plane, plus kube-admin.ts.
import type { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { adminKubeConfigFrom } from './kube-admin.ts';

export {
  createNamespace,
  deleteNamespace,
  probePoliciesApi as probePolicies,
  statusMessage,
} from './kube-admin.ts';

/** A KubeConfig for the admin user of the control plane started by the global setup. */
export function adminKubeConfig(): KubeConfig {
  return adminKubeConfigFrom(inject('controlPlane').kubeconfigPath);
}
