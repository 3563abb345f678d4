import { describe, expect, it } from 'vitest';
import { podWatchChanges, podWatchPlan, shardSelectorHonoured } from '../../../src/safety/pod-watch.ts';
import { shardSelector } from '../../../src/safety/sharding.ts';

describe('podWatchPlan', () => {
  it('watches every pod when sharding is off, whatever the API server honours', () => {
    expect(podWatchPlan({ held: [], buckets: 0, honoured: true })).toEqual({ mode: 'full' });
  });

  it('watches every pod while the selector is not honoured or not known yet', () => {
    expect(podWatchPlan({ held: [1, 2], buckets: 16, honoured: false })).toEqual({ mode: 'full' });
    expect(podWatchPlan({ held: [1, 2], buckets: 16, honoured: undefined })).toEqual({ mode: 'full' });
  });

  it('gives one selector per held bucket, in bucket order, when honoured', () => {
    const plan = podWatchPlan({ held: [5, 0, 5, 1], buckets: 16, honoured: true });
    expect(plan.mode).toBe('sharded');
    if (plan.mode !== 'sharded') return;
    expect([...plan.selectors.keys()]).toEqual([0, 1, 5]);
    // Adjacent buckets stay apart: each has a watch of its own, started and stopped alone.
    expect(plan.selectors.get(0)).toBe(shardSelector([0], 16));
    expect(plan.selectors.get(1)).toBe(shardSelector([1], 16));
    expect(plan.selectors.get(5)).toBe(shardSelector([5], 16));
  });

  it('watches no pod while no bucket is held', () => {
    expect(podWatchPlan({ held: [], buckets: 4, honoured: true })).toEqual({ mode: 'sharded', selectors: new Map() });
  });

  it('refuses bad bucket counts and buckets', () => {
    expect(() => podWatchPlan({ held: [], buckets: -1, honoured: true })).toThrow(/buckets must be/);
    expect(() => podWatchPlan({ held: [], buckets: 1.5, honoured: false })).toThrow(/buckets must be/);
    expect(() => podWatchPlan({ held: [], buckets: 257, honoured: true })).toThrow(/1 to 256/);
    expect(() => podWatchPlan({ held: [4], buckets: 4, honoured: true })).toThrow(/bucket 4 is not in 0..3/);
  });
});

describe('podWatchChanges', () => {
  const sharded = (held: number[]) => podWatchPlan({ held, buckets: 8, honoured: true });

  it('starts the newly held buckets and stops the released ones, leaving the rest alone', () => {
    const { start, stop } = podWatchChanges(new Set([0, 1, 2]), sharded([1, 2, 6]));
    expect(start).toEqual([[6, shardSelector([6], 8)]]);
    expect(stop).toEqual([0]);
  });

  it('changes nothing when the held buckets did not change', () => {
    expect(podWatchChanges(new Set([3, 4]), sharded([4, 3]))).toEqual({ start: [], stop: [] });
  });

  it('stops every bucket watch for a full plan', () => {
    expect(podWatchChanges(new Set([7, 2]), { mode: 'full' })).toEqual({ start: [], stop: [2, 7] });
  });
});

describe('shardSelectorHonoured', () => {
  const sent = shardSelector([1, 2], 4);

  it('is true only when the list echoes the selector sent', () => {
    expect(shardSelectorHonoured(sent, { metadata: { shardInfo: { selector: sent } } })).toBe(true);
  });

  it('is false for a list without shardInfo: the gate is off and every pod came back', () => {
    expect(shardSelectorHonoured(sent, { metadata: {} })).toBe(false);
    expect(shardSelectorHonoured(sent, {})).toBe(false);
    expect(shardSelectorHonoured(sent, undefined)).toBe(false);
  });

  it('is false when the server applied another selector', () => {
    const other = shardSelector([1], 4);
    expect(shardSelectorHonoured(sent, { metadata: { shardInfo: { selector: other } } })).toBe(false);
  });

  it('refuses an empty selector', () => {
    expect(() => shardSelectorHonoured('', {})).toThrow(/empty shard selector/);
  });
});
