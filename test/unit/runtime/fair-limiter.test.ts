// The fair write budget on a fake clock: who gets each token, and how long a small tenant waits
// behind a big one.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { FairTokenBucket } from '../../../src/runtime/fair-limiter.ts';
import { TooManyWaitersError } from '../../../src/runtime/ratelimit.ts';

/** Starts `n` waits of `tenant` and records each grant as `tenant` in `granted`, in grant order. */
function queue(bucket: FairTokenBucket, granted: string[], tenant: string, n: number, signal?: AbortSignal) {
  return Array.from({ length: n }, () =>
    bucket.wait(signal, tenant).then(
      () => {
        granted.push(tenant);
      },
      () => {},
    ),
  );
}

describe('FairTokenBucket', () => {
  it('allows a burst, then one token per 1/qps seconds', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 10, burst: 3, clock });
    expect([bucket.tryAccept(), bucket.tryAccept(), bucket.tryAccept(), bucket.tryAccept()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    const granted: string[] = [];
    queue(bucket, granted, 'a', 3);
    await clock.tick(99);
    expect(granted).toEqual([]);
    await clock.tick(1);
    expect(granted).toEqual(['a']);
    await clock.tick(200);
    expect(granted).toEqual(['a', 'a', 'a']);
    expect(clock.pendingTimers()).toBe(0);
    expect(bucket.tenantsTracked()).toBe(0);
  });

  it('refills up to burst after a quiet period', () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 1, burst: 2, clock });
    expect([bucket.tryAccept(), bucket.tryAccept()]).toEqual([true, true]);
    clock.advance(60_000);
    expect([bucket.tryAccept(), bucket.tryAccept(), bucket.tryAccept()]).toEqual([true, true, false]);
  });

  it('10,000 pending writes of one namespace delay another namespace by one token', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 100, burst: 1, clock });
    await bucket.wait(undefined, 'noisy');
    const granted: string[] = [];
    queue(bucket, granted, 'noisy', 10_000);
    expect(bucket.waiting('noisy')).toBe(10_000);
    let victimAt: number | undefined;
    const victim = bucket.wait(undefined, 'shop').then(() => {
      victimAt = clock.now();
      granted.push('shop');
    });
    await clock.tick(20); // two tokens at 100/s
    await victim;
    expect(granted).toEqual(['noisy', 'shop']);
    expect(victimAt).toBe(20);
    // A FIFO bucket would have made it wait behind all 10,000: 100 s at 100/s.
    expect(bucket.waiting()).toBe(9_999);
  });

  it('takes tokens round robin between waiting tenants; a tenant that joins goes to the back of the round', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 10, burst: 1, clock });
    await bucket.wait(undefined, 'a');
    const granted: string[] = [];
    queue(bucket, granted, 'a', 4);
    queue(bucket, granted, 'b', 2);
    queue(bucket, granted, 'c', 1);
    await clock.tick(300);
    expect(granted).toEqual(['a', 'b', 'c']);
    queue(bucket, granted, 'd', 2);
    await clock.tick(600);
    expect(granted).toEqual(['a', 'b', 'c', 'a', 'b', 'd', 'a', 'd', 'a']);
    expect(bucket.waiting()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    expect(bucket.tenantsTracked()).toBe(0);
  });

  it('first come, first served within a tenant; tryAccept never jumps the queue', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 1, burst: 1, clock });
    await bucket.wait();
    const order: number[] = [];
    const waits = [1, 2, 3].map((i) => bucket.wait(undefined, 'a').then(() => order.push(i)));
    clock.advance(1_000);
    expect(bucket.tryAccept()).toBe(false);
    await clock.tick(2_000);
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3]);
  });

  it('rejects an aborted waiter, which costs no token and no turn', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 10, burst: 1, clock });
    await bucket.wait();
    const granted: string[] = [];
    const ac = new AbortController();
    const aborted = bucket.wait(ac.signal, 'a');
    queue(bucket, granted, 'b', 1);
    ac.abort(new Error('cancelled'));
    await expect(aborted).rejects.toThrow('cancelled');
    expect(bucket.waiting()).toBe(1);
    await clock.tick(100);
    expect(granted).toEqual(['b']);
    expect(clock.pendingTimers()).toBe(0);
    expect(bucket.tenantsTracked()).toBe(0);
  });

  it('forgets everything and clears its timer when every waiter aborted', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 1, burst: 1, clock });
    await bucket.wait();
    const ac = new AbortController();
    const waits = ['a', 'b', 'a'].map((t) => bucket.wait(ac.signal, t).catch((e: unknown) => e));
    ac.abort(new Error('stop'));
    await Promise.all(waits);
    expect(bucket.waiting()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    expect(bucket.tenantsTracked()).toBe(0);
    const later = bucket.wait(undefined, 'a');
    await clock.tick(1_000);
    await later;
  });

  it('compacts a tenant whose waiters mostly aborted', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 1, burst: 1, clock, maxWaitersPerTenant: 100 });
    await bucket.wait();
    const granted: string[] = [];
    // 20 rounds of 80 aborted waits each (1,620 waits in all): the limit counts live waiters only.
    const reasons = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const ac = new AbortController();
      const waits = Array.from({ length: 80 }, () =>
        bucket.wait(ac.signal, 'a').catch((e: unknown) => reasons.add((e as Error).message)),
      );
      ac.abort(new Error('gone'));
      await Promise.all(waits);
      queue(bucket, granted, 'a', 1);
    }
    expect([...reasons]).toEqual(['gone']);
    expect(bucket.waiting('a')).toBe(20);
    await clock.tick(20_000);
    expect(granted).toHaveLength(20);
  });

  it('bounds the waiters per tenant, not across tenants', async () => {
    const clock = new FakeClock(0);
    const bucket = new FairTokenBucket({ qps: 1, burst: 1, clock, maxWaitersPerTenant: 2 });
    await bucket.wait();
    const ac = new AbortController();
    const held = [bucket.wait(ac.signal, 'noisy'), bucket.wait(ac.signal, 'noisy')];
    await expect(bucket.wait(undefined, 'noisy')).rejects.toBeInstanceOf(TooManyWaitersError);
    await expect(bucket.wait(undefined, 'noisy')).rejects.toThrow('2 writes of noisy already waiting');
    const other = bucket.wait(ac.signal, 'shop');
    expect(bucket.waiting('shop')).toBe(1);
    ac.abort(new Error('done'));
    await expect(Promise.all([...held, other])).rejects.toThrow('done');
  });

  it('validates its parameters', () => {
    expect(() => new FairTokenBucket({ qps: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new FairTokenBucket({ qps: 1, burst: 0 })).toThrow(RangeError);
    expect(() => new FairTokenBucket({ qps: 1, burst: 1, maxWaitersPerTenant: 0 })).toThrow(RangeError);
  });
});
