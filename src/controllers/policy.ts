// The policy reconciler: for one ProbePolicy key, decide its targets from the caches, hand them to
// the probe manager, and write the policy's status when (and only when) it changes.
import type { CoreV1Api, KubeConfig, V1Pod } from '@kubernetes/client-node';
import { conditionsEqual, setStatusCondition } from '../api/conditions.ts';
import { API_VERSION, type Condition, KIND, type ProbePolicy, type ProbePolicyStatus } from '../api/types.ts';
import { describeError, statusCode } from '../kube/errors.ts';
import type { EventSink } from '../kube/events.ts';
import { patchPolicyStatus } from '../kube/policy-status.ts';
import type { Metrics, PolicyPods } from '../observability/metrics.ts';
import { compileBodyRegex } from '../probes/body-regex.ts';
import type { ReconcileContext, Request, Result } from '../runtime/controller.ts';
import type { FairTokenBucket } from '../runtime/fair-limiter.ts';
import type { Fence } from '../safety/fencing.ts';
import { formatGrace, RELEASE_REASON } from '../safety/gate-release.ts';
import { conditionTypeProblem } from '../safety/ownership.ts';
import type { FailsafeStatus, PolicyProbeConfig, ProbeManager } from './probe-manager.ts';
import { failsafeWindowMs, firstNames, recentFlipTimes, type ShareCounts, type ShareLedger } from './share-counts.ts';
import { computeTargets, countsUngated, olderFirst, selects } from './targets.ts';
import { type Announced, dueAnnouncements, groupUngated, PODS_NOT_GATED } from './ungated.ts';

/** failingPods lists at most this many names (the CRD's maxItems). */
export const FAILING_PODS_CAP = 20;

export interface Caches {
  policies: { get(ns: string, name: string): ProbePolicy | undefined; list(ns?: string): ProbePolicy[] };
  pods: { get(ns: string, name: string): V1Pod | undefined; list(ns?: string): V1Pod[] };
}

export interface PolicyReconcilerDeps {
  caches: Caches;
  probes: ProbeManager;
  core: CoreV1Api;
  events: EventSink;
  /** The API write budget, shared round robin between namespaces (src/runtime/fair-limiter.ts). */
  writeLimiter: FairTokenBucket;
  now: () => number;
  enableExec: boolean;
  allowSecretCa: boolean;
  metrics?: Metrics;
  kc: KubeConfig;
  /** Condition type prefixes readygate may write (src/safety/ownership.ts). */
  allowedConditionPrefixes: readonly string[];
  /** Every status write goes through it: none leaves the process unless this replica leads. */
  fence: Fence;
  /**
   * Sharded: whether this replica writes policy status now (it holds the leader Lease,
   * docs/sharding.md, decision 3). The others only hand their share of the targets to the probes.
   */
  statusWriter?: () => boolean;
  /** Sharded: the other replicas' failsafe holds and stretch, merged into Degraded (src/controllers/shard-reports.ts). */
  peers?: { failsafe(policyKey: string): FailsafeStatus | undefined; stretch(): number };
  /**
   * Sharded, while this replica caches only its buckets' pods: where its own share's counts go,
   * and the live peers' (src/controllers/share-counts.ts). Inactive while the cache holds every pod.
   */
  shares?: ShareLedger;
  /** Told the CPU time of each pass over a namespace's pods (src/controllers/event-handlers.ts). */
  onPass?: (namespace: string, ms: number) => void;
  /** The grace before the gates of a deleted policy are released (src/safety/gate-release.ts); 0 or none: never. */
  releaseAfterMs?: number;
}

/** How long a CA read from a Secret or ConfigMap is reused before it is read again. */
export const SECRET_CA_TTL_MS = 60_000;

type Problem = { reason: string; message: string };
type CaResult = Problem | { caPem: string };
/** CAs read from Secrets and ConfigMaps, keyed by kind/namespace/name/key. */
type SecretCaCache = Map<string, { at: number; result: CaResult }>;
type BlockingDeps = Pick<PolicyReconcilerDeps, 'enableExec' | 'allowSecretCa' | 'core' | 'now'>;

/**
 * Why a policy cannot probe at all (a reason and message), or the CA PEM it needs. Secrets and
 * ConfigMaps are read at most once per SECRET_CA_TTL_MS per (kind, namespace, name, key): policies
 * are reconciled on every pod event, and a GET per reconcile would load the API server for nothing.
 */
export async function blockingProblem(
  policy: ProbePolicy,
  deps: BlockingDeps,
  secretCache: SecretCaCache = new Map(),
): Promise<Problem | { caPem?: string }> {
  const probe = policy.spec.probe;
  if (probe.exec && !deps.enableExec) {
    return {
      reason: 'ExecDisabled',
      message: 'exec probes are off in this installation (helm value exec.enabled=true turns them on)',
    };
  }
  const http = probe.httpGet;
  if (http?.bodyRegex !== undefined) {
    try {
      // The prober's own compiler: it also refuses what its linear-time engine cannot run.
      compileBodyRegex(http.bodyRegex);
    } catch (err) {
      return { reason: 'InvalidSpec', message: `spec.probe.httpGet.bodyRegex: ${(err as Error).message}` };
    }
  }
  const tls = http?.tls;
  if (tls?.caSecretRef && !deps.allowSecretCa) {
    return {
      reason: 'SecretCANotAllowed',
      message: `tls.caSecretRef needs permission to read Secrets, which is off in this installation (helm value tls.allowSecretCA=true); use tls.caConfigMapRef or tls.caBundle instead`,
    };
  }
  const ref = tls?.caSecretRef
    ? { kind: 'Secret' as const, ...tls.caSecretRef }
    : tls?.caConfigMapRef
      ? { kind: 'ConfigMap' as const, ...tls.caConfigMapRef }
      : undefined;
  if (!ref) return tls?.caBundle ? { caPem: tls.caBundle } : {};
  const namespace = policy.metadata?.namespace ?? '';
  const key = `${ref.kind}/${namespace}/${ref.name}/${ref.key}`;
  const cached = secretCache.get(key);
  if (cached && deps.now() - cached.at < SECRET_CA_TTL_MS) return cached.result;
  const result = await readCa(deps.core, { ...ref, namespace });
  secretCache.set(key, { at: deps.now(), result });
  return result;
}

/** Reads a CA bundle from a key of a Secret or ConfigMap, or says why it cannot be used. */
async function readCa(
  core: CoreV1Api,
  ref: { kind: 'Secret' | 'ConfigMap'; namespace: string; name: string; key: string },
): Promise<CaResult> {
  const reason = ref.kind === 'Secret' ? 'CASecretInvalid' : 'CAConfigMapInvalid';
  let text: string | undefined;
  try {
    if (ref.kind === 'Secret') {
      const data = (await core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace })).data?.[ref.key];
      text = data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
    } else {
      const cm = await core.readNamespacedConfigMap({ name: ref.name, namespace: ref.namespace });
      const binary = cm.binaryData?.[ref.key];
      text = cm.data?.[ref.key] ?? (binary === undefined ? undefined : Buffer.from(binary, 'base64').toString('utf8'));
    }
  } catch (err) {
    // The chart grants configmaps get only with tls.allowConfigMapCA; say so rather than just "forbidden".
    const hint =
      statusCode(err) === 403 && ref.kind === 'ConfigMap'
        ? ' (the operator may read ConfigMaps only with helm value tls.allowConfigMapCA=true)'
        : '';
    return { reason, message: `cannot read ${ref.kind} ${ref.name}: ${describeError(err)}${hint}` };
  }
  if (text === undefined) return { reason, message: `${ref.kind} ${ref.name} has no key ${ref.key}` };
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    return { reason, message: `key ${ref.key} of ${ref.kind} ${ref.name} holds no PEM certificate` };
  }
  return { caPem: text };
}

/** Pure: the status a policy should have, given what the caches and the probe manager say. */
export function desiredStatus(input: {
  policy: ProbePolicy;
  matched: V1Pod[];
  /** How many selected pods lack the gate (computeTargets' ungated); reported only while countsUngated. */
  ungated?: number;
  conflictedWith: string[];
  problem?: { reason: string; message: string };
  failsafe?: { reason: string; message: string };
  /** The operator stretches this policy's periods (src/safety/overload.ts). */
  overload?: { reason: string; message: string; effectivePeriodSeconds: number };
  /** Sharded with a share-only cache: the policy's pods in the buckets other replicas hold. */
  elsewhere?: Pick<ShareCounts, 'matched' | 'ready' | 'failing'>;
  now: number;
}): ProbePolicyStatus {
  const { policy, matched: own, now, elsewhere } = input;
  const type = policy.spec.conditionType;
  const generation = policy.metadata?.generation ?? 0;
  const gateTrue = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
  // The first FAILING_PODS_CAP names in sort order, kept by insertion: no sort of 10,000 names.
  let failingCount = 0;
  const failing: string[] = [];
  for (const p of own) {
    if (gateTrue(p)) continue;
    failingCount++;
    const name = p.metadata?.name ?? '';
    if (failing.length === FAILING_PODS_CAP && name >= failing[FAILING_PODS_CAP - 1]!) continue;
    let i = failing.length;
    while (i > 0 && failing[i - 1]! > name) i--;
    failing.splice(i, 0, name);
    if (failing.length > FAILING_PODS_CAP) failing.pop();
  }
  if (elsewhere) {
    failingCount += elsewhere.matched - elsewhere.ready;
    failing.splice(0, failing.length, ...firstNames([failing, elsewhere.failing], FAILING_PODS_CAP));
  }
  const total = own.length + (elsewhere?.matched ?? 0);
  let conditions: Condition[] = policy.status?.conditions ?? [];
  const set = (c: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>) => {
    conditions = setStatusCondition(conditions, { ...c, observedGeneration: generation }, now);
  };
  if (input.problem) {
    set({ type: 'Ready', status: 'False', ...input.problem });
  } else {
    const dry = policy.spec.dryRun ? ' (dry run: pods are not patched)' : '';
    set({ type: 'Ready', status: 'True', reason: 'Probing', message: `probing ${total} matched pods${dry}` });
  }
  if (input.failsafe) {
    set({ type: 'Degraded', status: 'True', reason: input.failsafe.reason, message: input.failsafe.message });
  } else if (input.overload) {
    set({ type: 'Degraded', status: 'True', reason: input.overload.reason, message: input.overload.message });
  } else if (input.conflictedWith.length > 0) {
    set({
      type: 'Degraded',
      status: 'True',
      reason: 'Conflict',
      message: `older ProbePolicy ${input.conflictedWith.join(', ')} owns ${type} on some matched pods; this policy writes nothing to them`,
    });
  } else if (total === 0) {
    const ungated = input.ungated ? `; ${input.ungated} selected pods do not list it (status.ungatedPods)` : '';
    set({
      type: 'Degraded',
      status: 'True',
      reason: 'NoPodsMatched',
      message: `no pod matches the selector and lists ${type} in spec.readinessGates${ungated}`,
    });
  } else {
    set({ type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' });
  }
  const status: ProbePolicyStatus = {
    observedGeneration: generation,
    matchedPods: total,
    readyPods: total - failingCount,
    // 0 rather than absent while counted, so the Ungated column reads 0; absent (the column
    // empty) when spec.injection is Disabled: nothing was counted.
    ...(countsUngated(policy) ? { ungatedPods: input.ungated ?? 0 } : {}),
    failingPods: failing,
    conditions,
  };
  if (input.overload) status.effectivePeriodSeconds = input.overload.effectivePeriodSeconds;
  return status;
}

/**
 * Pure: this replica's share of a policy, as it publishes it to the status writer when it caches
 * only its buckets' pods (src/controllers/share-counts.ts): counts, the first failing names, the
 * conflicts, and the flips readygate made within the failsafe's memory of them (2 windows).
 */
export function shareCountsOf(input: {
  policy: ProbePolicy;
  matched: readonly V1Pod[];
  ungated: readonly V1Pod[];
  targets: number;
  conflictedWith: string[];
  now: number;
}): ShareCounts {
  const { policy, matched, now } = input;
  const type = policy.spec.conditionType;
  let ready = 0;
  const failing: string[] = [];
  for (const p of matched) {
    if (p.status?.conditions?.some((c) => c.type === type && c.status === 'True')) ready++;
    else failing.push(p.metadata?.name ?? '');
  }
  return {
    matched: matched.length,
    ready,
    ungated: input.ungated.length,
    targets: input.targets,
    failing: firstNames([failing], FAILING_PODS_CAP),
    conflictedWith: input.conflictedWith,
    flips: recentFlipTimes(matched, type, now - 2 * failsafeWindowMs(policy.spec)),
  };
}

/** Pure: the pod counts of a status, for the readygate_policy_*_pods gauges. */
export function podCounts(status: ProbePolicyStatus): PolicyPods {
  const matched = status.matchedPods ?? 0;
  const ready = status.readyPods ?? 0;
  return { matched, ready, failing: matched - ready, ungated: status.ungatedPods };
}

/** Reports whether writing next would change the stored status. */
export function statusDiffers(current: ProbePolicyStatus | undefined, next: ProbePolicyStatus): boolean {
  if (!current) return true;
  return (
    current.observedGeneration !== next.observedGeneration ||
    current.matchedPods !== next.matchedPods ||
    current.readyPods !== next.readyPods ||
    current.ungatedPods !== next.ungatedPods ||
    current.effectivePeriodSeconds !== next.effectivePeriodSeconds ||
    JSON.stringify(current.failingPods ?? []) !== JSON.stringify(next.failingPods ?? []) ||
    !conditionsEqual(current.conditions, next.conditions)
  );
}

/**
 * Records the PodsNotGated Warnings that are due for the policy's ungated pods, one per owning
 * workload (src/controllers/ungated.ts), and remembers them in `announced`.
 */
function announceUngated(
  policy: ProbePolicy,
  ungated: readonly V1Pod[],
  announced: Map<string, Map<string, Announced>>,
  deps: Pick<PolicyReconcilerDeps, 'events' | 'now'>,
): void {
  const namespace = policy.metadata?.namespace ?? '';
  const key = `${namespace}/${policy.metadata?.name}`;
  if (ungated.length === 0) {
    announced.delete(key);
    return;
  }
  const groups = groupUngated(ungated);
  const { due, next } = dueAnnouncements(groups, policy.spec.conditionType, namespace, announced.get(key), deps.now());
  announced.set(key, next);
  const ref = {
    apiVersion: API_VERSION,
    kind: KIND,
    namespace,
    name: policy.metadata?.name ?? '',
    uid: policy.metadata?.uid,
  };
  for (const a of due) deps.events.record(ref, 'Warning', PODS_NOT_GATED, a.message);
}

/** Pure: what the PolicyDeleted Event says will happen to the conditions the policy wrote. */
export function policyDeletedMessage(conditionType: string, releaseAfterMs: number): string {
  if (releaseAfterMs <= 0) {
    return `ProbePolicy deleted: the ${conditionType} conditions it wrote on pods are kept as they are (release of orphaned gates is off); remove the readiness gate from the pods or create a new policy`;
  }
  return `ProbePolicy deleted: its probes stopped. On each pod no other ProbePolicy provides ${conditionType} to, a condition that is not True is set True (reason ${RELEASE_REASON}) after ${formatGrace(releaseAfterMs)}, unless a ProbePolicy provides the gate again by then; True conditions are left as they are`;
}

/** Pure: names of the older policies that own the condition on the conflicted pods. */
function conflictOwners(
  policy: ProbePolicy,
  conflicted: readonly V1Pod[],
  policies: readonly ProbePolicy[],
): Set<string> {
  const owners = new Set<string>();
  for (const pod of conflicted) {
    const owner = policies
      .filter((p) => p.spec.conditionType === policy.spec.conditionType && selects(p, pod))
      .sort(olderFirst)[0];
    if (owner?.metadata?.name) owners.add(owner.metadata.name);
  }
  return owners;
}

type KnownPolicy = { uid: string; name: string; namespace: string; conditionType: string };

/** A policy key with no policy: stop its probes, drop its series, and say once what happens to its gates. */
function policyGone(
  key: string,
  ctx: ReconcileContext,
  state: { known: Map<string, KnownPolicy>; announced: Map<string, Map<string, Announced>> },
  deps: PolicyReconcilerDeps,
): void {
  const [namespace = '', name = ''] = key.split('/');
  deps.probes.removePolicy(key);
  deps.shares?.forget(key);
  deps.metrics?.forgetPolicyPods(namespace, name);
  state.announced.delete(key);
  const gone = state.known.get(key);
  if (!gone) return;
  state.known.delete(key);
  deps.events.record(
    { apiVersion: API_VERSION, kind: KIND, namespace: gone.namespace, name: gone.name, uid: gone.uid },
    'Normal',
    'PolicyDeleted',
    policyDeletedMessage(gone.conditionType, deps.releaseAfterMs ?? 0),
  );
  ctx.log.info({ releaseAfterMs: deps.releaseAfterMs ?? 0 }, 'policy deleted; probes stopped');
}

/** Builds the Reconciler for ProbePolicy keys. */
export function policyReconciler(deps: PolicyReconcilerDeps) {
  // Policies seen alive, to tell a deletion from a key that never existed.
  const known = new Map<string, KnownPolicy>();
  const secretCache: SecretCaCache = new Map();
  // Per policy key, the PodsNotGated Events last recorded (dueAnnouncements); only policies with ungated pods.
  const announced = new Map<string, Map<string, Announced>>();

  return async (req: Request, ctx: ReconcileContext): Promise<Result> => {
    const key = `${req.namespace}/${req.name}`;
    const policy = deps.caches.policies.get(req.namespace, req.name);
    if (!policy) {
      policyGone(key, ctx, { known, announced }, deps);
      return {};
    }
    known.set(key, {
      uid: policy.metadata?.uid ?? '',
      name: req.name,
      namespace: req.namespace,
      conditionType: policy.spec.conditionType,
    });

    const started = performance.now();
    const policies = deps.caches.policies.list(req.namespace);
    const pods = deps.caches.pods.list(req.namespace);
    const { matched, targets, conflicted, ungated } = computeTargets(policy, pods, policies);
    const owners = conflictOwners(policy, conflicted, policies);

    const owned = conditionTypeProblem(policy.spec.conditionType, deps.allowedConditionPrefixes);
    let passMs = performance.now() - started;
    const check = owned ?? (await blockingProblem(policy, deps, secretCache));
    const resumed = performance.now();
    const problem = 'reason' in check ? check : undefined;
    // A share-only cache sees only this replica's buckets: the peers' counts fill in the rest.
    const shares = deps.shares?.active() ? deps.shares : undefined;
    const elsewhere = shares?.elsewhere(key);
    const config = problem ? undefined : probeConfig(check as { caPem?: string }, key, shares, elsewhere);
    deps.probes.syncPolicy(policy, config ? targets : [], config ?? {});
    const conflictedWith = [...owners].sort();
    const now = deps.now();
    shares?.record(
      key,
      shareCountsOf({ policy, matched, ungated, targets: config ? targets.length : 0, conflictedWith, now }),
    );
    // With a share-only cache each replica speaks for the ungated pods of its share; else only
    // the status writer, for the whole policy (shards.ts, eventAllowed).
    if (shares) announceUngated(policy, ungated, announced, deps);
    if (deps.statusWriter?.() === false) {
      // The status writer reports the policy's pods; a replica that stopped writing drops its stale series.
      deps.metrics?.forgetPolicyPods(req.namespace, req.name);
      deps.onPass?.(req.namespace, performance.now() - resumed + passMs);
      return {};
    }
    if (shares && !shares.complete()) {
      // The shares do not add up to the whole (a bucket unheld, being listed, or still counted by
      // its previous holder): the status keeps its counts until they do. The peers' next counts,
      // or this cache's next bucket listed or dropped, bring the policy back here.
      deps.onPass?.(req.namespace, performance.now() - resumed + passMs);
      return {};
    }
    const status = desiredStatus({
      policy,
      matched,
      ungated: ungated.length + (elsewhere?.ungated ?? 0),
      conflictedWith: elsewhere
        ? [...new Set([...conflictedWith, ...elsewhere.conflictedWith])].sort()
        : conflictedWith,
      problem,
      failsafe: deps.probes.failsafe(key) ?? deps.peers?.failsafe(key),
      overload: deps.probes.overload(key, deps.peers?.stretch()),
      ...(elsewhere && { elsewhere }),
      now,
    });
    passMs += performance.now() - resumed;
    deps.onPass?.(req.namespace, passMs);
    deps.metrics?.setPolicyPods(req.namespace, req.name, podCounts(status));
    if (statusDiffers(policy.status, status)) await writeStatus(deps, req, ctx, status);
    if (!shares) announceUngated(policy, ungated, announced, deps);
    return {};
  };
}

/** The probe config of a pass; with a share-only cache, the peers' targets and flips for the failsafe. */
function probeConfig(
  check: { caPem?: string },
  key: string,
  shares: ShareLedger | undefined,
  elsewhere: ShareCounts | undefined,
): PolicyProbeConfig {
  return {
    caPem: check.caPem,
    ...(shares && { elsewhere: { targets: elsewhere?.targets ?? 0, flips: shares.flips(key) } }),
  };
}

/** PATCHes the policy's status through the status writer's fence, within the write budget. */
async function writeStatus(
  deps: PolicyReconcilerDeps,
  req: Request,
  ctx: ReconcileContext,
  status: ProbePolicyStatus,
): Promise<void> {
  await deps.writeLimiter.wait(ctx.signal, req.namespace);
  await deps.fence
    .run(ctx.signal, (signal) => patchPolicyStatus(deps.kc, req, status, signal))
    .catch((err: unknown) => {
      deps.metrics?.apiErrorsTotal.inc({
        verb: 'patch',
        resource: 'probepolicies/status',
        code: String(statusCode(err) ?? 'transport'),
      });
      throw err;
    });
  ctx.log.debug({ matched: status.matchedPods, ready: status.readyPods }, 'status updated');
}
