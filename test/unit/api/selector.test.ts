import { describe, expect, it } from 'vitest';
import { conditionsEqual, podConditionDiffers, setStatusCondition } from '../../../src/api/conditions.ts';
import { selectorMatches } from '../../../src/api/selector.ts';

describe('selectorMatches', () => {
  const labels = { app: 'payments', tier: 'db' };
  it.each([
    [{}, true],
    [{ matchLabels: { app: 'payments' } }, true],
    [{ matchLabels: { app: 'shop' } }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['db', 'cache'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['web'] }] }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['web'] }] }, true],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn' as const, values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'Exists' as const }] }, true],
    [{ matchExpressions: [{ key: 'zone', operator: 'Exists' as const }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' as const }] }, true],
    [
      { matchLabels: { app: 'payments' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' as const }] },
      false,
    ],
  ])('%j → %s', (selector, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });
  it('treats missing labels as empty', () => {
    expect(selectorMatches({ matchLabels: { a: 'b' } }, undefined)).toBe(false);
    expect(selectorMatches({}, undefined)).toBe(true);
  });
});

describe('conditions', () => {
  const desired = { type: 'readygate.dev/x', status: 'True' as const, reason: 'ProbeSucceeded', message: 'ok' };
  it('differs only on status, reason or message', () => {
    expect(podConditionDiffers(desired, undefined)).toBe(true);
    expect(podConditionDiffers(desired, { ...desired, lastTransitionTime: '2026-01-01T00:00:00Z' })).toBe(false);
    expect(podConditionDiffers(desired, { ...desired, message: 'other' })).toBe(true);
    expect(podConditionDiffers(desired, { ...desired, status: 'False' })).toBe(true);
  });
  it('keeps lastTransitionTime when status holds', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const a = setStatusCondition([], { type: 'Ready', status: 'True', reason: 'A', message: '' }, t0);
    const b = setStatusCondition(a, { type: 'Ready', status: 'True', reason: 'B', message: 'm' }, t0 + 5000);
    expect(b[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const c = setStatusCondition(b, { type: 'Ready', status: 'False', reason: 'B', message: 'm' }, t0 + 5000);
    expect(c[0]?.lastTransitionTime).toBe('2026-01-01T00:00:05Z');
    expect(conditionsEqual(a, b)).toBe(false);
    expect(conditionsEqual(b, [{ ...b[0]!, lastTransitionTime: 'x' }])).toBe(true);
  });
});
