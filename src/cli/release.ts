// readygate release: the last step of an uninstall. Once the operator is gone, nothing will ever
// probe a readygate readiness gate again, and a pod whose gate condition is not True stays
// NotReady for good. This command sets every such condition True with reason Uninstalled. It is
// a command, not a hook of the chart: a Helm pre-delete hook that fails or times out leaves the
// release half-deleted, and one that runs while the operator still runs is undone by it. Here the
// user runs it after `helm uninstall`, and it refuses while an operator Lease is still renewed.
import { parseArgs } from 'node:util';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { DesiredPodCondition, ObservedPodCondition } from '../api/conditions.ts';
import { projectPod } from '../controllers/projection.ts';
import { isLive } from '../controllers/targets.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { isNotFound } from '../kube/errors.ts';
import { type Lease, restLeaseSetClient } from '../kube/lease.ts';
import { listAll } from '../kube/list.ts';
import { conditionPatch, patchPodConditions } from '../kube/pod-status.ts';
import { SHARD_BUCKET_LABEL, SHARD_MEMBER_LABEL } from '../kube/shard-leases.ts';
import { conditionTypeProblem } from '../safety/ownership.ts';
import { kubectlError, serverError } from './errors.ts';
import { EXIT } from './exit.ts';
import { leaseIsLive } from './explain.ts';
import { conditionPrefixes, UsageError } from './options.ts';
import { printable } from './terminal.ts';

export const UNINSTALLED_REASON = 'Uninstalled';
/** Patches in flight at once: enough to release thousands of pods in seconds, few enough for a shared API server. */
export const RELEASE_CONCURRENCY = 8;
/** Any one API call; a hung API server should not hang the command. */
const CALL_TIMEOUT_MS = 30_000;
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface ReleaseOptions {
  kubeconfig?: string;
  /** Undefined: every namespace. */
  namespace?: string;
  dryRun: boolean;
  force: boolean;
  operatorNamespace: string;
  leaderElectionId: string;
  prefixes: string[];
}

/** One pod's gates to release. */
export interface PodRelease {
  namespace: string;
  name: string;
  uid: string;
  gates: { type: string; observed: ObservedPodCondition | undefined }[];
}

/** The condition a released gate gets. */
export function uninstalledCondition(type: string): DesiredPodCondition {
  return {
    type,
    status: 'True',
    reason: UNINSTALLED_REASON,
    message: 'readygate was uninstalled: released by `readygate release` so the pod is not held NotReady',
  };
}

/**
 * Pure: the readygate gates of a pod whose condition is not True, a missing one included; none
 * for a pod being deleted or finished (its readiness no longer matters).
 */
export function gatesToRelease(pod: V1Pod, prefixes: readonly string[]): PodRelease['gates'] {
  if (!isLive(pod)) return [];
  const conditions = pod.status?.conditions ?? [];
  return (pod.spec?.readinessGates ?? [])
    .map((g) => g.conditionType)
    .filter((type) => conditionTypeProblem(type, prefixes) === undefined)
    .map((type) => ({ type, observed: conditions.find((c) => c.type === type) as ObservedPodCondition | undefined }))
    .filter((g) => g.observed?.status !== 'True');
}

/** Pure: the pods that have gates to release, in namespace/name order. */
export function planRelease(pods: readonly V1Pod[], prefixes: readonly string[]): PodRelease[] {
  return pods
    .map((pod) => ({
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      uid: pod.metadata?.uid ?? '',
      gates: gatesToRelease(pod, prefixes),
    }))
    .filter((p) => p.gates.length > 0)
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
}

/** Pure: the operator's Leases (leader or shard) still held and renewed within their duration at `now`. */
export function liveOperatorLeases(leases: readonly Lease[], now: number, leaderElectionId: string): Lease[] {
  const ours = (l: Lease) =>
    l.metadata.name === leaderElectionId ||
    l.metadata.labels?.[SHARD_BUCKET_LABEL] !== undefined ||
    l.metadata.labels?.[SHARD_MEMBER_LABEL] !== undefined;
  return leases.filter((l) => ours(l) && leaseIsLive(l, now));
}

/** Pure: why the command refuses, naming the live Leases. */
export function refusal(live: readonly Lease[], namespace: string, now: number): string {
  const held = live.map((l) => {
    const ago = Math.max(0, Math.round((now - Date.parse(l.spec?.renewTime ?? '')) / 1000));
    return `${l.metadata.name} (held by ${l.spec?.holderIdentity}, renewed ${ago}s ago, for ${l.spec?.leaseDurationSeconds}s)`;
  });
  return `the readygate operator still runs: Lease ${held.join(', ')} in namespace ${namespace}. It would set the gates back. Uninstall it first (helm uninstall); a Lease its holder did not hand back expires after its duration. Then run again, or pass --force`;
}

/** Pure: one line of output for a pod. */
export function describeRelease(p: PodRelease, dryRun: boolean): string {
  const gates = p.gates.map((g) => `${g.type} (${g.observed?.status ?? 'no condition'})`).join(', ');
  return printable(`${dryRun ? 'would release' : 'released'} pod ${p.namespace}/${p.name}: ${gates}`);
}

/** The flags of `readygate release` (RELEASE_HELP documents them). */
export const RELEASE_FLAGS = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
  'operator-namespace': { type: 'string' },
  'leader-election-id': { type: 'string' },
  'allowed-condition-prefixes': { type: 'string' },
} as const;

/** Parses release's flags; throws UsageError naming the flag. */
export function parseReleaseOptions(argv: string[]): ReleaseOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: RELEASE_FLAGS,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  for (const flag of ['namespace', 'operator-namespace']) {
    const ns = str(flag);
    if (ns !== undefined && !NAMESPACE_NAME.test(ns)) {
      throw new UsageError(`--${flag} must be a namespace name, got ${JSON.stringify(ns)}`);
    }
  }
  const prefixes = conditionPrefixes(str('allowed-condition-prefixes'));
  return {
    kubeconfig: str('kubeconfig'),
    namespace: str('namespace'),
    dryRun: Boolean(values['dry-run']),
    force: Boolean(values.force),
    operatorNamespace: str('operator-namespace') ?? 'readygate-system',
    leaderElectionId: str('leader-election-id') ?? 'readygate',
    prefixes,
  };
}

/** The operator namespace's Leases; none when the namespace is gone. */
async function listLeases(kc: KubeConfig, namespace: string): Promise<Lease[]> {
  try {
    return await restLeaseSetClient(kc, namespace).list('', AbortSignal.timeout(CALL_TIMEOUT_MS));
  } catch (err) {
    if (isNotFound(err)) return [];
    // An unreachable cluster is said as such (src/cli/main.ts); a refusal is the Leases' own problem.
    const refused = serverError(err);
    if (!refused) throw err;
    throw new Error(
      `cannot tell whether the operator still runs: cannot list Leases in namespace ${namespace} (${refused}); check --operator-namespace, or pass --force once you are sure it is gone`,
    );
  }
}

/** Patches every pod's gates, RELEASE_CONCURRENCY at a time, printing each; counts what happened. */
async function releaseAll(
  kc: KubeConfig,
  plan: readonly PodRelease[],
): Promise<{ pods: number; gates: number; failed: number }> {
  const done = { pods: 0, gates: 0, failed: 0 };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < plan.length; i = next++) {
      const p = plan[i]!;
      const changes = p.gates.map((g) => ({ desired: uninstalledCondition(g.type), observed: g.observed }));
      const body = conditionPatch(p.uid, changes, Date.now());
      try {
        const outcome = await patchPodConditions(kc, p, body, AbortSignal.timeout(CALL_TIMEOUT_MS));
        if (outcome === 'patched') {
          done.pods++;
          done.gates += p.gates.length;
          process.stdout.write(`${describeRelease(p, false)}\n`);
        } else {
          // Deleted, or replaced under its name, meanwhile: nothing of this pod is left to release.
          process.stdout.write(`${printable(`skipped pod ${p.namespace}/${p.name}: gone`)}\n`);
        }
      } catch (err) {
        done.failed++;
        process.stderr.write(
          `${printable(`failed pod ${p.namespace}/${p.name}: ${kubectlError(err) ?? String(err)}`)}\n`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: RELEASE_CONCURRENCY }, worker));
  return done;
}

/** Why the command must not write now (a live operator Lease), or undefined. */
async function whyRefuse(kc: KubeConfig, o: ReleaseOptions): Promise<string | undefined> {
  if (o.force) return undefined;
  const now = Date.now();
  const live = liveOperatorLeases(await listLeases(kc, o.operatorNamespace), now, o.leaderElectionId);
  return live.length > 0 ? refusal(live, o.operatorNamespace, now) : undefined;
}

/** `readygate release`: resolves with the exit code. */
export async function runRelease(argv: string[]): Promise<number> {
  const o = parseReleaseOptions(argv);
  const kc = loadKubeConfig(o.kubeconfig);
  const refused = await whyRefuse(kc, o);
  if (refused && !o.dryRun) {
    process.stderr.write(`readygate release: ${printable(refused)}\n`);
    return EXIT.failed;
  }
  const path = o.namespace ? `/api/v1/namespaces/${o.namespace}/pods` : '/api/v1/pods';
  const signal = AbortSignal.timeout(10 * CALL_TIMEOUT_MS);
  const plan = planRelease((await listAll<V1Pod>(kc, path, { transform: projectPod, signal })).items, o.prefixes);
  if (o.dryRun) {
    for (const p of plan) process.stdout.write(`${describeRelease(p, true)}\n`);
    const gates = plan.reduce((n, p) => n + p.gates.length, 0);
    process.stdout.write(`dry run: would release ${gates} gates on ${plan.length} pods; nothing written\n`);
    if (!refused) return EXIT.ok;
    process.stderr.write(`readygate release: a run without --dry-run would refuse: ${printable(refused)}\n`);
    return EXIT.failed;
  }
  const done = await releaseAll(kc, plan);
  process.stdout.write(`released ${done.gates} gates on ${done.pods} pods\n`);
  if (done.failed === 0) return EXIT.ok;
  process.stderr.write(`readygate release: ${done.failed} pods could not be patched; run the command again\n`);
  return EXIT.cluster;
}
