import { describe, expect, it } from 'vitest';
import { applyFailsafe, type RoundEntry, scaledMaxUnavailable, summarizeRound } from '../../../src/probes/rounds.ts';

const entry = (
  key: string,
  current: string | undefined,
  desired: 'True' | 'False' | undefined,
  couldNotLook = false,
): RoundEntry => ({
  key,
  current,
  desired,
  couldNotLook,
});

describe('summarizeRound', () => {
  it('counts only True → False flips, and which of them could not look', () => {
    const s = summarizeRound('shop/db', [
      entry('a', 'True', 'False', true),
      entry('b', 'True', 'False'),
      entry('c', 'False', 'False', true), // already False: not a flip
      entry('d', undefined, 'False'), // no condition yet: never Ready through us
      entry('e', 'True', 'True'),
      entry('f', 'False', 'True'),
    ]);
    expect(s).toEqual({ policy: 'shop/db', wouldFlipFalse: ['a', 'b'], couldNotLook: ['a'] });
  });
});

describe('applyFailsafe', () => {
  const round = (flips: number, blind = 0) =>
    summarizeRound(
      'p',
      Array.from({ length: flips }, (_, i) => entry(`pod-${i}`, 'True', 'False', i < blind)),
    );

  it('lets flips through up to maxUnavailable', () => {
    expect(applyFailsafe(round(5), 10, '50%')).toMatchObject({ tripped: false, hold: [], allowed: 5 });
    expect(applyFailsafe(round(2), 10, 2)).toMatchObject({ tripped: false });
  });

  it('holds every flip of the round when more than maxUnavailable would flip', () => {
    const d = applyFailsafe(round(6, 6), 10, '50%');
    expect(d.tripped).toBe(true);
    expect(d.hold).toHaveLength(6);
    expect(d.message).toBe(
      '6 of 10 pods would flip to False in one round, more than maxUnavailable (50% = 5); holding their current status (6 of them could not be reached from the operator)',
    );
  });

  it('lets a one-pod policy report a failure (percent rounds up)', () => {
    expect(applyFailsafe(round(1), 1, '50%').tripped).toBe(false);
  });

  it('maxUnavailable 0 holds any flip', () => {
    expect(applyFailsafe(round(1), 10, 0).tripped).toBe(true);
  });
});

describe('scaledMaxUnavailable (intstr, roundUp=true)', () => {
  it.each([
    ['50%', 10, 5],
    ['50%', 3, 2],
    ['50%', 1, 1],
    ['10%', 15, 2],
    ['0%', 10, 0],
    ['100%', 7, 7],
    ['25%', 0, 0],
    [3, 10, 3],
  ] as const)('%s of %i → %i', (value, total, expected) => {
    expect(scaledMaxUnavailable(value, total)).toBe(expected);
  });

  it('rejects what intstr rejects', () => {
    expect(() => scaledMaxUnavailable('3', 10)).toThrow(/percentage/);
    expect(() => scaledMaxUnavailable('abc%', 10)).toThrow();
    expect(() => scaledMaxUnavailable(-1, 10)).toThrow();
  });
});
