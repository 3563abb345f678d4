// Phases that the operator benchmarks share: single flips and a time-to-gate batch, run by
// bench/operator/harness.ts at its fleet size and by bench/operator/overload.ts while the
// operator is saturated. Each waits with a deadline and reports what it saw by then; the caller
// decides whether a shortfall is an error (the fleet) or a figure (the overload).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Api } from './api.ts';
import type { ListenerFarm } from './listeners.ts';
import { type PodPlan, type StartedPod, startPods } from './pods.ts';
import { percentile } from './proc.ts';
import type { GateWatch } from './watch.ts';

export interface PhaseContext {
  ns: string;
  conditionType: string;
  api: Api;
  farm: ListenerFarm;
  watch: GateWatch;
  /** Pods created at once (create + status in flight). */
  createConcurrency: number;
}

/** The time the predicate first held, or undefined once timeoutMs has passed. */
export function untilOrDeadline(
  watch: GateWatch,
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<number | undefined> {
  // until() rejects only on its deadline.
  return watch.until(check, timeoutMs, what).catch(() => undefined);
}

/** The value, or the error until() would have thrown when a phase must not fall short. */
export function reached<T>(value: T | undefined | null, what: string, timeoutMs: number): T {
  if (value === undefined || value === null) {
    throw new Error(`${what}: not reached within ${(timeoutMs / 1000).toFixed(0)} s`);
  }
  return value;
}

const s = (ms: number) => Math.round(ms) / 1000;

export interface SingleFlipPlan {
  /** The pods to flip, one per address, in order. */
  pods: string[];
  addresses: string[];
  /** Seconds between flips (each one is taken down at a random moment within ±50 %). */
  spacingSeconds: number;
  /** Deadline for the pods to be True before the first flip, again for every one to go False, and again to recover. */
  timeoutMs: number;
  /** Recovered, once the addresses are up again (default: every flipped pod True). */
  recovered?: () => boolean;
}

export interface SingleFlipRun {
  /** Per pod, in order: target down → condition False seen by the watch, s; null if not by the deadline. */
  samples: (number | null)[];
  /** Pods whose gate was not True when their target went down: False is no flip for them, and no sample. */
  notTrueBefore: string[];
  /** Addresses up again → recovered, s; null if not by the deadline. */
  recoverySeconds: number | null;
}

/** Once the pods are True (or the deadline passed), one solo target down at a time, staggered; then all up again. */
export async function singleFlips(c: PhaseContext, plan: SingleFlipPlan): Promise<SingleFlipRun> {
  const { watch, farm } = c;
  const allTrue = () => plan.pods.every((p) => watch.pods.get(p)?.gate === 'True');
  await untilOrDeadline(watch, allTrue, plan.timeoutMs, 'single flips: True before');
  const downAt = new Map<string, number>();
  const falseAt = new Map<string, number>();
  const flipped = new Set(plan.pods);
  const notTrueBefore: string[] = [];
  const off = watch.onTransition((pod, _from, at) => {
    if (pod.gate === 'False' && flipped.has(pod.name) && !falseAt.has(pod.name)) falseAt.set(pod.name, at);
  });
  for (let k = 0; k < plan.pods.length; k++) {
    await sleep(plan.spacingSeconds * 1000 * (0.5 + Math.random()));
    const pod = plan.pods[k]!;
    if (watch.pods.get(pod)?.gate !== 'True') notTrueBefore.push(pod);
    downAt.set(pod, performance.now());
    await farm.down([plan.addresses[k]!]);
  }
  await untilOrDeadline(watch, () => falseAt.size >= flipped.size, plan.timeoutMs, 'single flips: all False');
  off();
  const samples = plan.pods.map((p) =>
    falseAt.has(p) && !notTrueBefore.includes(p) ? s(falseAt.get(p)! - downAt.get(p)!) : null,
  );
  const r0 = performance.now();
  await farm.up(plan.addresses);
  const recoveredAt = await untilOrDeadline(watch, plan.recovered ?? allTrue, plan.timeoutMs, 'single recovery');
  return { samples, notTrueBefore, recoverySeconds: recoveredAt === undefined ? null : s(recoveredAt - r0) };
}

export interface GateBatchPlan {
  /** Names of the new pods: prefix + index. */
  prefix: string;
  count: number;
  ratePerSecond: number;
  /** Their IPs, round-robin. */
  addresses: string[];
  port: number;
  /** Deadline for every new pod's gate True, counted once the last one is Running. */
  timeoutMs: number;
}

export interface GateBatchRun {
  /** Per pod whose gate turned True by the deadline: pod IP given → gate True seen by the watch, ms. */
  latenciesMs: number[];
  /** Pods whose gate was not True by the deadline. */
  missing: number;
}

/** A paced batch of new pods; time from each pod's IP (its status patch returned) to its gate True. */
export async function timeToGate(c: PhaseContext, plan: GateBatchPlan): Promise<GateBatchRun> {
  const { watch } = c;
  const plans: PodPlan[] = Array.from({ length: plan.count }, (_, i) => ({
    name: `${plan.prefix}${String(i).padStart(5, '0')}`,
    ip: plan.addresses[i % plan.addresses.length]!,
  }));
  const names = new Set(plans.map((p) => p.name));
  const trueAt = new Map<string, number>();
  const off = watch.onTransition((pod, _from, at) => {
    if (pod.gate === 'True' && names.has(pod.name) && !trueAt.has(pod.name)) trueAt.set(pod.name, at);
  });
  const started: StartedPod[] = await startPods(c.api, plans, {
    namespace: c.ns,
    conditionType: c.conditionType,
    port: plan.port,
    concurrency: c.createConcurrency,
    ratePerSecond: plan.ratePerSecond,
  });
  await untilOrDeadline(watch, () => trueAt.size >= plans.length, plan.timeoutMs, 'time to gate: all True');
  off();
  const done = started.filter((p) => trueAt.has(p.name));
  return {
    latenciesMs: done.map((p) => Math.round(trueAt.get(p.name)! - p.ipAt)),
    missing: started.length - done.length,
  };
}

/** p50, p99 (nearest rank) and max of latencies in ms, in seconds; NaN when there are none. */
export function latencySummary(ms: number[]): { p50Seconds: number; p99Seconds: number; maxSeconds: number } {
  return {
    p50Seconds: s(percentile(ms, 50)),
    p99Seconds: s(percentile(ms, 99)),
    maxSeconds: ms.length === 0 ? Number.NaN : s(Math.max(...ms)),
  };
}
