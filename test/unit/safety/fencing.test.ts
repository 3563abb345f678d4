import { describe, expect, it } from 'vitest';
import { type Clock, FakeClock, flushPromises } from '../../../src/runtime/clock.ts';
import { Fence, NotLeaderError } from '../../../src/safety/fencing.ts';

const setup = () => {
  const clock = new FakeClock();
  const fence = new Fence({ clock, renewDeadlineMs: 4_000, marginMs: 1_000 });
  return { clock, fence };
};

/** A write that never settles on its own: it ends only when its signal aborts. */
const hangingWrite = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

describe('Fence', () => {
  it('refuses every write before the first renew', async () => {
    const { fence } = setup();
    expect(fence.holds()).toBe(false);
    await expect(fence.run(undefined, async () => 'written')).rejects.toBeInstanceOf(NotLeaderError);
  });

  it('holds from a renew until its send time plus the renew deadline, less the margin', async () => {
    const { clock, fence } = setup();
    const sentAt = clock.now();
    await clock.tick(500); // the renew took half a second to come back
    fence.renewed(sentAt);
    expect(fence.validUntil()).toBe(sentAt + 4_000);
    await expect(fence.run(undefined, async () => 'written')).resolves.toBe('written');
    await clock.tick(2_499); // 2,999 ms after the send: 1,001 ms left
    expect(fence.holds()).toBe(true);
    await clock.tick(1);
    expect(fence.holds()).toBe(false);
    await expect(fence.run(undefined, async () => 'written')).rejects.toThrow(/does not hold/);
  });

  it('aborts a write in flight at the deadline, so a frozen connection cannot land it later', async () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    const write = fence.run(undefined, hangingWrite);
    const settled = expect(write).rejects.toThrow(/would expire/);
    await clock.tick(3_000);
    await settled;
    expect(clock.pendingTimers()).toBe(1); // only the expiry timer is left
  });

  it('expires on its timer and tells its owner, whatever any call is doing', async () => {
    const { clock, fence } = setup();
    let expired = 0;
    fence.onExpire(() => expired++);
    fence.renewed(clock.now());
    await clock.tick(2_000);
    fence.renewed(clock.now()); // renewed in time: the deadline moves
    await clock.tick(3_999);
    expect(expired).toBe(0);
    await clock.tick(1);
    expect(expired).toBe(1);
    expect(fence.holds()).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('expires even when its timer fires a little before the deadline by the wall clock', async () => {
    // Node's timers run on the event loop's monotonic millisecond clock; measured by Date.now()
    // one can fire a millisecond early (about 3 in 100 did in a loop on Node 24). Such a timer
    // must not be the end of it: the fence would then never expire, and a leader that can no
    // longer renew would never step down (it kept saying leader after kube-apiserver restarted).
    const fake = new FakeClock();
    const early: Clock = {
      now: () => fake.now(),
      setTimeout: (fn, ms) => fake.setTimeout(fn, ms > 1 ? ms - 1 : ms),
      clearTimeout: (h) => fake.clearTimeout(h),
      sleep: (ms, signal) => fake.sleep(ms, signal),
    };
    const fence = new Fence({ clock: early, renewDeadlineMs: 4_000, marginMs: 1_000 });
    let expired = 0;
    fence.onExpire(() => expired++);
    fence.renewed(fake.now());
    await fake.tick(3_999); // the timer fired here, early
    expect(expired).toBe(0);
    await fake.tick(1);
    expect(expired).toBe(1);
    expect(fence.holds()).toBe(false);
    expect(fake.pendingTimers()).toBe(0);
  });

  it('revoke aborts every write in flight at once', async () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    const writes = [fence.run(undefined, hangingWrite), fence.run(undefined, hangingWrite)];
    fence.revoke();
    for (const w of writes) await expect(w).rejects.toBeInstanceOf(NotLeaderError);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a renew sent before a later one cannot shorten the lease', () => {
    const { clock, fence } = setup();
    const t = clock.now();
    fence.renewed(t + 1_000);
    fence.renewed(t);
    expect(fence.validUntil()).toBe(t + 5_000);
  });

  it('passes the caller abort through', async () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    const caller = new AbortController();
    const write = fence.run(caller.signal, hangingWrite);
    caller.abort(new Error('reconcile timed out'));
    await expect(write).rejects.toThrow('reconcile timed out');
  });

  it('close refuses new writes but lets those in flight finish with their signal intact', async () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    let release!: () => void;
    let seen: AbortSignal | undefined;
    const write = fence.run(undefined, (signal) => {
      seen = signal;
      return new Promise<string>((resolve) => {
        release = () => resolve('landed');
      });
    });
    fence.close();
    expect(fence.holds()).toBe(false);
    await expect(fence.run(undefined, async () => 'written')).rejects.toThrow(/handing the lease back/);
    let idle: { aborted: boolean } | undefined;
    void fence.idle().then((r) => {
      idle = r;
    });
    await clock.tick(1_000);
    expect(seen?.aborted).toBe(false);
    expect(idle).toBeUndefined(); // the write is still in flight
    release();
    await expect(write).resolves.toBe('landed');
    await flushPromises();
    expect(idle).toEqual({ aborted: false });
    expect(clock.pendingTimers()).toBe(1); // only the expiry timer is left
  });

  it('idle resolves at once with nothing in flight, and reports a write aborted after close', async () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    fence.close();
    await expect(fence.idle()).resolves.toEqual({ aborted: false });

    fence.renewed(clock.now() + 1); // a renew that moves the deadline reopens it
    expect(fence.holds()).toBe(true);
    const write = fence.run(undefined, hangingWrite);
    const settled = expect(write).rejects.toThrow(/would expire/);
    fence.close();
    const idle = fence.idle();
    await clock.tick(3_001); // the write's deadline (validUntil − margin) aborts it
    await settled;
    await expect(idle).resolves.toEqual({ aborted: true });
    fence.close(); // a new hand-back starts with a clean slate
    await expect(fence.idle()).resolves.toEqual({ aborted: false });
  });

  it('revoke still aborts the writes in flight of a closed fence, and a renew reopens it', async () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    const write = fence.run(undefined, hangingWrite);
    fence.close();
    const idle = fence.idle();
    fence.revoke();
    await expect(write).rejects.toBeInstanceOf(NotLeaderError);
    await expect(idle).resolves.toEqual({ aborted: true });
    expect(clock.pendingTimers()).toBe(0);
    fence.renewed(clock.now());
    expect(fence.holds()).toBe(true);
    await expect(fence.run(undefined, async () => 'written')).resolves.toBe('written');
  });

  it('a renew that does not move the deadline leaves a closed fence closed', () => {
    const { clock, fence } = setup();
    fence.renewed(clock.now());
    fence.close();
    fence.renewed(clock.now() - 1); // a late answer to an older renew
    expect(fence.holds()).toBe(false);
  });

  it('without leader election always holds', async () => {
    const fence = Fence.unconditional();
    expect(fence.holds()).toBe(true);
    expect(fence.validUntil()).toBe(Number.POSITIVE_INFINITY);
    await expect(fence.run(undefined, async () => 'written')).resolves.toBe('written');
    fence.close(); // as revoke: nothing to fence against
    expect(fence.holds()).toBe(true);
    await expect(fence.idle()).resolves.toEqual({ aborted: false });
  });
});
