import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { ItemExponentialFailureRateLimiter, TokenBucket, TooManyWaitersError } from '../../../src/runtime/ratelimit.ts';

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

describe('TokenBucket', () => {
  it('allows a burst, then one token per 1/qps seconds', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket({ qps: 10, burst: 3, clock });
    expect([bucket.tryAccept(), bucket.tryAccept(), bucket.tryAccept(), bucket.tryAccept()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    const granted: number[] = [];
    const waits = [1, 2, 3].map((i) => bucket.wait().then(() => granted.push(i)));
    await clock.tick(99);
    expect(granted).toEqual([]);
    await clock.tick(1);
    expect(granted).toEqual([1]);
    await clock.tick(200);
    expect(granted).toEqual([1, 2, 3]);
    await Promise.all(waits);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('refills up to burst after a quiet period', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket({ qps: 1, burst: 2, clock });
    expect(bucket.tryAccept()).toBe(true);
    expect(bucket.tryAccept()).toBe(true);
    clock.advance(60_000);
    expect(bucket.tryAccept()).toBe(true);
    expect(bucket.tryAccept()).toBe(true);
    expect(bucket.tryAccept()).toBe(false);
  });

  it('serves waiters in FIFO order and never lets tryAccept jump the queue', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket({ qps: 1, burst: 1, clock });
    await bucket.wait();
    const order: string[] = [];
    const a = bucket.wait().then(() => order.push('a'));
    clock.advance(1_000);
    expect(bucket.tryAccept()).toBe(false);
    await clock.runDue();
    await a;
    expect(order).toEqual(['a']);
  });

  it('rejects an aborted waiter and passes its token to the next one', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket({ qps: 1, burst: 1, clock });
    await bucket.wait();
    const ac = new AbortController();
    const first = bucket.wait(ac.signal);
    let secondDone = false;
    const second = bucket.wait().then(() => {
      secondDone = true;
    });
    ac.abort(new Error('cancelled'));
    await expect(first).rejects.toThrow('cancelled');
    await clock.tick(1_000);
    await second;
    expect(secondDone).toBe(true);
    expect(bucket.waiting()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('bounds the number of waiters', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket({ qps: 1, burst: 1, clock, maxWaiters: 1 });
    await bucket.wait();
    const ac = new AbortController();
    const queued = bucket.wait(ac.signal);
    await expect(bucket.wait()).rejects.toBeInstanceOf(TooManyWaitersError);
    ac.abort(new Error('done'));
    await expect(queued).rejects.toThrow('done');
  });

  it('validates its parameters', () => {
    expect(() => new TokenBucket({ qps: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new TokenBucket({ qps: 1, burst: 0 })).toThrow(RangeError);
  });
});
