// readygate explain pod/NAME -n NS: for each readiness gate of a pod, which policy provides it,
// what the condition says and since when, and what is blocking Ready, in plain words.
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type V1Pod, type V1PodCondition } from '@kubernetes/client-node';
import { GROUP, GROUP_VERSION, PLURAL, type ProbePolicy } from '../api/types.ts';
import { computeTargets, olderFirst, selects } from '../controllers/targets.ts';
import { loadKubeConfig } from '../kube/config.ts';
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
  /** How often the policy probes the pod now, in words (stretched under overload). */
  probes?: string;
  blocking: boolean;
  why: string;
}

export interface PodExplanation {
  pod: string;
  namespace: string;
  ready: boolean;
  containersReady: boolean;
  gates: GateExplanation[];
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

/** Pure: explains a pod's readiness from the pod and every ProbePolicy of its namespace. */
export function explainPod(pod: V1Pod, policies: ProbePolicy[], now: number): PodExplanation {
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
  return {
    pod: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    ready,
    containersReady,
    gates,
    summary,
  };
}

/** Renders an explanation for a terminal; everything from the cluster has its control characters escaped. */
export function formatExplanation(e: PodExplanation): string {
  const lines = [`Pod ${e.namespace}/${e.pod}: ${e.summary}`];
  if (e.gates.length === 0) lines.push('  The pod has no readiness gates; readygate does not affect it.');
  for (const g of e.gates) {
    lines.push(`  gate ${g.conditionType}: ${g.status}${g.since ? ` for ${g.since.replace(' ago', '')}` : ''}`);
    lines.push(`    policy:  ${g.policy ?? '(none)'}`);
    if (g.probes) lines.push(`    probes:  ${g.probes}`);
    if (g.reason || g.message) lines.push(`    reason:  ${g.reason ?? ''}${g.message ? ` — ${g.message}` : ''}`);
    lines.push(`    ${g.blocking ? 'blocking' : 'ok'}:   ${g.why}`);
  }
  return `${lines.map(printable).join('\n')}\n`;
}

/** `readygate explain`: resolves with the exit code. */
export async function runExplain(argv: string[]): Promise<number> {
  const { values, positionals } = (() => {
    try {
      return parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          namespace: { type: 'string', short: 'n' },
          kubeconfig: { type: 'string' },
          output: { type: 'string', short: 'o' },
          help: { type: 'boolean', short: 'h' },
        },
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
  const kc = loadKubeConfig(values.kubeconfig);
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: m[1] ?? '', namespace });
  const list = (await kc
    .makeApiClient(CustomObjectsApi)
    .listNamespacedCustomObject({ group: GROUP, version: GROUP_VERSION, plural: PLURAL, namespace })) as {
    items: ProbePolicy[];
  };
  const e = explainPod(pod, list.items, Date.now());
  process.stdout.write(output === 'json' ? `${printableJson(e)}\n` : formatExplanation(e));
  return e.ready ? 0 : 1;
}
