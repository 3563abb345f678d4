// The only write the operator makes to pods: its own gate conditions on pods/status.
import type { KubeConfig } from '@kubernetes/client-node';
import type { DesiredPodCondition, ObservedPodCondition } from '../api/conditions.ts';
import { rfc3339 } from '../api/conditions.ts';
import { isConflict, isNotFound, statusCode } from './errors.ts';
import { rest } from './rest.ts';

/** `conflict`: the name belongs to another pod now; `stale`: the resourceVersion precondition failed. */
export type PatchOutcome = 'patched' | 'not-found' | 'conflict' | 'stale';

/**
 * Builds the strategic merge patch that sets exactly the given conditions (merged by type, so
 * Ready and other controllers' conditions are untouched), with the pod UID as precondition.
 * lastTransitionTime moves only when the status changes, as the kubelet does for its own.
 */
export function conditionPatch(
  uid: string,
  changes: readonly { desired: DesiredPodCondition; observed: ObservedPodCondition | undefined }[],
  nowMs: number,
  resourceVersion?: string,
): object {
  const now = rfc3339(nowMs);
  return {
    // A resourceVersion in a patch is a precondition too: 409 unless the pod is still at it.
    metadata: resourceVersion === undefined ? { uid } : { uid, resourceVersion },
    status: {
      conditions: changes.map(({ desired, observed }) => ({
        type: desired.type,
        status: desired.status,
        reason: desired.reason,
        message: desired.message,
        ...(observed?.status === desired.status && observed.lastTransitionTime ? {} : { lastTransitionTime: now }),
      })),
    },
  };
}

/**
 * Patches the conditions onto pods/status. A deleted pod or one replaced under the same name is
 * reported, not thrown; other errors are thrown for the retry policy. The UID in a patch body
 * acts as a precondition by validation: a different UID is refused with 422 Invalid on
 * metadata.uid ("field is immutable"), not the 409 an update's precondition gives.
 */
export async function patchPodConditions(
  kc: KubeConfig,
  ref: { namespace: string; name: string; uid: string },
  body: object,
  signal?: AbortSignal,
): Promise<PatchOutcome> {
  try {
    // Through rest(): the response (the whole pod) is not needed, so it is not turned into a model.
    await rest(kc, {
      method: 'PATCH',
      path: `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/pods/${encodeURIComponent(ref.name)}/status`,
      body,
      contentType: 'application/strategic-merge-patch+json',
      signal,
    });
    return 'patched';
  } catch (err) {
    if (isNotFound(err)) return 'not-found';
    // A patch retries conflicts on the server: a 409 comes back only from a resourceVersion precondition.
    if (isConflict(err)) return 'stale';
    if (isUidMismatch(err)) return 'conflict';
    throw err;
  }
}

/** A 422 whose only complaint is metadata.uid: the name now belongs to another pod. */
function isUidMismatch(err: unknown): boolean {
  if (statusCode(err) !== 422) return false;
  const body = (err as { body?: unknown }).body;
  try {
    const causes = (JSON.parse(String(body)) as { details?: { causes?: { field?: string }[] } }).details?.causes;
    return causes !== undefined && causes.length > 0 && causes.every((c) => c.field === 'metadata.uid');
  } catch {
    return false;
  }
}
