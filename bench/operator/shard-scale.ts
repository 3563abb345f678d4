// Scale 1 → 3 → 1 under load (issue 14, "Rebalancing"): after the single replica's steady window,
// two replicas join it, and once the buckets are split and every target probed again, the two
// stop gracefully and hand their buckets back. Each step: how long until the buckets are held
// as planned, how many moved, the pod writes (from the audit log, later) and gates leaving True
// (flips), and the longest gap a sampled pod went unprobed across the step.
import { setTimeout as sleep } from 'node:timers/promises';
import { fairShare } from '../../src/safety/sharding.ts';
import { OPERATOR_NAMESPACE } from '../../test/support/operator.ts';
import { bucketLeases, bucketsPerHolder, heldBuckets } from './shard-observe.ts';
import {
  type GapFigures,
  gapsSince,
  oneMoreRound,
  type Replica,
  type SizeContext,
  s,
  setIdOf,
  startReplicas,
} from './shard-replicas.ts';

export interface ScaleStep {
  from: number;
  to: number;
  /** Step → every bucket held by the new set, none above its fair share (Leases polled); null if not within the deadline. */
  balancedSeconds: number | null;
  /** Buckets whose holder changed over the step. */
  moved: number;
  holdersAfter: Record<string, number[]>;
  /** Balanced → one more probe per target, summed over the new set; null if not within the deadline. */
  roundSeconds: number | null;
  /** PATCH pods/status from the step's start to its end, from the audit log (filled in after the run). */
  podWrites: number;
  leftTrue: number;
  gaps?: GapFigures;
  observedSeconds: number;
  wall: { start: number; end: number };
}

/** The names of the replicas that join the single one. */
export const JOINERS = ['rg-a', 'rg-b'];

/** 1 → 3 → 1 around the running single replica; the joiners are stopped whatever happens. */
export async function scaleUpAndDown(x: SizeContext, solo: Replica, t0: number): Promise<ScaleStep[]> {
  const joiners: Replica[] = [];
  try {
    const up = await step(x, [solo], async () => {
      joiners.push(...(await startReplicas(x, JOINERS, t0)));
      return [solo, ...joiners];
    });
    const down = await step(x, [solo, ...joiners], async () => {
      await Promise.all(joiners.map((r) => r.op.stop(20_000)));
      return [solo];
    });
    return [up, down];
  } finally {
    await Promise.all(joiners.map((r) => r.sampler.stop()));
    await Promise.all(joiners.map((r) => r.op.stop(20_000)));
  }
}

/** One step: `change` starts or stops replicas and returns the set after it. */
async function step(x: SizeContext, before: Replica[], change: () => Promise<Replica[]>): Promise<ScaleStep> {
  const { o } = x;
  const setId = setIdOf(o.buckets);
  const heldBefore = heldBuckets(await bucketLeases(x.c.api, OPERATOR_NAMESPACE, setId), setId, o.buckets, Date.now());
  let leftTrue = 0;
  const off = x.watch.onTransition((_pod, from) => {
    if (from === 'True') leftTrue++;
  });
  const wallStart = Date.now();
  const ts = performance.now();
  const after = await change();
  x.log(`${x.ns}: scale ${before.length} → ${after.length}`);
  const names = new Set(after.map((r) => r.name));
  const share = fairShare(o.buckets, after.length);
  const deadline = ts + (o.leaseDurationSeconds * 4 + 30) * 1000;
  let held = new Map<number, string>();
  let balancedAt: number | undefined;
  while (balancedAt === undefined && performance.now() < deadline) {
    const leases = await bucketLeases(x.c.api, OPERATOR_NAMESPACE, setId);
    held = heldBuckets(leases, setId, o.buckets, Date.now(), names);
    const perHolder = bucketsPerHolder(held);
    const fair = [...perHolder.values()].every((b) => b.length <= share);
    if (held.size === o.buckets && fair) balancedAt = performance.now();
    else await sleep(o.leasePollMs);
  }
  const roundAt = balancedAt === undefined ? undefined : await oneMoreRound(x, after);
  const gaps = await gapsSince(
    x,
    wallStart,
    deadline + (2 * x.period + 60) * 1000,
    `scale ${before.length} → ${after.length}`,
  );
  off();
  const out: ScaleStep = {
    from: before.length,
    to: after.length,
    balancedSeconds: balancedAt === undefined ? null : s(balancedAt - ts),
    moved: [...held].filter(([b, h]) => heldBefore.get(b) !== h).length,
    holdersAfter: Object.fromEntries(bucketsPerHolder(held)),
    roundSeconds: roundAt === undefined || balancedAt === undefined ? null : s(roundAt - balancedAt),
    podWrites: 0,
    leftTrue,
    ...(gaps ? { gaps } : {}),
    observedSeconds: s(performance.now() - ts),
    wall: { start: wallStart, end: Date.now() },
  };
  x.log(`${x.ns}: scale ${JSON.stringify({ ...out, wall: undefined })}`);
  return out;
}
