// readygate explain pod/NAME -n NS: for each readiness gate of a pod, which policy provides it,
// what the condition says and since when, and what is blocking Ready, in plain words; and, when
// the operator shards, which replica owns the pod (the holder of its bucket's Lease).
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod, type V1PodCondition } from '@kubernetes/client-node';
import { GROUP, GROUP_VERSION, PLURAL, type ProbePolicy } from '../api/types.ts';
import {
  computeTargets,
  countsUngated,
  hasGate,
  olderFirst,
  selects,
  selectsIgnoringGate,
} from '../controllers/targets.ts';
import { owningWorkload, recreateAdvice, workloadName } from '../controllers/ungated.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { statusCode } from '../kube/errors.ts';
import { type Lease, restLeaseSetClient } from '../kube/lease.ts';
import { bucketLeaseName, SHARD_BUCKET_LABEL } from '../kube/shard-leases.ts';
import { bucketOf, MAX_BUCKETS } from '../safety/sharding.ts';
import { serverError } from './errors.ts';
import { EXPLAIN_HELP } from './help.ts';
import { UsageError } from './options.ts';
import { printable, printableJson } from './terminal.ts';

export interface GateExplanation {
  conditionType: string;
  policy?: string;
  status: string;
  reason?: string;
  message?: string;
  since?: string;
  /** The condition's lastTransitionTime, RFC 3339: what `since` reads in `-o json`. */
  lastTransitionTime?: string;
  /** How often the policy probes the pod now, in words (stretched under overload). */
  probes?: string;
  blocking: boolean;
  why: string;
}

/**
 * A ProbePolicy that selects the pod although the pod does not list its gate: readinessGates is
 * immutable, so readygate cannot gate this pod until it is recreated.
 */
export interface NotGatedExplanation {
  policy: string;
  conditionType: string;
  injection: 'Enabled' | 'Disabled';
  /** The pod's owning workload, as kubectl names it (src/controllers/ungated.ts). */
  workload: string;
  why: string;
}

/**
 * Which operator replica owns the pod when the operator shards (docs/sharding.md): the holder of
 * the Lease of the pod's bucket, none when nobody holds it, or unknown when the Leases could not
 * be read.
 */
export type PodOwner =
  | {
      state: 'held';
      holder: string;
      bucket: number;
      buckets: number;
      leaseSet: string;
      /** The bucket Lease's renewTime, and how long ago that was. */
      renewTime: string;
      renewed: string;
    }
  | { state: 'none'; bucket: number; buckets: number; leaseSet: string }
  | { state: 'unknown'; reason: string };

export interface PodExplanation {
  pod: string;
  namespace: string;
  ready: boolean;
  containersReady: boolean;
  /** Only when the operator shards, or when whether it does could not be read. */
  owner?: PodOwner;
  gates: GateExplanation[];
  /** The policies that select the pod but are not among its readiness gates. */
  notGated: NotGatedExplanation[];
  summary: string;
}

function age(since: string | Date | undefined, now: number): string {
  if (!since) return 'unknown';
  const s = Math.max(0, Math.round((now - new Date(since).getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** How often a policy's pods are probed now: its period, or the stretched one its status reports. */
export function probeCadence(policy: ProbePolicy): string {
  const period = policy.spec.probe.periodSeconds ?? 10;
  const effective = policy.status?.effectivePeriodSeconds;
  if (effective === undefined || effective <= period) return `every ${period}s`;
  return `every ${effective}s while the gate is settled (periodSeconds ${period}s, stretched because the operator is overloaded: see the policy's Degraded condition); every ${period}s while it is new or changing`;
}

/** Bucket Leases also carry their set's bucket count here; older ones only in the set id's `-s<N>`. */
export const SHARD_BUCKETS_LABEL = 'readygate.dev/shard-buckets';

/** The bucket count of a lease set: its label when valid, else the `-s<N>` the set id ends with. */
export function setBucketCount(setId: string, leases: Lease[]): number | undefined {
  const valid = (n: number) => Number.isInteger(n) && n >= 1 && n <= MAX_BUCKETS;
  for (const l of leases) {
    const text = l.metadata.labels?.[SHARD_BUCKETS_LABEL];
    if (text !== undefined && /^[0-9]{1,3}$/.test(text) && valid(Number(text))) return Number(text);
  }
  const suffix = /-s([0-9]{1,3})$/.exec(setId);
  return suffix && valid(Number(suffix[1])) ? Number(suffix[1]) : undefined;
}

/** When a lease's holder last renewed it, in ms (NaN when it has no valid renewTime). */
const renewedAt = (l: Lease) => (l.spec?.renewTime ? Date.parse(l.spec.renewTime) : Number.NaN);

/**
 * Held and not expired, by this machine's clock: good enough to explain a pod, whereas the
 * operator judges expiry by when it saw a lease change (src/kube/lease.ts).
 */
export function leaseIsLive(l: Lease, now: number): boolean {
  if (!l.spec?.holderIdentity) return false;
  return renewedAt(l) + (l.spec.leaseDurationSeconds ?? 0) * 1000 > now;
}

export interface LeaseSet {
  id: string;
  buckets: number;
  leases: Lease[];
}

/**
 * The set of bucket Leases in use: among the sets with a live lease, the one renewed last.
 * Undefined when no set is live: the operator does not shard (a set left over from an earlier
 * configuration has expired).
 */
export function activeLeaseSet(leases: Lease[], now: number): LeaseSet | undefined {
  const bySet = new Map<string, Lease[]>();
  for (const l of leases) {
    const id = l.metadata.labels?.[SHARD_BUCKET_LABEL];
    if (id) bySet.set(id, [...(bySet.get(id) ?? []), l]);
  }
  let best: { set: LeaseSet; renewed: number } | undefined;
  for (const [id, members] of bySet) {
    const live = members.filter((l) => leaseIsLive(l, now));
    const buckets = setBucketCount(id, members);
    if (live.length === 0 || buckets === undefined) continue;
    const renewed = Math.max(...live.map(renewedAt));
    if (!best || renewed > best.renewed) best = { set: { id, buckets, leases: members }, renewed };
  }
  return best?.set;
}

/** Pure: who owns the pod of `podUid`, from the bucket Leases listed; undefined when the operator does not shard. */
export function podOwner(podUid: string, leases: Lease[], now: number): PodOwner | undefined {
  const set = activeLeaseSet(leases, now);
  if (!set) return undefined;
  if (podUid === '') return { state: 'unknown', reason: 'the pod has no UID to pick its bucket' };
  const bucket = bucketOf(podUid, set.buckets);
  const lease = set.leases.find((l) => l.metadata.name === bucketLeaseName(set.id, bucket));
  const where = { bucket, buckets: set.buckets, leaseSet: set.id };
  if (!lease || !leaseIsLive(lease, now)) return { state: 'none', ...where };
  const renewTime = lease.spec?.renewTime ?? '';
  return {
    state: 'held',
    holder: lease.spec?.holderIdentity ?? '',
    ...where,
    renewTime,
    renewed: `${age(renewTime, now)} ago`,
  };
}

/** Why the bucket Leases could not be read, for a 403 or 404 on their LIST. */
export function ownerUnknown(namespace: string, err: unknown): PodOwner {
  const hint =
    statusCode(err) === 403
      ? `may not list Leases in namespace ${namespace}`
      : `cannot list Leases in namespace ${namespace} (check --operator-namespace)`;
  return { state: 'unknown', reason: `${hint}: ${serverError(err) ?? String(err)}` };
}

/** The owner line's text, after "owner: ". */
export function formatOwner(o: PodOwner): string {
  switch (o.state) {
    case 'held':
      return `${o.holder} (bucket ${o.bucket} of ${o.buckets}, renewed ${o.renewed})`;
    case 'none':
      return `none (no replica holds bucket ${o.bucket} of ${o.buckets})`;
    case 'unknown':
      return `unknown (${o.reason})`;
  }
}

/** Pure: the policies that select the pod but whose gate it does not list, oldest first, and what to do. */
export function notGatedBy(pod: V1Pod, policies: ProbePolicy[]): NotGatedExplanation[] {
  const namespace = pod.metadata?.namespace ?? '';
  const workload = owningWorkload(pod);
  return policies
    .filter((p) => !hasGate(pod, p.spec.conditionType) && selectsIgnoringGate(p, pod))
    .sort(olderFirst)
    .map((p): NotGatedExplanation => {
      const name = p.metadata?.name ?? '';
      const type = p.spec.conditionType;
      const lacks = `ProbePolicy ${name} selects this pod, but the pod does not list ${type} in spec.readinessGates`;
      const enabled = countsUngated(p);
      const why = enabled
        ? `${lacks} (it was created before gate injection covered it, or its namespace opts out), so readygate does not gate it: ${recreateAdvice(workload, namespace)}`
        : `${lacks} and the policy's spec.injection is Disabled (pods opt in), so readygate does not gate it: list ${type} in the readinessGates of the pod's template, then recreate the pod`;
      return {
        policy: name,
        conditionType: type,
        injection: enabled ? 'Enabled' : 'Disabled',
        workload: workloadName(workload),
        why,
      };
    });
}

/** Pure: explains a pod's readiness from the pod and every ProbePolicy of its namespace. */
export function explainPod(pod: V1Pod, policies: ProbePolicy[], now: number, owner?: PodOwner): PodExplanation {
  const cond = (t: string): V1PodCondition | undefined => pod.status?.conditions?.find((c) => c.type === t);
  const containersReady = cond('ContainersReady')?.status === 'True';
  const ready = cond('Ready')?.status === 'True';
  const gates = (pod.spec?.readinessGates ?? []).map((g): GateExplanation => {
    const type = g.conditionType;
    const c = cond(type);
    const candidates = policies.filter((p) => p.spec.conditionType === type).sort(olderFirst);
    const owner = candidates.find((p) => selects(p, pod));
    const base = {
      conditionType: type,
      policy: owner?.metadata?.name,
      status: c?.status ?? 'Missing',
      reason: c?.reason,
      message: c?.message,
      since: c?.lastTransitionTime ? `${age(c.lastTransitionTime, now)} ago` : undefined,
      lastTransitionTime: rfc3339(c?.lastTransitionTime),
      probes: owner ? probeCadence(owner) : undefined,
      blocking: c?.status !== 'True',
    };
    let why: string;
    if (!owner) {
      why =
        candidates.length === 0
          ? `no ProbePolicy in namespace ${pod.metadata?.namespace} provides ${type}; create one, or remove the gate`
          : `ProbePolicies for ${type} exist (${candidates.map((p) => p.metadata?.name).join(', ')}) but none selects this pod: check their selector against the pod's labels`;
    } else if (!pod.status?.podIP) {
      why = `policy ${owner.metadata?.name} will probe the pod once it has an IP`;
    } else if (owner.spec.dryRun) {
      why = `policy ${owner.metadata?.name} is in dryRun mode and never writes the condition`;
    } else if (!c) {
      why = `policy ${owner.metadata?.name} has not reported yet (first probe after initialDelaySeconds=${owner.spec.probe.initialDelaySeconds ?? 0}s; is the operator running?)`;
    } else if (c.status === 'True') {
      why = 'passing';
    } else {
      why = `policy ${owner.metadata?.name} reports ${c.reason ?? 'failure'}: ${c.message ?? ''}`;
    }
    const conflict =
      owner && computeTargets(owner, [pod], policies).conflicted.length > 0
        ? ' (conflict: an older policy owns it)'
        : '';
    return { ...base, why: why + conflict };
  });
  const blocking = gates.filter((g) => g.blocking);
  let summary: string;
  if (ready) summary = 'Ready: containers are ready and every readiness gate is True.';
  else if (!containersReady)
    summary = 'Not Ready: the containers themselves are not ready (kubelet probes), before any gate.';
  else if (blocking.length > 0) summary = `Not Ready: blocked by ${blocking.map((g) => g.conditionType).join(', ')}.`;
  else summary = 'Not Ready: every gate is True; the kubelet has not recomputed Ready yet.';
  const notGated = notGatedBy(pod, policies);
  if (notGated.length > 0) {
    const names = notGated.map((n) => n.policy).join(', ');
    summary += ` Not gated by ${notGated.length === 1 ? 'ProbePolicy' : 'ProbePolicies'} ${names}, which ${notGated.length === 1 ? 'selects' : 'select'} it.`;
  }
  return {
    pod: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    ready,
    containersReady,
    ...(owner ? { owner } : {}),
    gates,
    notGated,
    summary,
  };
}

/** An API time (a Date from client-node, or a string) as RFC 3339 in UTC, seconds unless it has a fraction. */
export function rfc3339(t: string | Date | undefined): string | undefined {
  if (t === undefined || t === '') return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace('.000Z', 'Z');
}

/**
 * Pure: the explanation as `-o json` prints it: the relative times a person reads ("11s ago")
 * become the RFC 3339 instants a program can compare (`since`, an owner's `renewed`).
 */
export function explanationJson(e: PodExplanation): unknown {
  const gates = e.gates.map(({ lastTransitionTime, ...g }) => ({ ...g, since: lastTransitionTime }));
  const owner = e.owner?.state === 'held' ? { ...e.owner, renewed: rfc3339(e.owner.renewTime) } : e.owner;
  return { ...e, ...(owner ? { owner } : {}), gates };
}

/** Renders an explanation for a terminal; everything from the cluster has its control characters escaped. */
export function formatExplanation(e: PodExplanation): string {
  const lines = [`Pod ${e.namespace}/${e.pod}: ${e.summary}`];
  if (e.owner) lines.push(`  owner: ${formatOwner(e.owner)}`);
  if (e.gates.length === 0) lines.push('  The pod has no readiness gates; readygate does not affect it.');
  for (const g of e.gates) {
    lines.push(`  gate ${g.conditionType}: ${g.status}${g.since ? ` for ${g.since.replace(' ago', '')}` : ''}`);
    lines.push(`    policy:  ${g.policy ?? '(none)'}`);
    if (g.probes) lines.push(`    probes:  ${g.probes}`);
    if (g.reason || g.message) lines.push(`    reason:  ${g.reason ?? ''}${g.message ? ` — ${g.message}` : ''}`);
    lines.push(`    ${g.blocking ? 'blocking' : 'ok'}:   ${g.why}`);
  }
  for (const n of e.notGated) lines.push(`  not gated: ${n.why}`);
  return `${lines.map(printable).join('\n')}\n`;
}

const DEFAULT_OPERATOR_NAMESPACE = 'readygate-system';
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** The bucket Leases' LIST is one small request; a hung API server should not hang the command. */
const LEASE_LIST_TIMEOUT_MS = 30_000;

/**
 * Every bucket Lease of the operator's namespace (one LIST, by the label's existence), or the
 * owner to report when they may not be listed: who owns the pod is a hint, not the answer.
 */
async function listBucketLeases(kc: KubeConfig, namespace: string): Promise<Lease[] | PodOwner> {
  try {
    return await restLeaseSetClient(kc, namespace).list(SHARD_BUCKET_LABEL, AbortSignal.timeout(LEASE_LIST_TIMEOUT_MS));
  } catch (err) {
    const code = statusCode(err);
    if (code === 403 || code === 404) return ownerUnknown(namespace, err);
    throw err;
  }
}

/** The flags of `readygate explain` (EXPLAIN_HELP documents them). */
export const EXPLAIN_FLAGS = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'operator-namespace': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `readygate explain`: resolves with the exit code. */
export async function runExplain(argv: string[]): Promise<number> {
  const { values, positionals } = (() => {
    try {
      return parseArgs({
        args: argv,
        allowPositionals: true,
        options: EXPLAIN_FLAGS,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  if (values.help) {
    process.stdout.write(EXPLAIN_HELP);
    return 0;
  }
  const target = positionals[0];
  const m = target ? /^(?:pods?\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(target) : null;
  if (!m || positionals.length !== 1) throw new UsageError(`expected one pod, as pod/NAME\n\n${EXPLAIN_HELP}`);
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError('--output must be text or json');
  const operatorNamespace = values['operator-namespace'] ?? DEFAULT_OPERATOR_NAMESPACE;
  if (!NAMESPACE_NAME.test(operatorNamespace)) {
    throw new UsageError(`--operator-namespace must be a namespace name, got ${JSON.stringify(operatorNamespace)}`);
  }
  const kc = loadKubeConfig(values.kubeconfig);
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: m[1] ?? '', namespace });
  const [list, leases] = await Promise.all([
    kc
      .makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({ group: GROUP, version: GROUP_VERSION, plural: PLURAL, namespace }) as Promise<{
      items: ProbePolicy[];
    }>,
    listBucketLeases(kc, operatorNamespace),
  ]);
  const now = Date.now();
  const owner = Array.isArray(leases) ? podOwner(pod.metadata?.uid ?? '', leases, now) : leases;
  const e = explainPod(pod, list.items, now, owner);
  process.stdout.write(output === 'json' ? `${printableJson(explanationJson(e))}\n` : formatExplanation(e));
  return e.ready ? 0 : 1;
}
