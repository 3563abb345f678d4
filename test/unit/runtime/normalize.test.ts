import { describe, expect, it } from 'vitest';
import { datesToStrings, formatTime, normalizeObject, normalizerFor } from '../../../src/runtime/normalize.ts';

const POD = { apiVersion: 'v1', kind: 'Pod' };

describe('formatTime', () => {
  it('writes metav1.Time as the API server does, without fraction', () => {
    expect(formatTime(new Date('2026-11-27T05:31:23.000Z'))).toBe('2026-11-27T05:31:23Z');
  });

  it('keeps sub-second precision (MicroTime) with six digits', () => {
    expect(formatTime(new Date('2026-11-27T05:31:23.123Z'))).toBe('2026-11-27T05:31:23.123000Z');
  });
});

describe('datesToStrings', () => {
  it('converts every Date in a tree, including inside arrays', () => {
    const t = new Date('2026-11-27T05:31:23Z');
    const input = {
      metadata: { name: 'a', creationTimestamp: t },
      status: { conditions: [{ type: 'Ready', lastTransitionTime: t }, { type: 'X' }] },
    };
    expect(datesToStrings(input)).toEqual({
      metadata: { name: 'a', creationTimestamp: '2026-11-27T05:31:23Z' },
      status: {
        conditions: [{ type: 'Ready', lastTransitionTime: '2026-11-27T05:31:23Z' }, { type: 'X' }],
      },
    });
  });

  it('does not mutate its input and shares subtrees that hold no Date', () => {
    const t = new Date('2026-11-27T05:31:23Z');
    const spec = { containers: [{ name: 'c' }] };
    const input = { metadata: { creationTimestamp: t }, spec };
    const out = datesToStrings(input);
    expect(input.metadata.creationTimestamp).toBe(t);
    expect(out.spec).toBe(spec);
    expect(out).not.toBe(input);
  });

  it('returns a tree without Dates unchanged (same reference)', () => {
    const watchObj = { metadata: { creationTimestamp: '2026-11-27T05:31:23Z' }, items: [1, 'a', null] };
    expect(datesToStrings(watchObj)).toBe(watchObj);
  });

  it('turns an invalid Date into null rather than throwing', () => {
    expect(datesToStrings({ t: new Date(Number.NaN) })).toEqual({ t: null });
  });
});

describe('normalizeObject', () => {
  it('makes a list item (Date, no kind) and a watch object (string, kind) equal', () => {
    const fromList = { metadata: { name: 'a', creationTimestamp: new Date('2026-11-27T05:31:23Z') } };
    const fromWatch = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'a', creationTimestamp: '2026-11-27T05:31:23Z' },
    };
    expect(normalizeObject(fromList, POD)).toEqual(fromWatch);
    expect(normalizeObject(fromWatch, POD)).toBe(fromWatch);
  });

  it('fills kind/apiVersion without mutating the input, and keeps existing values', () => {
    const input: { metadata: { name: string }; kind?: string; apiVersion?: string } = { metadata: { name: 'a' } };
    const out = normalizeObject(input, POD);
    expect(out).toMatchObject(POD);
    expect(input.kind).toBeUndefined();
    expect(normalizeObject({ kind: 'Other', apiVersion: 'x/v1' }, POD)).toEqual({ kind: 'Other', apiVersion: 'x/v1' });
  });

  it('handles class instances such as client-node models', () => {
    class V1PodLike {
      metadata = { name: 'a', creationTimestamp: new Date('2026-01-02T03:04:05Z') };
    }
    const normalize = normalizerFor<V1PodLike>(POD);
    expect(normalize(new V1PodLike())).toEqual({
      ...POD,
      metadata: { name: 'a', creationTimestamp: '2026-01-02T03:04:05Z' },
    });
  });
});
