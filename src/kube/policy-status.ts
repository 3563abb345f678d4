// Writes ProbePolicy status through the status subresource with a JSON merge patch.
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { GROUP, GROUP_VERSION, PLURAL, type ProbePolicyStatus } from '../api/types.ts';
import { isNotFound } from './errors.ts';

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Replaces the policy's status (merge patch; lists are replaced whole). A deleted policy is not an error. */
export async function patchPolicyStatus(
  api: CustomObjectsApi,
  ref: { namespace: string; name: string },
  status: ProbePolicyStatus,
): Promise<'patched' | 'not-found'> {
  try {
    await api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: GROUP_VERSION,
        plural: PLURAL,
        namespace: ref.namespace,
        name: ref.name,
        body: { status },
      },
      merge,
    );
    return 'patched';
  } catch (err) {
    if (isNotFound(err)) return 'not-found';
    throw err;
  }
}
