// The overload bench (issue 16), per pod count: a control plane of its own, N gated pods Running,
// then the operator (--namespaces on them) probing every N at one period, more than one CPU can
// keep up with. Phases, each with a deadline so that a run that never finishes still ends and
// gives figures: start-up (every gate True) → a time-to-gate batch of new pods → single flips,
// the last two while the operator is still saturated. A sampler (bench/operator/sampler.ts)
// follows the operator every second throughout; pod writes come from the audit log afterwards.
import { podStatusPatches } from '../../test/support/audit.ts';
import { OPERATOR_USER, type OperatorProcess, startOperator } from '../../test/support/operator.ts';
import { abortable, type BenchCluster, withBenchCluster } from './cluster.ts';
import {
  type Addresses,
  CONDITION_TYPE,
  type Layout,
  layout,
  metricsText,
  type ProbeTiming,
  policy,
} from './harness.ts';
import { addressBlock } from './listeners.ts';
import { type PhaseContext, singleFlips, timeToGate, untilOrDeadline } from './phases.ts';
import { startPods } from './pods.ts';
import { procSample } from './proc.ts';
import {
  countPerInterval,
  type OverloadSample,
  type Sampler,
  startSampler,
  type WindowStats,
  windowStats,
} from './sampler.ts';
import { GateWatch } from './watch.ts';

export interface OverloadOptions extends ProbeTiming {
  quick: boolean;
  /** Pod counts, each run with a control plane and a namespace of its own. */
  sizes: number[];
  /** Every gate True gives up after this and reports how many were. */
  startupDeadlineSeconds: number;
  /** New pods created while the operator is saturated, and their pace. */
  gateBatch: number;
  gateRate: number;
  gateDeadlineSeconds: number;
  singleFlips: number;
  singleFlipSpacingSeconds: number;
  /** Deadline for the flipped pods to be True first, again to go False, and again to recover. */
  flipDeadlineSeconds: number;
  /** Gates True and pod writes are reported per interval of this many seconds. */
  checkpointSeconds: number;
  sharedAddresses: number;
  createConcurrency: number;
  /** Extra flags for `readygate run`. */
  operatorArgs: string[];
}

export type PhaseName = 'start-up' | 'time to gate' | 'single flips';

export interface OverloadPhase {
  name: PhaseName;
  /** Seconds since the operator's start. */
  from: number;
  to: number;
  stats: WindowStats;
  /** The operator's PATCH pods/status in the phase (audit log). */
  podWrites: number;
}

export interface OverloadRun {
  pods: number;
  namespace: string;
  /** Seconds to create the pods and make them Running (the benchmark's own set-up). */
  createSeconds: number;
  /** Operator start → every gate True; null if not within the deadline. */
  allTrueSeconds: number | null;
  /** Gates True when the start-up phase ended (all of them, or as many as by its deadline). */
  gatesTrueAfterStartup: number;
  timeToGate: { pods: number; ratePerSecond: number; missing: number; latenciesMs: number[] };
  singleFlip: { samples: (number | null)[]; notTrueBefore: string[]; recoverySeconds: number | null };
  phases: OverloadPhase[];
  /** What the operator told users, read once the start-up phase ended (while still saturated). */
  saidSo: SaidSo;
  /** The operator's PATCH pods/status (audit log) per checkpoint interval: [end, s since operator start; count]. */
  podWritesPerInterval: Array<[number, number]>;
  /** VmHWM and CPU seconds of the operator at the end. */
  peakRssMiB: number;
  cpuSeconds: number;
  samples: OverloadSample[];
}

/** The policy's Degraded condition, status.effectivePeriodSeconds and ProbesOverloaded Events. */
export interface SaidSo {
  degradedReason: string | null;
  message: string | null;
  effectivePeriodSeconds: number | null;
  overloadedEvents: number;
}

export interface OverloadResult {
  options: OverloadOptions;
  runs: OverloadRun[];
  seconds: number;
}

const POLICY = 'bench';
const s = (ms: number) => Math.round(ms) / 1000;

/** The addresses of a run: shared ones for most pods, one solo address per single flip. */
function addresses(o: OverloadOptions): Addresses {
  return { shared: addressBlock(50, o.sharedAddresses), flip: [], solo: addressBlock(52, o.singleFlips) };
}

/** Runs every size in turn; an abort (Ctrl-C) stops the current one's operator and control plane. */
export async function runOverloadBench(
  o: OverloadOptions,
  log: (m: string) => void,
  signal?: AbortSignal,
): Promise<OverloadResult> {
  const started = performance.now();
  const runs: OverloadRun[] = [];
  const addrs = addresses(o);
  for (const n of o.sizes) {
    signal?.throwIfAborted();
    const run = await withBenchCluster([...addrs.shared, ...addrs.solo], log, (c) =>
      runSize(o, n, c, addrs, log, signal),
    );
    runs.push(run);
  }
  return { options: o, runs, seconds: s(performance.now() - started) };
}

async function runSize(
  o: OverloadOptions,
  n: number,
  c: BenchCluster,
  addrs: Addresses,
  log: (m: string) => void,
  signal: AbortSignal | undefined,
): Promise<OverloadRun> {
  const ns = `overload-${n}`;
  await c.api.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
  await c.api.request('POST', `/apis/readygate.dev/v1alpha1/namespaces/${ns}/probepolicies`, policy(ns, o));
  const lay = layout(n, true, addrs, { massFlip: 0, singleFlips: o.singleFlips });
  const createStart = performance.now();
  const driver = { namespace: ns, conditionType: CONDITION_TYPE, port: c.farm.port, concurrency: o.createConcurrency };
  await abortable(startPods(c.api, lay.plans, driver), signal);
  const createSeconds = s(performance.now() - createStart);
  log(`${ns}: ${n} pods Running in ${createSeconds} s`);
  const watch = await GateWatch.start(c.api, ns, CONDITION_TYPE);
  let op: OperatorProcess | undefined;
  let sampler: Sampler | undefined;
  try {
    const t0 = performance.now();
    const wallT0 = Date.now();
    op = await startOperator(c.operatorKubeconfig, c.cp.dir, [
      '--namespaces',
      ns,
      '--log-level',
      'info',
      ...o.operatorArgs,
    ]);
    const pid = op.child.pid!;
    const metrics = (timeoutMs: number) => metricsText(op!, timeoutMs);
    sampler = startSampler({ pid, t0, namespace: ns, policy: POLICY, metrics, gatesTrue: () => watch.count('True') });
    const phase: PhaseContext = {
      ns,
      conditionType: CONDITION_TYPE,
      api: c.api,
      farm: c.farm,
      watch,
      createConcurrency: o.createConcurrency,
    };
    const seen = await abortable(phases(o, n, phase, lay, addrs, t0, log), signal);
    await sampler.stop();
    const audited = podStatusPatches(c.cp.dir, OPERATOR_USER, ns);
    const podWriteTimes = audited.map((e) => s(Date.parse(e.requestReceivedTimestamp) - wallT0));
    return { pods: n, namespace: ns, createSeconds, ...figures(o, seen, sampler.samples, podWriteTimes, pid) };
  } catch (err) {
    if (op && !signal?.aborted) log(`operator log tail:\n${op.log().slice(-3000)}`);
    throw err;
  } finally {
    await sampler?.stop();
    await op?.stop();
    watch.stop();
  }
}

type PhaseFigures = Pick<
  OverloadRun,
  'allTrueSeconds' | 'gatesTrueAfterStartup' | 'timeToGate' | 'singleFlip' | 'saidSo'
>;

/** Reads what the operator says about its overload on the policy and in Events. */
async function saidSo(c: PhaseContext): Promise<SaidSo> {
  type Policy = {
    status?: { effectivePeriodSeconds?: number; conditions?: { type: string; reason: string; message: string }[] };
  };
  const p = await c.api.request<Policy>(
    'GET',
    `/apis/readygate.dev/v1alpha1/namespaces/${c.ns}/probepolicies/${POLICY}`,
  );
  const degraded = p.status?.conditions?.find((x) => x.type === 'Degraded');
  const events = await c.api.request<{ items: unknown[] }>(
    'GET',
    `/api/v1/namespaces/${c.ns}/events?fieldSelector=reason%3DProbesOverloaded`,
  );
  return {
    degradedReason: degraded?.reason ?? null,
    message: degraded?.message ?? null,
    effectivePeriodSeconds: p.status?.effectivePeriodSeconds ?? null,
    overloadedEvents: events.items.length,
  };
}
type PhaseMark = { name: PhaseName; from: number; to: number };

/** What the phases saw, with the samples and pod writes of each phase, and the operator's cost. */
function figures(
  o: OverloadOptions,
  seen: { figures: PhaseFigures; marks: PhaseMark[] },
  samples: OverloadSample[],
  podWriteTimes: number[],
  pid: number,
): Omit<OverloadRun, 'pods' | 'namespace' | 'createSeconds'> {
  const proc = procSample(pid);
  return {
    ...seen.figures,
    phases: seen.marks.map((m) => ({
      ...m,
      stats: windowStats(samples, m.from, m.to),
      podWrites: podWriteTimes.filter((t) => t >= m.from && t < m.to).length,
    })),
    podWritesPerInterval: countPerInterval(podWriteTimes, o.checkpointSeconds, samples.at(-1)?.t ?? 0),
    peakRssMiB: Math.round((proc?.hwmKiB ?? 0) / 102.4) / 10,
    cpuSeconds: (proc?.cpuMs ?? 0) / 1000,
    samples,
  };
}

/** The three phases in turn, each with its deadline; returns what they saw and when each ran. */
async function phases(
  o: OverloadOptions,
  n: number,
  c: PhaseContext,
  lay: Layout,
  addrs: Addresses,
  t0: number,
  log: (m: string) => void,
): Promise<{ figures: PhaseFigures; marks: PhaseMark[] }> {
  const marks: PhaseMark[] = [];
  const since = () => s(performance.now() - t0);
  const timed = async <T>(name: PhaseName, work: () => Promise<T>): Promise<T> => {
    const from = since();
    const out = await work();
    marks.push({ name, from, to: since() });
    return out;
  };
  const { watch, ns } = c;
  const allTrueAt = await timed('start-up', () =>
    untilOrDeadline(watch, () => watch.count('True') >= n, o.startupDeadlineSeconds * 1000, `${ns}: every gate True`),
  );
  const gatesTrueAfterStartup = watch.count('True');
  const said = await saidSo(c);
  log(`${ns}: the policy says ${JSON.stringify(said)}`);
  log(
    `${ns}: every gate True ${allTrueAt === undefined ? `not within ${o.startupDeadlineSeconds} s` : `after ${s(allTrueAt - t0)} s`}; ${gatesTrueAfterStartup} of ${n} True`,
  );
  const gate = await timed('time to gate', () =>
    timeToGate(c, {
      prefix: 'g-',
      count: o.gateBatch,
      ratePerSecond: o.gateRate,
      addresses: addrs.shared,
      port: c.farm.port,
      timeoutMs: o.gateDeadlineSeconds * 1000,
    }),
  );
  log(`${ns}: time to gate: ${o.gateBatch - gate.missing} of ${o.gateBatch} new pods True`);
  const flips = await timed('single flips', () =>
    singleFlips(c, {
      pods: lay.soloPods,
      addresses: addrs.solo,
      spacingSeconds: o.singleFlipSpacingSeconds,
      timeoutMs: o.flipDeadlineSeconds * 1000,
    }),
  );
  log(`${ns}: single flips ${JSON.stringify(flips)}`);
  return {
    figures: {
      allTrueSeconds: allTrueAt === undefined ? null : s(allTrueAt - t0),
      gatesTrueAfterStartup,
      timeToGate: { pods: o.gateBatch, ratePerSecond: o.gateRate, ...gate },
      singleFlip: flips,
      saidSo: said,
    },
    marks,
  };
}
