import { describe, expect, it } from 'vitest';
import { MAX_STALLS, STALL_MIN_MS, StallLog, stallExplainsTimeout } from '../../../src/safety/stalls.ts';

describe('StallLog', () => {
  it('keeps gaps of at least STALL_MIN_MS and answers the longest overlap with a window', () => {
    const log = new StallLog();
    log.record(1_000, 1_000 + STALL_MIN_MS - 1); // a short gap is no stall
    log.record(2_000, 3_500);
    log.record(5_000, 5_300);
    expect(log.stalledWithin(0, 1_900)).toBe(0);
    expect(log.stalledWithin(2_500, 3_000)).toBe(500);
    expect(log.stalledWithin(3_000, 6_000)).toBe(500);
    expect(log.stalledWithin(4_000, 6_000)).toBe(300);
    expect(log.stalledWithin(6_000, 7_000)).toBe(0);
  });

  it(`forgets the oldest beyond ${MAX_STALLS} stalls`, () => {
    const log = new StallLog();
    for (let i = 0; i <= MAX_STALLS; i++) log.record(i * 1_000, i * 1_000 + 500);
    expect(log.stalledWithin(0, 999)).toBe(0);
    expect(log.stalledWithin(1_000, 1_999)).toBe(500);
  });
});

describe('stallExplainsTimeout', () => {
  it('needs the stall to take at least half the window, and at least STALL_MIN_MS', () => {
    expect(stallExplainsTimeout(1_000, 500)).toBe(true);
    expect(stallExplainsTimeout(1_000, 499)).toBe(false);
    expect(stallExplainsTimeout(300, 200)).toBe(false); // under STALL_MIN_MS: ordinary lag
    expect(stallExplainsTimeout(10_000, 4_000)).toBe(false);
    expect(stallExplainsTimeout(10_000, 5_000)).toBe(true);
  });
});
