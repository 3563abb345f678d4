// The replicas of the sharding bench (bench/operator/shard-run.ts) and what it asks of them: start
// them with the bench's flags, sum their probes, and the probe gaps of the sampled pods. Shared by
// the phases (shard-run.ts: start-up, steady window, kill; shard-scale.ts: 1 → 3 → 1).
import { setTimeout as sleep } from 'node:timers/promises';
import { OPERATOR_NAMESPACE, type OperatorProcess, startOperator } from '../../test/support/operator.ts';
import type { BenchCluster } from './cluster.ts';
import { metricsText } from './harness.ts';
import { sumMetric } from './proc.ts';
import { type Sampler, startSampler } from './sampler.ts';
import type { ShardBenchOptions } from './shard-run.ts';
import type { GateWatch } from './watch.ts';

/**
 * The pods sampled with an address each (gapSample): the longest and the median time between two
 * probes of one pod across a moment (a kill, a scale), and how many were not probed again by the
 * deadline (their gap is still open, so the longest is a lower bound).
 */
export interface GapFigures {
  pods: number;
  longestSeconds: number;
  medianSeconds: number;
  open: number;
  waitedSeconds: number;
}

export const LEADER_ELECTION_ID = 'readygate';
export const POLICY = 'bench';
/** Milliseconds as seconds, to the millisecond. */
export const s = (ms: number) => Math.round(ms) / 1000;

/** The bucket Leases' set id, as `readygate run` names it (src/cli/options.ts). */
export const setIdOf = (buckets: number) => `${LEADER_ELECTION_ID}-s${buckets}`;

export interface SizeContext {
  o: ShardBenchOptions;
  n: number;
  ns: string;
  period: number;
  c: BenchCluster;
  watch: GateWatch;
  log: (m: string) => void;
  /** The addresses of the pods sampled for probe gaps. */
  tracked: string[];
}

/** Moves every k-th pod to an address of its own, k spreading the sample over all the pods; returns the addresses used. */
export function sampleForGaps(plans: { ip: string }[], own: string[]): string[] {
  const m = Math.min(own.length, plans.length);
  if (m === 0) return [];
  const k = Math.floor(plans.length / m);
  for (let j = 0; j < m; j++) plans[j * k]!.ip = own[j]!;
  return own.slice(0, m);
}

/** The CPU profiler's sampling interval (µs) with BENCH_OPERATOR_CPU_PROF. */
const PROF_INTERVAL_US = 10_000;

export interface Replica {
  name: string;
  op: OperatorProcess;
  pid: number;
  sampler: Sampler;
}

/** The flags of every replica: sharded, on the chart's Lease names and the bench's timings. */
function replicaArgs(x: SizeContext): string[] {
  const o = x.o;
  return [
    ...['--namespaces', x.ns, '--log-level', 'info', '--leader-elect'],
    ...['--leader-election-namespace', OPERATOR_NAMESPACE, '--leader-election-id', LEADER_ELECTION_ID],
    ...['--lease-duration', `${o.leaseDurationSeconds}s`, '--renew-deadline', `${o.renewDeadlineSeconds}s`],
    ...['--retry-period', `${o.retryPeriodSeconds}s`, '--shard-buckets', String(o.buckets), ...o.operatorArgs],
  ];
}

/** Starts the replicas at once (each its own POD_NAME and health port); stops those that started if one did not. */
export async function startReplicas(x: SizeContext, names: string[], t0: number): Promise<Replica[]> {
  const args = replicaArgs(x);
  // BENCH_OPERATOR_CPU_PROF=<dir>: each replica writes a V8 CPU profile there when it stops
  // (bench/operator/cpu-summary.ts reads it; a SIGKILLed replica writes none). One sample per
  // PROF_INTERVAL_US: at V8's default 1 ms, an hour's samples would weigh on the RSS measured.
  const prof = process.env.BENCH_OPERATOR_CPU_PROF;
  const env = (name: string) => ({
    POD_NAME: name,
    POD_NAMESPACE: OPERATOR_NAMESPACE,
    ...(prof
      ? {
          NODE_OPTIONS: `--cpu-prof --cpu-prof-interval=${PROF_INTERVAL_US} --cpu-prof-dir=${prof} --cpu-prof-name=${name}-\${pid}.cpuprofile`,
        }
      : {}),
  });
  const settled = await Promise.allSettled(
    names.map((name) => startOperator(x.c.operatorKubeconfig, x.c.cp.dir, args, env(name))),
  );
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.stop(20_000) : undefined)));
    throw failed.reason;
  }
  return settled.map((r, i) => {
    const op = (r as PromiseFulfilledResult<OperatorProcess>).value;
    const pid = op.child.pid!;
    const metrics = (timeoutMs: number) => metricsText(op, timeoutMs);
    const sampler = startSampler({
      pid,
      t0,
      namespace: x.ns,
      policy: POLICY,
      metrics,
      gatesTrue: () => x.watch.count('True'),
    });
    return { name: names[i]!, op, pid, sampler };
  });
}

/**
 * The replicas' probes summed, or undefined when one did not answer /metrics within 2 s: counting
 * a busy replica as 0 once made the goal of the kill's probe round 0 + N, reached at once.
 */
export async function probesOf(reps: Replica[]): Promise<number | undefined> {
  const texts = await Promise.all(reps.map((r) => metricsText(r.op, 2000).catch(() => undefined)));
  if (texts.some((t) => t === undefined)) return undefined;
  return texts.reduce((sum, t) => sum + sumMetric(t!, 'readygate_probes_total'), 0);
}

/** The replicas' probes summed, polled every 250 ms until all of them answer; undefined after `until`. */
export async function probesNow(reps: Replica[], until: number): Promise<number | undefined> {
  while (performance.now() < until) {
    const n = await probesOf(reps);
    if (n !== undefined) return n;
    await sleep(250);
  }
  return undefined;
}

/** The first time (performance.now()) the replicas' probes summed reach `goal`, polled every 250 ms; undefined after `until`. */
export async function probesReach(reps: Replica[], goal: number, until: number): Promise<number | undefined> {
  while (performance.now() < until) {
    if (((await probesOf(reps)) ?? -1) >= goal) return performance.now();
    await sleep(250);
  }
  return undefined;
}

/**
 * The sampled pods' probe gaps since `since` (ms since the epoch): polled every second until each
 * was probed again or `until` (performance.now()) passes; undefined with no sample.
 */
export async function gapsSince(
  x: SizeContext,
  since: number,
  until: number,
  across: string,
): Promise<GapFigures | undefined> {
  if (x.tracked.length === 0) return undefined;
  const start = performance.now();
  let gaps = await x.c.farm.gaps(since);
  while (Object.values(gaps).some((g) => g.open) && performance.now() < until) {
    await sleep(1000);
    gaps = await x.c.farm.gaps(since);
  }
  const ms = Object.values(gaps)
    .map((g) => g.longestMs)
    .sort((a, b) => a - b);
  const out = {
    pods: ms.length,
    longestSeconds: s(ms.at(-1) ?? 0),
    medianSeconds: s(ms[Math.floor(ms.length / 2)] ?? 0),
    open: Object.values(gaps).filter((g) => g.open).length,
    waitedSeconds: s(performance.now() - start),
  };
  x.log(`${x.ns}: probe gaps across ${across} ${JSON.stringify(out)}`);
  return out;
}

/**
 * One more probe per target, summed over `reps`, from now: when (performance.now()) they made
 * it, or undefined if not within 2 periods and a minute. The evidence that the replicas had the
 * chance to act before counting what they wrote.
 */
export async function oneMoreRound(x: SizeContext, reps: Replica[]): Promise<number | undefined> {
  const until = performance.now() + (2 * x.period + 60) * 1000;
  const base = await probesNow(reps, until);
  return base === undefined ? undefined : await probesReach(reps, base + x.n, until);
}
