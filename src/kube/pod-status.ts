// The only write the operator makes to pods: its own gate conditions on pods/status.
import { type CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { DesiredPodCondition, ObservedPodCondition } from '../api/conditions.ts';
import { rfc3339 } from '../api/conditions.ts';
import { isConflict, isNotFound } from './errors.ts';

export type PatchOutcome = 'patched' | 'not-found' | 'conflict';

const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/**
 * Builds the strategic merge patch that sets exactly the given conditions (merged by type, so
 * Ready and other controllers' conditions are untouched), with the pod UID as precondition.
 * lastTransitionTime moves only when the status changes, as the kubelet does for its own.
 */
export function conditionPatch(
  uid: string,
  changes: readonly { desired: DesiredPodCondition; observed: ObservedPodCondition | undefined }[],
  nowMs: number,
): object {
  const now = rfc3339(nowMs);
  return {
    metadata: { uid },
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
 * Patches the conditions onto pods/status. A deleted pod or one replaced under the same name
 * (UID mismatch → 409) is reported, not thrown; other errors are thrown for the retry policy.
 */
export async function patchPodConditions(
  core: CoreV1Api,
  ref: { namespace: string; name: string; uid: string },
  body: object,
): Promise<PatchOutcome> {
  try {
    await core.patchNamespacedPodStatus({ namespace: ref.namespace, name: ref.name, body }, smp);
    return 'patched';
  } catch (err) {
    if (isNotFound(err)) return 'not-found';
    if (isConflict(err)) return 'conflict';
    throw err;
  }
}
