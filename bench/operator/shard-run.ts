// The sharding bench (issue 14, docs/sharding.md §4 "Bench"), per pod count: a control plane of
// its own (etcd + kube-apiserver, audit log on) with the chart's RBAC rendered for sharding, N gated
// pods Running on the shared loopback listeners, then:
//   1 replica (--shard-buckets B), fresh: start-up until every pod was probed once and every gate
//     is True, then a steady window (CPU per probe, RSS, pod writes); then scaled to 3 replicas
//     and back to 1 (bench/operator/shard-scale.ts); stopped gracefully;
//   the gates cleared (every pod back to no condition, as at the first start);
//   R replicas, fresh: the same, then the replica holding the most buckets is SIGKILLed: time
//     until every bucket is held again (bucket Leases polled), pod writes and gates leaving True
//     since the kill, over one more probe round of every target by the survivors.
// Each replica is sampled every second (bench/operator/sampler.ts); pod writes come from the audit
// log at the end (bench/operator/shard-observe.ts).
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { OPERATOR_NAMESPACE, OPERATOR_USER } from '../../test/support/operator.ts';
import { abortable, type BenchCluster, withBenchCluster } from './cluster.ts';
import { type Addresses, CONDITION_TYPE, layout, metricsText, type ProbeTiming, policy } from './harness.ts';
import { addressBlock } from './listeners.ts';
import { untilOrDeadline } from './phases.ts';
import { startPods } from './pods.ts';
import { procSample, sumMetric } from './proc.ts';
import { type OverloadSample, windowStats } from './sampler.ts';
import {
  bucketLeases,
  bucketsPerHolder,
  countBetween,
  heldBuckets,
  type LeaseWriteFigures,
  leaseWriteFigures,
  leaseWrites,
  podStatusPatchTimes,
} from './shard-observe.ts';
import {
  type GapFigures,
  gapsSince,
  oneMoreRound,
  probesReach,
  type Replica,
  type SizeContext,
  s,
  sampleForGaps,
  setIdOf,
  startReplicas,
} from './shard-replicas.ts';
import { type ScaleStep, scaleUpAndDown } from './shard-scale.ts';
import { GateWatch } from './watch.ts';

export interface ShardBenchOptions {
  sizes: number[];
  /** Replicas of the second set (the first has one). */
  replicas: number;
  buckets: number;
  /** Probes per second over all targets that pick the period when periodSeconds is 0. */
  probesPerSecond: number;
  /** The start-up's deadline in seconds, or 0 for startupDeadlineSeconds(n). */
  startupDeadlineSeconds?: number;
  /** A fixed probe period, or 0 for one from probesPerSecond (10–3,600 s). */
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  initialDelaySeconds: number;
  /** The steady window lasts this long, and at least steadyPeriods probe periods. */
  steadyMinSeconds: number;
  steadyPeriods: number;
  /** Wait after every gate is True before the steady window (trailing policy status writes). */
  settleSeconds: number;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  leasePollMs: number;
  createConcurrency: number;
  sharedAddresses: number;
  /**
   * Pods given an address of their own (spread evenly over the pods), whose probe times the
   * listener farm keeps: the sample for the longest gap a pod went unprobed across the kill.
   */
  gapSample: number;
  /** Scale the single replica to 3 and back after its steady window (bench/operator/shard-scale.ts). */
  scale: boolean;
  /** Run the single replica's set first; without it, only the set of `replicas` runs. */
  solo: boolean;
  /** Extra flags for `readygate run`. */
  operatorArgs: string[];
  /** kube-apiserver feature gates, e.g. ShardedListAndWatch (each sharded replica then caches its buckets only). */
  featureGates?: Record<string, boolean>;
}

const MiB = (kib: number) => Math.round(kib / 102.4) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** The probe period at n pods: fixed, or n / probesPerSecond rounded up, within 10–3,600 s. */
export function periodFor(o: ShardBenchOptions, n: number): number {
  if (o.periodSeconds > 0) return o.periodSeconds;
  return Math.min(3600, Math.max(10, Math.ceil(n / o.probesPerSecond)));
}

export const steadySecondsFor = (o: ShardBenchOptions, period: number) =>
  Math.max(o.steadyMinSeconds, o.steadyPeriods * period);

/**
 * Start-up gives up after this: the write budget alone allows 200 writes/s, so n / 100 s is twice
 * that; `fixed` (--startup-deadline) replaces it when positive.
 */
export const startupDeadlineSeconds = (n: number, fixed = 0) => (fixed > 0 ? fixed : 180 + Math.ceil(n / 100));

export interface ReplicaFigures {
  name: string;
  /** At the end of the steady window: answering /metrics, not answering, or exited (absent from older JSON). */
  state?: string;
  /** readygate_leader and readygate_shard_buckets_owned at the end of the steady window. */
  leader: boolean;
  bucketsOwned: number;
  /**
   * readygate_shard_bucket_changes_total since the start, at the end of the steady window: churn
   * shows here. Absent from the JSON of runs older than this field.
   */
  bucketChanges?: { acquired: number; lost: number };
  /** CPU seconds from the process start to every gate True (or the start-up deadline). */
  startupCpuSeconds: number;
  /** stretchMax: the largest period stretch the replica reported in the window (readygate_probe_period_stretch). */
  steady: {
    probes: number;
    cpuMs: number;
    probesPerSecond: number;
    cpuPercent: number;
    cpuPerProbeMs: number | null;
    /** Absent from older JSON. */
    stretchMax?: number | null;
  };
  /** VmRSS and VmHWM at the end of the steady window. */
  rssMiB: number;
  hwmMiB: number;
  samples: OverloadSample[];
}

export interface KillFigures {
  victim: string;
  victimBuckets: number[];
  victimWasLeader: boolean;
  /** Kill → every bucket held by a survivor (Leases polled every leasePollMs); null if not within the deadline. */
  allHeldSeconds: number | null;
  /** leaseDuration + 2 × retryPeriod: the dead holder's last renew, its expiry, a survivor's next round. */
  boundSeconds: number;
  /** The victim's buckets: kill → held by a survivor, s. */
  takeoverSeconds: Array<[number, number | null]>;
  holdersAfter: Record<string, number[]>;
  leaderAfter: string | null;
  /** Every bucket held → the survivors made one more probe per target (summed), s; null if not within the deadline. */
  roundSeconds: number | null;
  podWritesSinceKill: number;
  /** Gates the watch saw leave True since the kill. */
  leftTrue: number;
  /** The sampled pods' probe gaps across the kill; absent from older JSON. */
  gaps?: GapFigures;
  gatesTrueAtEnd: number;
  observedSeconds: number;
  wall: { kill: number; end: number };
}

export interface ReplicaSetRun {
  replicas: number;
  /** Seconds to wait for no live bucket Lease before the start (the previous set's hand-back). */
  leasesFreeSeconds: number;
  healthySeconds: number;
  /** Start → readygate_probes_total summed over the replicas ≥ pods (polled every 250 ms). */
  probedOnceSeconds: number | null;
  allTrueSeconds: number | null;
  gatesTrueAfterStartup: number;
  startupPodWrites: number;
  /**
   * Seconds from the settle wait's end until every replica's period stretch was back to 1, the
   * start of the steady window; null when one was still stretched at the deadline (the window
   * starts then). Absent from older JSON, whose windows could start while a stretch unwound.
   */
  unstretchedSeconds?: number | null;
  /**
   * loadAverage: the machine's 1-minute load average at the window's start and end (others' work
   * shows here); absent from older JSON.
   */
  steady: { from: number; to: number; podWrites: number; leftTrue: number; loadAverage?: [number, number] };
  members: ReplicaFigures[];
  kill?: KillFigures;
  /** The single replica's set: 1 → 3, then 3 → 1 (absent from older JSON). */
  scale?: ScaleStep[];
  /** Wall clock (ms since the epoch) of the phase edges, for the audit log. */
  wall: { start: number; startupEnd: number; steadyFrom: number; steadyTo: number };
  /**
   * The replicas' Lease writes from the audit log, sent during the start-up and after it until
   * the set stopped (absent from older JSON): where a renew's time went when buckets are lost.
   */
  leaseWrites?: { startup: LeaseWriteFigures; after: LeaseWriteFigures };
}

export interface SizeRun {
  pods: number;
  namespace: string;
  periodSeconds: number;
  steadySeconds: number;
  createSeconds: number;
  /** Seconds to clear every gate between the sets; null while only the first set ran. */
  clearSeconds: number | null;
  sets: ReplicaSetRun[];
}

export interface ShardResult {
  options: ShardBenchOptions;
  runs: SizeRun[];
  seconds: number;
}

/** Runs every size in turn, each on a cluster of its own; an abort stops the current one. */
export async function runShardBench(
  o: ShardBenchOptions,
  log: (m: string) => void,
  signal?: AbortSignal,
  /** Called with what was measured so far after each set of replicas, so that a run cut short still leaves figures. */
  onProgress?: (partial: ShardResult) => Promise<void>,
): Promise<ShardResult> {
  const started = performance.now();
  const addrs: Addresses = {
    shared: addressBlock(50, o.sharedAddresses),
    flip: [],
    solo: addressBlock(52, o.gapSample),
  };
  const helmSet = ['sharding.enabled=true', `replicaCount=${o.replicas}`, `sharding.buckets=${o.buckets}`];
  const runs: SizeRun[] = [];
  for (const n of o.sizes) {
    signal?.throwIfAborted();
    const progress =
      onProgress &&
      ((r: SizeRun) => onProgress({ options: o, runs: [...runs, r], seconds: s(performance.now() - started) }));
    const run = await withBenchCluster(
      [...addrs.shared, ...addrs.solo],
      log,
      (c) => runSize(o, n, c, addrs, log, signal, progress),
      helmSet,
      o.featureGates,
      addrs.solo,
    );
    runs.push(run);
    await onProgress?.({ options: o, runs, seconds: s(performance.now() - started) });
  }
  return { options: o, runs, seconds: s(performance.now() - started) };
}

async function runSize(
  o: ShardBenchOptions,
  n: number,
  c: BenchCluster,
  addrs: Addresses,
  log: (m: string) => void,
  signal: AbortSignal | undefined,
  progress: ((r: SizeRun) => Promise<void>) | undefined,
): Promise<SizeRun> {
  const ns = `shards-${n}`;
  const period = periodFor(o, n);
  const timing: ProbeTiming = { ...o, periodSeconds: period };
  await c.api.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
  await c.api.request('POST', `/apis/readygate.dev/v1alpha1/namespaces/${ns}/probepolicies`, policy(ns, timing));
  const lay = layout(n, false, addrs, { massFlip: 0, singleFlips: 0 });
  const tracked = sampleForGaps(lay.plans, addrs.solo);
  const createStart = performance.now();
  const driver = { namespace: ns, conditionType: CONDITION_TYPE, port: c.farm.port, concurrency: o.createConcurrency };
  await abortable(startPods(c.api, lay.plans, driver), signal);
  const createSeconds = s(performance.now() - createStart);
  log(`${ns}: ${n} pods Running in ${createSeconds} s; probe period ${period} s`);
  const watch = await GateWatch.start(c.api, ns, CONDITION_TYPE);
  const ctx: SizeContext = { o, n, ns, period, c, watch, log, tracked };
  try {
    const size = {
      pods: n,
      namespace: ns,
      periodSeconds: period,
      steadySeconds: steadySecondsFor(o, period),
      createSeconds,
    };
    const audited = async (r: ReplicaSetRun) => {
      const end = Date.now();
      const deadlineMs = o.renewDeadlineSeconds * 1000;
      const leases = await leaseWrites(c.cp.dir);
      const leaseFigures = {
        startup: leaseWriteFigures(leases, r.wall.start, r.wall.startupEnd, deadlineMs),
        after: leaseWriteFigures(leases, r.wall.startupEnd, end, deadlineMs),
      };
      return {
        ...withAuditedWrites(r, await podStatusPatchTimes(c.cp.dir, OPERATOR_USER, ns)),
        leaseWrites: leaseFigures,
      };
    };
    const names = Array.from({ length: o.replicas }, (_, i) => `rg-${i}`);
    if (!o.solo) {
      const only = await audited(await abortable(replicaSet(ctx, names, true), signal));
      return { ...size, clearSeconds: null, sets: [only] };
    }
    const one = await audited(await abortable(replicaSet(ctx, ['rg-solo'], false), signal));
    await progress?.({ ...size, clearSeconds: null, sets: [one] });
    const clearStart = performance.now();
    await abortable(
      clearGates(
        ctx,
        lay.plans.map((p) => p.name),
      ),
      signal,
    );
    const clearSeconds = s(performance.now() - clearStart);
    log(`${ns}: every gate cleared in ${clearSeconds} s`);
    const many = await audited(await abortable(replicaSet(ctx, names, true), signal));
    return { ...size, clearSeconds, sets: [one, many] };
  } finally {
    watch.stop();
  }
}

/** The run with its pod writes counted from the audit times (ms since the epoch). */
function withAuditedWrites(r: ReplicaSetRun, times: number[]): ReplicaSetRun {
  const out: ReplicaSetRun = {
    ...r,
    startupPodWrites: countBetween(times, r.wall.start, r.wall.startupEnd),
    steady: { ...r.steady, podWrites: countBetween(times, r.wall.steadyFrom, r.wall.steadyTo) },
  };
  if (r.kill) out.kill = { ...r.kill, podWritesSinceKill: countBetween(times, r.kill.wall.kill, r.kill.wall.end) };
  if (r.scale) out.scale = r.scale.map((st) => ({ ...st, podWrites: countBetween(times, st.wall.start, st.wall.end) }));
  return out;
}

/** Removes the gate condition from every pod (strategic merge: $patch delete by type), then waits for the watch to see none. */
async function clearGates(x: SizeContext, names: string[]): Promise<void> {
  const body = { status: { conditions: [{ type: CONDITION_TYPE, $patch: 'delete' }] } };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < names.length; i = next++) {
      const path = `/api/v1/namespaces/${x.ns}/pods/${names[i]}/status`;
      await x.c.api.request('PATCH', path, body, 'application/strategic-merge-patch+json');
    }
  };
  await Promise.all(Array.from({ length: Math.min(x.o.createConcurrency, names.length) }, worker));
  await x.watch.until(() => x.watch.count('none') >= x.n, 120_000, `${x.ns}: every gate cleared`);
}

/** Waits (up to a lease duration and a margin) until no bucket Lease of the set is live; returns how long it took. */
async function untilLeasesFree(x: SizeContext): Promise<number> {
  const start = performance.now();
  const deadline = start + (x.o.leaseDurationSeconds + 10) * 1000;
  for (;;) {
    const held = heldBuckets(
      await bucketLeases(x.c.api, OPERATOR_NAMESPACE, setIdOf(x.o.buckets)),
      setIdOf(x.o.buckets),
      x.o.buckets,
      Date.now(),
    );
    if (held.size === 0) return s(performance.now() - start);
    if (performance.now() > deadline)
      throw new Error(
        `${x.ns}: buckets ${[...held.keys()].join(',')} still held by ${[...new Set(held.values())].join(',')}`,
      );
    await sleep(x.o.leasePollMs);
  }
}

/** One fresh set of replicas: start-up, steady window, and the kill if asked; every replica stopped after. */
async function replicaSet(x: SizeContext, names: string[], kill: boolean): Promise<ReplicaSetRun> {
  const leasesFreeSeconds = await untilLeasesFree(x);
  const t0 = performance.now();
  const wallStart = Date.now();
  const reps = await startReplicas(x, names, t0);
  const healthySeconds = s(performance.now() - t0);
  x.log(`${x.ns}: ${names.length} replica(s) healthy after ${healthySeconds} s`);
  try {
    const up = await startup(x, reps, t0);
    const startupEnd = Date.now();
    const startupCpu = reps.map((r) => (procSample(r.pid)?.cpuMs ?? 0) / 1000);
    await sleep(x.o.settleSeconds * 1000);
    const unstretchedSeconds = await untilUnstretched(x, reps);
    const steady = await steadyWindow(x, reps, t0, startupCpu);
    const run: ReplicaSetRun = {
      replicas: names.length,
      leasesFreeSeconds,
      healthySeconds,
      ...up,
      startupPodWrites: 0,
      unstretchedSeconds,
      steady: { ...steady.window, podWrites: 0 },
      members: steady.members,
      wall: { start: wallStart, startupEnd, steadyFrom: steady.wall.from, steadyTo: steady.wall.to },
    };
    if (kill) run.kill = await killOne(x, reps, steady.members);
    else if (x.o.scale) run.scale = await scaleUpAndDown(x, reps[0]!, t0);
    return run;
  } catch (err) {
    for (const r of reps) x.log(`${r.name} log tail:\n${r.op.log().slice(-2000)}`);
    throw err;
  } finally {
    await Promise.all(reps.map((r) => r.sampler.stop()));
    await Promise.all(reps.map((r) => r.op.stop(20_000)));
  }
}

type Startup = Pick<ReplicaSetRun, 'probedOnceSeconds' | 'allTrueSeconds' | 'gatesTrueAfterStartup'>;

/** Every pod probed once (summed probes ≥ n) and every gate True, both within the start-up deadline. */
async function startup(x: SizeContext, reps: Replica[], t0: number): Promise<Startup> {
  const deadlineMs = startupDeadlineSeconds(x.n, x.o.startupDeadlineSeconds) * 1000;
  const probed = probesReach(reps, x.n, t0 + deadlineMs);
  const allTrueAt = await untilOrDeadline(
    x.watch,
    () => x.watch.count('True') >= x.n,
    t0 + deadlineMs - performance.now(),
    `${x.ns}: every gate True`,
  );
  const probedAt = await probed;
  const out: Startup = {
    probedOnceSeconds: probedAt === undefined ? null : s(probedAt - t0),
    allTrueSeconds: allTrueAt === undefined ? null : s(allTrueAt - t0),
    gatesTrueAfterStartup: x.watch.count('True'),
  };
  x.log(`${x.ns}, ${reps.length} replica(s): start-up ${JSON.stringify(out)}`);
  return out;
}

/** Δcpu / Δprobes between the first and the last sample within [from, to] (s since t0) that have both. */
function perProbe(samples: OverloadSample[], from: number, to: number): ReplicaFigures['steady'] {
  const w = samples.filter((x) => x.t >= from && x.t <= to && x.cpuMs !== null && x.probes !== null);
  const a = w[0];
  const b = w.at(-1);
  if (!a || !b || b.t <= a.t)
    return { probes: 0, cpuMs: 0, probesPerSecond: 0, cpuPercent: 0, cpuPerProbeMs: null, stretchMax: null };
  const probes = b.probes! - a.probes!;
  const cpuMs = b.cpuMs! - a.cpuMs!;
  const seconds = b.t - a.t;
  return {
    probes,
    cpuMs,
    probesPerSecond: Math.round((probes / seconds) * 10) / 10,
    cpuPercent: Math.round((cpuMs / seconds / 10) * 10) / 10,
    cpuPerProbeMs: probes > 0 ? Math.round((cpuMs / probes) * 1000) / 1000 : null,
    stretchMax: windowStats(samples, from, to).stretchMax,
  };
}

/**
 * Waits until every replica's last sample says its periods are not stretched: a start-up that
 * saturated a replica leaves a stretch that unwinds over a minute or more (src/safety/overload.ts
 * lowers it at most 25 % per settle time), and a window taken meanwhile counts the policy passes
 * its status changes cost and probes fewer targets. Up to max(120 s, 2 periods), then null.
 */
async function untilUnstretched(x: SizeContext, reps: Replica[]): Promise<number | null> {
  const start = performance.now();
  const deadline = start + Math.max(120, 2 * x.period) * 1000;
  // A sample whose /metrics did not answer in time has no stretch: unknown, not 1 (a saturated
  // replica answers late, and a 100,000-pod window once began at a stretch of 10 that way).
  const stretched = () => reps.filter((r) => (r.sampler.samples.at(-1)?.stretch ?? Number.POSITIVE_INFINITY) > 1);
  while (stretched().length > 0) {
    if (performance.now() >= deadline) {
      x.log(`${x.ns}: still stretched (or not answering) at the deadline: ${stretched().map((r) => r.name)}`);
      return null;
    }
    await sleep(1000);
  }
  const seconds = s(performance.now() - start);
  x.log(`${x.ns}, ${reps.length} replica(s): every period stretch back to 1 after ${seconds} s`);
  return seconds;
}

/** The steady window: per replica CPU per probe, RSS, its buckets and whether it leads; gates leaving True. */
async function steadyWindow(x: SizeContext, reps: Replica[], t0: number, startupCpu: number[]) {
  let leftTrue = 0;
  const off = x.watch.onTransition((_pod, from) => {
    if (from === 'True') leftTrue++;
  });
  const seconds = steadySecondsFor(x.o, x.period);
  const from = s(performance.now() - t0);
  const wallFrom = Date.now();
  const loadFrom = os.loadavg()[0]!;
  x.log(`${x.ns}, ${reps.length} replica(s): steady window of ${seconds} s`);
  await sleep(seconds * 1000);
  const to = s(performance.now() - t0);
  const wallTo = Date.now();
  off();
  // The last sample of the window may still be on its way.
  await sleep(1500);
  const members = await Promise.all(
    reps.map(async (r, i): Promise<ReplicaFigures> => {
      // A replica that hangs or dies is a figure, not the end of the run.
      const answer = await metricsText(r.op, 5000).catch(() => undefined);
      const text = answer ?? '';
      const proc = procSample(r.pid);
      const exit = r.op.child.exitCode ?? r.op.child.signalCode;
      return {
        name: r.name,
        state:
          exit !== null ? `exited (${exit})` : answer === undefined ? '/metrics did not answer in 5 s' : 'answering',
        leader: sumMetric(text, 'readygate_leader') === 1,
        bucketsOwned: sumMetric(text, 'readygate_shard_buckets_owned'),
        bucketChanges: {
          acquired: sumMetric(text, 'readygate_shard_bucket_changes_total', (l) => l.includes('kind="acquired"')),
          lost: sumMetric(text, 'readygate_shard_bucket_changes_total', (l) => l.includes('kind="lost"')),
        },
        startupCpuSeconds: startupCpu[i]!,
        steady: perProbe(r.sampler.samples, from, to),
        rssMiB: MiB(proc?.rssKiB ?? 0),
        hwmMiB: MiB(proc?.hwmKiB ?? 0),
        samples: r.sampler.samples,
      };
    }),
  );
  for (const m of members)
    x.log(
      `${x.ns}: ${m.name} ${m.state}, leader ${m.leader}, ${m.bucketsOwned} buckets, steady ${JSON.stringify(m.steady)}, RSS ${m.rssMiB} MiB, HWM ${m.hwmMiB} MiB`,
    );
  const loadAverage: [number, number] = [round2(loadFrom), round2(os.loadavg()[0]!)];
  return { window: { from, to, leftTrue, loadAverage }, members, wall: { from: wallFrom, to: wallTo } };
}

/**
 * SIGKILLs the replica holding the most buckets; polls the bucket Leases until the survivors hold
 * every one, then waits for one more probe per target from the survivors (summed).
 */
async function killOne(x: SizeContext, reps: Replica[], members: ReplicaFigures[]): Promise<KillFigures> {
  const { o } = x;
  const setId = setIdOf(o.buckets);
  const before = bucketsPerHolder(
    heldBuckets(await bucketLeases(x.c.api, OPERATOR_NAMESPACE, setId), setId, o.buckets, Date.now()),
  );
  const victim = [...reps].sort((a, b) => (before.get(b.name)?.length ?? 0) - (before.get(a.name)?.length ?? 0))[0]!;
  const survivors = reps.filter((r) => r !== victim);
  const alive = new Set(survivors.map((r) => r.name));
  let leftTrue = 0;
  const off = x.watch.onTransition((_pod, from) => {
    if (from === 'True') leftTrue++;
  });
  const wallKill = Date.now();
  const tk = performance.now();
  await victim.op.kill();
  await victim.sampler.stop();
  x.log(`${x.ns}: killed ${victim.name} (buckets ${before.get(victim.name)?.join(',')})`);
  const takeover = new Map<number, number>();
  let held = new Map<number, string>();
  let allHeldAt: number | undefined;
  const deadline = tk + (o.leaseDurationSeconds * 4 + 30) * 1000;
  while (allHeldAt === undefined && performance.now() < deadline) {
    held = heldBuckets(await bucketLeases(x.c.api, OPERATOR_NAMESPACE, setId), setId, o.buckets, Date.now(), alive);
    const at = performance.now();
    for (const b of held.keys()) if (!takeover.has(b)) takeover.set(b, s(at - tk));
    if (held.size === o.buckets) allHeldAt = at;
    else await sleep(o.leasePollMs);
  }
  // One more probe per target, summed over the survivors, from the moment every bucket was held.
  const roundAt = allHeldAt === undefined ? undefined : await oneMoreRound(x, survivors);
  const gaps = await gapsSince(
    x,
    wallKill,
    tk + (o.leaseDurationSeconds * 4 + 30 + 2 * x.period + 60) * 1000,
    'the kill',
  );
  off();
  const leaderTexts = await Promise.all(survivors.map((r) => metricsText(r.op, 5000).catch(() => '')));
  const leaderAt = leaderTexts.findIndex((t) => sumMetric(t, 'readygate_leader') === 1);
  const victimBuckets = before.get(victim.name) ?? [];
  const out: KillFigures = {
    victim: victim.name,
    victimBuckets,
    victimWasLeader: members.find((m) => m.name === victim.name)?.leader ?? false,
    allHeldSeconds: allHeldAt === undefined ? null : s(allHeldAt - tk),
    boundSeconds: o.leaseDurationSeconds + 2 * o.retryPeriodSeconds,
    takeoverSeconds: victimBuckets.map((b) => [b, takeover.get(b) ?? null]),
    holdersAfter: Object.fromEntries(bucketsPerHolder(held)),
    leaderAfter: leaderAt < 0 ? null : survivors[leaderAt]!.name,
    roundSeconds: roundAt === undefined || allHeldAt === undefined ? null : s(roundAt - allHeldAt),
    podWritesSinceKill: 0,
    leftTrue,
    ...(gaps ? { gaps } : {}),
    gatesTrueAtEnd: x.watch.count('True'),
    observedSeconds: s(performance.now() - tk),
    wall: { kill: wallKill, end: Date.now() },
  };
  x.log(`${x.ns}: kill ${JSON.stringify({ ...out, wall: undefined })}`);
  return out;
}
