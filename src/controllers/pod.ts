// The pod reconciler: for one pod key, compare the gate conditions the probe manager wants with
// what the pod says, and patch only the differences, in one strategic merge patch on pods/status.
// The same patch releases the pod's orphaned gates once their grace has passed
// (src/safety/gate-release.ts).
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { type DesiredPodCondition, type ObservedPodCondition, podConditionDiffers } from '../api/conditions.ts';
import { injectedGates } from '../api/types.ts';
import { statusCode } from '../kube/errors.ts';
import type { EventSink } from '../kube/events.ts';
import { conditionPatch, type PatchOutcome, patchPodConditions } from '../kube/pod-status.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ReconcileContext, Request, Result } from '../runtime/controller.ts';
import type { FairTokenBucket } from '../runtime/fair-limiter.ts';
import { type Fence, NotLeaderError } from '../safety/fencing.ts';
import {
  decideRelease,
  formatGrace,
  OrphanClock,
  RELEASE_REASON,
  type ReleaseDecision,
  releasedCondition,
} from '../safety/gate-release.ts';
import { conditionTypeProblem, DEFAULT_CONDITION_PREFIXES } from '../safety/ownership.ts';
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
  /** Condition type prefixes readygate owns (src/safety/ownership.ts): only gates under them are released. */
  allowedConditionPrefixes: readonly string[];
  /** The grace before an orphaned gate is released (src/safety/gate-release.ts); 0: never. */
  releaseAfterMs: number;
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

/** Pure: gate types on the pod under readygate's prefixes that no policy in its namespace provides. */
export function unprovidedGates(
  pod: V1Pod,
  caches: Caches,
  prefixes: readonly string[] = DEFAULT_CONDITION_PREFIXES,
): string[] {
  const gates = (pod.spec?.readinessGates ?? [])
    .map((g) => g.conditionType)
    .filter((t) => conditionTypeProblem(t, prefixes) === undefined);
  if (gates.length === 0) return [];
  const policies = caches.policies.list(pod.metadata?.namespace ?? '');
  return gates.filter((t) => !policies.some((p) => p.spec.conditionType === t && selects(p, pod)));
}

/**
 * Pure: what the NoProbePolicy Warning says of an unprovided gate, or nothing for one whose
 * condition is True (the pod is not held by it, and a deleted policy's healthy pods need no warning).
 */
export function unprovidedWarning(
  namespace: string,
  type: string,
  status: string | undefined,
  releaseAfterMs: number,
  injected = false,
): string | undefined {
  const head = `readiness gate ${type} is not provided by any ProbePolicy in namespace ${namespace} that selects this pod`;
  if (status === 'True') return undefined;
  if (status === undefined && !injected) return `${head}, so the pod will never be Ready`;
  if (releaseAfterMs <= 0) {
    return `${head} any more: its condition is kept as it is (release of orphaned gates is off), so the pod stays NotReady`;
  }
  return `${head} any more: unless one provides it again, its condition is set True (reason ${RELEASE_REASON}) ${formatGrace(releaseAfterMs)} after the operator first saw it unprovided`;
}

/** Warns, by Event, of each readygate gate on the pod that no policy provides and that holds it back. */
function warnUnprovided(pod: V1Pod, req: Request, types: readonly string[], deps: PodReconcilerDeps): void {
  for (const type of types) {
    const status = pod.status?.conditions?.find((c) => c.type === type)?.status;
    const injected = injectedGates(pod.metadata?.annotations).includes(type);
    const message = unprovidedWarning(req.namespace, type, status, deps.releaseAfterMs, injected);
    if (message === undefined) continue;
    deps.events.record(
      { apiVersion: 'v1', kind: 'Pod', namespace: req.namespace, name: req.name, uid: pod.metadata?.uid ?? '' },
      'Warning',
      'NoProbePolicy',
      message,
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

type ConditionChange = { desired: DesiredPodCondition; observed: ObservedPodCondition | undefined };

/** Pure: the changes that release the given gates of the pod. */
export function releaseChanges(pod: V1Pod, types: readonly string[], releaseAfterMs: number): ConditionChange[] {
  const namespace = pod.metadata?.namespace ?? '';
  return types.map((type) => ({
    desired: releasedCondition(namespace, type, releaseAfterMs),
    observed: pod.status?.conditions?.find((c) => c.type === type) as ObservedPodCondition | undefined,
  }));
}

/** The sooner of two requeues. */
function sooner(a: Result, b: number | undefined): Result {
  if (b === undefined) return a;
  return { requeueAfterMs: Math.min(a.requeueAfterMs ?? b, b) };
}

/** What the pod reconciler remembers between reconciles, by pod UID. */
interface WriteMemory {
  /**
   * What we wrote to a pod that the cache has not shown yet, with the resourceVersion the cache
   * had then, so a second reconcile before the watch catches up does not write it again.
   */
  unseen: Map<string, { resourceVersion: string; conditions: DesiredPodCondition[] }>;
  /**
   * Sharded: pods whose guarded write met a newer pod, with the resourceVersion the cache had
   * then; they are seeded again once the cache shows a newer one (docs/sharding.md §5).
   */
  stale: Map<string, string>;
}

/** Patches the changes onto the pod; the result to return, or 'patched'. */
async function writeChanges(
  deps: PodReconcilerDeps,
  memory: WriteMemory,
  req: Request,
  ctx: ReconcileContext,
  pod: V1Pod,
  changes: ConditionChange[],
): Promise<Result | 'patched'> {
  const { unseen, stale } = memory;
  const uid = pod.metadata?.uid ?? '';
  const rv = pod.metadata?.resourceVersion ?? '';
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
  if (ctx.log.isLevelEnabled('debug')) {
    ctx.log.debug(
      { outcome, conditions: changes.map((c) => `${c.desired.type}=${c.desired.status}`) },
      'pod conditions patched',
    );
  }
  if (outcome !== 'patched') return {};
  const prior = unseen.get(uid)?.conditions ?? [];
  const written = changes.map((c) => c.desired);
  unseen.set(uid, {
    resourceVersion: rv,
    conditions: [...prior.filter((p) => !written.some((w) => w.type === p.type)), ...written],
  });
  // Bounded: entries are dropped as soon as the cache moves past them; this caps pathologies.
  if (unseen.size > 50_000) unseen.delete(unseen.keys().next().value as string);
  return 'patched';
}

/** Tells of the gates a landed patch released: metric, Event, log. */
function recordReleased(
  deps: PodReconcilerDeps,
  req: Request,
  ctx: ReconcileContext,
  pod: V1Pod,
  changes: ConditionChange[],
) {
  const uid = pod.metadata?.uid ?? '';
  for (const { desired } of changes) {
    deps.metrics.gatesReleasedTotal.inc({ namespace: req.namespace });
    deps.events.record(
      { apiVersion: 'v1', kind: 'Pod', namespace: req.namespace, name: req.name, uid },
      'Normal',
      RELEASE_REASON,
      desired.message,
    );
  }
  ctx.log.info({ gates: changes.map((c) => c.desired.type) }, 'orphaned readiness gates released');
}

/** Builds the Reconciler for Pod keys. */
export function podReconciler(deps: PodReconcilerDeps) {
  const memory: WriteMemory = { unseen: new Map(), stale: new Map() };
  const { unseen, stale } = memory;
  // When this process first saw each pod's gates orphaned (src/safety/gate-release.ts).
  const orphans = new OrphanClock();

  return async (req: Request, ctx: ReconcileContext): Promise<Result> => {
    const key = `${req.namespace}/${req.name}`;
    const pod = deps.caches.pods.get(req.namespace, req.name);
    if (!pod || !isLive(pod)) {
      orphans.forget(key);
      return {}; // terminating pods are never patched
    }
    const orphaned = unprovidedGates(pod, deps.caches, deps.allowedConditionPrefixes);
    warnUnprovided(pod, req, orphaned, deps);
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
    const desired = deps.probes.desiredFor(uid);
    const release: ReleaseDecision = decideRelease({
      conditions: view.status?.conditions ?? [],
      orphaned,
      injected: injectedGates(pod.metadata?.annotations),
      probed: new Set(desired.map((d) => d.type)),
      since: orphans.get(key, uid),
      now: deps.now(),
      graceMs: deps.releaseAfterMs,
    });
    orphans.set(key, uid, release.since);
    const releasing = releaseChanges(view, release.release, deps.releaseAfterMs);
    const changes = [...conditionChanges(view, desired), ...releasing];
    if (changes.length === 0) return sooner({}, release.requeueAfterMs);
    const result = await writeChanges(deps, memory, req, ctx, pod, changes);
    if (result !== 'patched') return sooner(result, release.requeueAfterMs);
    if (releasing.length > 0) recordReleased(deps, req, ctx, pod, releasing);
    return sooner({}, release.requeueAfterMs);
  };
}
