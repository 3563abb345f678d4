import { describe, expect, it } from 'vitest';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/ratelimit.ts';

describe('ItemExponentialFailureRateLimiter', () => {
  it('doubles per failure from 100 ms up to a 30 s cap by default', () => {
    const rl = new ItemExponentialFailureRateLimiter();
    const delays = Array.from({ length: 12 }, () => rl.when('a'));
    expect(delays).toEqual([100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000, 30_000]);
    expect(rl.numRequeues('a')).toBe(12);
    expect(rl.when('b')).toBe(100);
  });

  it('forget resets one key only', () => {
    const rl = new ItemExponentialFailureRateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000 });
    rl.when('a');
    rl.when('a');
    rl.when('b');
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.when('a')).toBe(5);
    expect(rl.numRequeues('b')).toBe(1);
  });

  it('never overflows for a key that fails forever', () => {
    const rl = new ItemExponentialFailureRateLimiter();
    let last = 0;
    for (let i = 0; i < 2_000; i++) last = rl.when('k');
    expect(last).toBe(30_000);
  });

  it('bounds the number of tracked keys by evicting the oldest', () => {
    const rl = new ItemExponentialFailureRateLimiter({ maxKeys: 2 });
    rl.when('a');
    rl.when('b');
    rl.when('c');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.numRequeues('b')).toBe(1);
    expect(rl.numRequeues('c')).toBe(1);
  });
});
