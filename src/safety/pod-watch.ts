// Which pods a replica lists and watches (docs/sharding.md, step 3), pure: the one home of the
// rule. Sharded, and on an API server that honours `shardSelector` (KEP-5866, feature gate
// ShardedListAndWatch), a replica watches only the buckets it holds, one list/watch per bucket,
// so that acquiring or releasing a bucket neither re-lists nor drops the others. Anywhere else
// (unsharded, the gate off, or not known yet) it watches every pod and filters by bucketOf, as
// before step 3: with the gate off the API server ignores the selector and sends every pod.
import { checkBucketCount, shardSelector } from './sharding.ts';

export type PodWatchPlan =
  /** One list/watch of every pod; ownership is decided locally by bucketOf. */
  | { mode: 'full' }
  /** One list/watch per held bucket, each with its bucket's selector; no held bucket: no pods. */
  | { mode: 'sharded'; selectors: ReadonlyMap<number, string> };

export interface PodWatchInput {
  /** The buckets this replica holds now. */
  held: Iterable<number>;
  /** The bucket count, 0 when sharding is off. */
  buckets: number;
  /** Whether the API server honoured a shard selector; undefined while not known. */
  honoured: boolean | undefined;
}

/** Pure: the pod watches a replica should run now. */
export function podWatchPlan(input: PodWatchInput): PodWatchPlan {
  if (!Number.isInteger(input.buckets) || input.buckets < 0) {
    throw new RangeError(`buckets must be 0 (sharding off) or a bucket count, got ${input.buckets}`);
  }
  if (input.buckets === 0 || input.honoured !== true) return { mode: 'full' };
  checkBucketCount(input.buckets);
  const selectors = new Map<number, string>();
  for (const b of [...new Set(input.held)].sort((x, y) => x - y)) selectors.set(b, shardSelector([b], input.buckets));
  return { mode: 'sharded', selectors };
}

/** Pure: the bucket watches to start and to stop to go from the running ones to `plan`'s. */
export function podWatchChanges(
  running: ReadonlySet<number>,
  plan: PodWatchPlan,
): { start: [number, string][]; stop: number[] } {
  if (plan.mode === 'full') return { start: [], stop: [...running].sort((a, b) => a - b) };
  const start = [...plan.selectors].filter(([b]) => !running.has(b));
  const stop = [...running].filter((b) => !plan.selectors.has(b)).sort((a, b) => a - b);
  return { start, stop };
}

/** The list metadata that says whether the API server filtered it by a shard selector. */
export interface ShardedListMeta {
  metadata?: { shardInfo?: { selector?: string } };
}

/**
 * Pure: whether the API server honoured `sent`: it echoes the selector it applied in
 * `metadata.shardInfo.selector`. With the gate off it ignores the parameter, sends every pod and
 * no shardInfo; anything but the exact echo is treated as not honoured, so the caller keeps the
 * full watch.
 */
export function shardSelectorHonoured(sent: string, list: ShardedListMeta | undefined): boolean {
  if (sent === '') throw new RangeError('an empty shard selector cannot be checked: it selects every pod');
  return list?.metadata?.shardInfo?.selector === sent;
}
