// Writes ProbePolicy status through the status subresource with a JSON merge patch.
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, GROUP_VERSION, PLURAL, type ProbePolicyStatus } from '../api/types.ts';
import { isNotFound } from './errors.ts';
import { rest } from './rest.ts';

/**
 * Replaces the policy's status (merge patch; lists are replaced whole). A deleted policy is not
 * an error. Through rest() so the write takes a signal (the fence aborts it, src/safety/fencing.ts).
 */
export async function patchPolicyStatus(
  kc: KubeConfig,
  ref: { namespace: string; name: string },
  status: ProbePolicyStatus,
  signal?: AbortSignal,
): Promise<'patched' | 'not-found'> {
  const ns = encodeURIComponent(ref.namespace);
  const name = encodeURIComponent(ref.name);
  try {
    await rest(kc, {
      method: 'PATCH',
      path: `/apis/${GROUP}/${GROUP_VERSION}/namespaces/${ns}/${PLURAL}/${name}/status`,
      // A merge patch removes a field only when it is null: optional fields absent from `status`
      // (effectivePeriodSeconds once overload ends, ungatedPods once spec.injection is Disabled)
      // are cleared explicitly.
      body: { status: { effectivePeriodSeconds: null, ungatedPods: null, ...status } },
      contentType: 'application/merge-patch+json',
      signal,
    });
    return 'patched';
  } catch (err) {
    if (isNotFound(err)) return 'not-found';
    throw err;
  }
}
