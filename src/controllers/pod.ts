// The pod reconciler: for one pod key, compare the gate conditions the probe manager wants with
// what the pod says, and patch only the differences, in one strategic merge patch on pods/status.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { type DesiredPodCondition, type ObservedPodCondition, podConditionDiffers } from '../api/conditions.ts';
import { GROUP } from '../api/types.ts';
import { statusCode } from '../kube/errors.ts';
import type { EventSink } from '../kube/events.ts';
import { conditionPatch, type PatchOutcome, patchPodConditions } from '../kube/pod-status.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ReconcileContext, Request, Result } from '../runtime/controller.ts';
import type { FairTokenBucket } from '../runtime/fair-limiter.ts';
import { type Fence, NotLeaderError } from '../safety/fencing.ts';
import type { Caches } from './policy.ts';
import type { ProbeManager } from './probe-manager.ts';
import { isLive, selects } from './targets.ts';

export interface PodReconcilerDeps {
  caches: Caches;
  probes: ProbeManager;
  kc: KubeConfig;
  events: EventSink;
  /** The API write budget, shared round robin between namespaces (src/runtime/fair-limiter.ts). */
  writeLimiter: FairTokenBucket;
  metrics: Metrics;
  /**
   * The fence a write to this pod goes through: the leader's, or sharded, its bucket's
   * (docs/sharding.md). None leaves the process unless this replica holds that Lease.
   */
  fenceFor: (podUid: string) => Fence;
  /** Sharded: whether this replica owns the pod now; a refused write to a pod it no longer owns is no error. */
  owns?: (podUid: string) => boolean;
  now: () => number;
}

/** How soon a pod whose cache lagged a guarded write is looked at again. */
export const STALE_RETRY_MS = 250;

/** Pure: the conditions to patch, i.e. the desired ones that differ from the pod's. */
export function conditionChanges(
  pod: V1Pod,
  desired: readonly DesiredPodCondition[],
): { desired: DesiredPodCondition; observed: ObservedPodCondition | undefined }[] {
  const observed = new Map((pod.status?.conditions ?? []).map((c) => [c.type, c as ObservedPodCondition]));
  return desired
    .map((d) => ({ desired: d, observed: observed.get(d.type) }))
    .filter(({ desired: d, observed: o }) => podConditionDiffers(d, o));
}

/** Returns a view of pod whose conditions include (by type) the given ones. */
function withConditions(pod: V1Pod, conditions: readonly DesiredPodCondition[]): V1Pod {
  const rest = (pod.status?.conditions ?? []).filter((c) => !conditions.some((w) => w.type === c.type));
  return { ...pod, status: { ...pod.status, conditions: [...rest, ...conditions] } };
}

/** Pure: readygate.dev gate types on the pod that no policy in its namespace provides. */
export function unprovidedGates(pod: V1Pod, caches: Caches): string[] {
  const gates = (pod.spec?.readinessGates ?? []).map((g) => g.conditionType).filter((t) => t.startsWith(`${GROUP}/`));
  if (gates.length === 0) return [];
  const policies = caches.policies.list(pod.metadata?.namespace ?? '');
  return gates.filter((t) => !policies.some((p) => p.spec.conditionType === t && selects(p, pod)));
}

/** Warns, by Event, of each readygate gate on the pod that no policy provides. */
function warnUnprovided(pod: V1Pod, req: Request, deps: PodReconcilerDeps): void {
  for (const type of unprovidedGates(pod, deps.caches)) {
    deps.events.record(
      { apiVersion: 'v1', kind: 'Pod', namespace: req.namespace, name: req.name, uid: pod.metadata?.uid ?? '' },
      'Warning',
      'NoProbePolicy',
      `readiness gate ${type} is not provided by any ProbePolicy in namespace ${req.namespace} that selects this pod, so the pod will never be Ready`,
    );
  }
}

/**
 * The patch through the pod's fence. Sharded, a refusal is no error: a pod whose bucket moved
 * meanwhile is `not-owned`, and one whose bucket Lease is late to renew (a loaded API server) is
 * `fenced` and looked at again shortly, when the fence has been renewed or the bucket lost.
 */
async function fencedPatch(
  deps: PodReconcilerDeps,
  ref: { namespace: string; name: string; uid: string },
  body: object,
  parent: AbortSignal,
): Promise<PatchOutcome | 'not-owned' | 'fenced'> {
  return deps
    .fenceFor(ref.uid)
    .run(parent, (signal) => patchPodConditions(deps.kc, ref, body, signal))
    .catch((err: unknown) => {
      // Its bucket moved to another replica meanwhile: that one writes the pod now.
      if (err instanceof NotLeaderError && deps.owns) return deps.owns(ref.uid) ? 'fenced' : 'not-owned';
      deps.metrics.conditionPatchesTotal.inc({ result: 'error' });
      deps.metrics.apiErrorsTotal.inc({
        verb: 'patch',
        resource: 'pods/status',
        code: String(statusCode(err) ?? 'transport'),
      });
      throw err;
    });
}

/** Builds the Reconciler for Pod keys. */
export function podReconciler(deps: PodReconcilerDeps) {
  // What we wrote to a pod that the cache has not shown yet (keyed by pod UID, with the
  // resourceVersion the cache had then), so a second reconcile before the watch catches up
  // does not write the same conditions again.
  const unseen = new Map<string, { resourceVersion: string; conditions: DesiredPodCondition[] }>();
  // Sharded: pods whose guarded write met a newer pod, by UID, with the resourceVersion the cache
  // had then; they are seeded again once the cache shows a newer one (docs/sharding.md §5).
  const stale = new Map<string, string>();

  return async (req: Request, ctx: ReconcileContext): Promise<Result> => {
    const pod = deps.caches.pods.get(req.namespace, req.name);
    if (!pod || !isLive(pod)) return {}; // terminating pods are never patched
    warnUnprovided(pod, req, deps);
    const uid = pod.metadata?.uid ?? '';
    const rv = pod.metadata?.resourceVersion ?? '';
    const staleAt = stale.get(uid);
    if (staleAt !== undefined) {
      // The cache still lags the pod: wait for it rather than write from what it shows.
      if (staleAt === rv) return { requeueAfterMs: STALE_RETRY_MS };
      stale.delete(uid);
      deps.probes.reseed(pod);
    }
    const pending = unseen.get(uid);
    if (pending && pending.resourceVersion !== rv) unseen.delete(uid);
    const view = unseen.has(uid) ? withConditions(pod, pending?.conditions ?? []) : pod;
    const changes = conditionChanges(view, deps.probes.desiredFor(uid));
    if (changes.length === 0) return {};
    await deps.writeLimiter.wait(ctx.signal, req.namespace);
    const guarded = deps.probes.writeGuarded(uid);
    const body = conditionPatch(uid, changes, deps.now(), guarded ? rv : undefined);
    const outcome = await fencedPatch(deps, { ...req, uid }, body, ctx.signal);
    if (outcome === 'not-owned') return {};
    if (outcome === 'fenced') return { requeueAfterMs: STALE_RETRY_MS };
    if (outcome === 'stale') {
      deps.metrics.conditionPatchesTotal.inc({ result: 'stale' });
      if (stale.size < 50_000) stale.set(uid, rv);
      ctx.log.info({ resourceVersion: rv }, 'pod changed since its targets were seeded; seeding them again');
      return { requeueAfterMs: STALE_RETRY_MS };
    }
    if (guarded && outcome === 'patched') deps.probes.written(uid);
    deps.metrics.conditionPatchesTotal.inc({ result: outcome === 'patched' ? 'success' : outcome.replace('-', '') });
    if (outcome === 'conflict') {
      // The UID precondition failed: the name now belongs to a new pod. Retry with backoff;
      // by then the cache shows the new pod, whose own targets decide what to write.
      throw new Error(`pod ${req.namespace}/${req.name} was replaced (UID ${uid} no longer matches)`);
    }
    if (outcome === 'patched') {
      const prior = unseen.get(uid)?.conditions ?? [];
      const written = changes.map((c) => c.desired);
      unseen.set(uid, {
        resourceVersion: rv,
        conditions: [...prior.filter((p) => !written.some((w) => w.type === p.type)), ...written],
      });
      // Bounded: entries are dropped as soon as the cache moves past them; this caps pathologies.
      if (unseen.size > 50_000) unseen.delete(unseen.keys().next().value as string);
    }
    if (ctx.log.isLevelEnabled('debug')) {
      ctx.log.debug(
        { outcome, conditions: changes.map((c) => `${c.desired.type}=${c.desired.status}`) },
        'pod conditions patched',
      );
    }
    return {};
  };
}
