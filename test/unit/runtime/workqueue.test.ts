import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/ratelimit.ts';
import { WorkQueue } from '../../../src/runtime/workqueue.ts';

function setup(opts: { maxKeys?: number } = {}) {
  const clock = new FakeClock(0);
  const queue = new WorkQueue({ clock, ...opts });
  return { clock, queue };
}

// Takes every key that is ready now, without waiting.
async function drainReady(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    keys.push(key);
  }
  return keys;
}

describe('WorkQueue', () => {
  it('hands out keys in FIFO order and never queues a key twice', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.len()).toBe(2);
    expect(await drainReady(queue)).toEqual(['a', 'b']);
  });

  it('never hands a key to two workers: a re-add while processing waits until done()', async () => {
    const { queue } = setup();
    queue.add('a');
    const key = await queue.get();
    expect(key).toBe('a');
    queue.add('a');
    queue.add('a');
    expect(queue.len()).toBe(0);
    expect(queue.lenProcessing()).toBe(1);

    let second: string | undefined;
    const waiting = queue.get().then((k) => {
      second = k;
    });
    await Promise.resolve();
    expect(second).toBeUndefined();

    queue.done('a');
    await waiting;
    expect(second).toBe('a');
    queue.done('a');
    expect(queue.len()).toBe(0);
    expect(queue.lenProcessing()).toBe(0);
  });

  it('wakes pending get() calls in FIFO order as keys arrive', async () => {
    const { queue } = setup();
    const got: Array<string | undefined> = [];
    const g1 = queue.get().then((k) => got.push(k));
    const g2 = queue.get().then((k) => got.push(k));
    queue.add('x');
    queue.add('y');
    await Promise.all([g1, g2]);
    expect(got).toEqual(['x', 'y']);
  });

  it('collapses adds made in one tick even while a worker is already waiting', async () => {
    const { queue } = setup();
    const first = queue.get();
    queue.add('a');
    queue.add('a');
    queue.add('a');
    expect(await first).toBe('a');
    queue.done('a');
    expect(queue.len()).toBe(0);
  });

  it('addAfter adds the key once its delay has passed', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 1_000);
    expect(queue.len()).toBe(0);
    expect(queue.lenDelayed()).toBe(1);
    clock.advance(999);
    expect(queue.len()).toBe(0);
    clock.advance(1);
    expect(queue.len()).toBe(1);
    expect(queue.lenDelayed()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('keeps the earliest deadline of a key (kube-rs semantics)', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 10_000);
    queue.addAfter('a', 1_000);
    queue.addAfter('a', 5_000);
    clock.advance(1_000);
    expect(await drainReady(queue)).toEqual(['a']);
    queue.done('a');
    clock.advance(20_000);
    expect(queue.len()).toBe(0);
  });

  it('add() supersedes a pending delayed add of the same key', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 5_000);
    queue.add('a');
    expect(await drainReady(queue)).toEqual(['a']);
    queue.done('a');
    clock.advance(5_000);
    expect(queue.len()).toBe(0);
  });

  it('ignores addAfter for a key that is already queued', () => {
    const { clock, queue } = setup();
    queue.add('a');
    queue.addAfter('a', 1_000);
    expect(queue.lenDelayed()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a delayed key that falls due while processing is re-queued after done()', async () => {
    const { clock, queue } = setup();
    queue.add('a');
    await queue.get();
    queue.addAfter('a', 100);
    clock.advance(100);
    expect(queue.len()).toBe(0);
    queue.done('a');
    expect(await drainReady(queue)).toEqual(['a']);
  });

  it('uses one timer for many delayed keys and releases them in deadline order', async () => {
    const { clock, queue } = setup();
    const n = 10_000;
    // Deadlines in a scrambled order: key i is due at ((i * 7919) % n) + 1 ms.
    for (let i = 0; i < n; i++) queue.addAfter(`k${i}`, ((i * 7_919) % n) + 1);
    expect(clock.pendingTimers()).toBe(1);
    expect(queue.lenDelayed()).toBe(n);
    clock.advance(n);
    expect(queue.len()).toBe(n);
    const keys = await drainReady(queue);
    const dues = keys.map((k) => ((Number(k.slice(1)) * 7_919) % n) + 1);
    expect(dues).toEqual([...dues].sort((a, b) => a - b));
    expect(clock.pendingTimers()).toBe(0);
  });

  it('re-arms its timer when an earlier deadline arrives', () => {
    const { clock, queue } = setup();
    queue.addAfter('late', 10_000);
    queue.addAfter('early', 10);
    expect(clock.nextDue()).toBe(10);
    clock.advance(10);
    expect(queue.len()).toBe(1);
    expect(clock.nextDue()).toBe(10_000);
  });

  it('fires a key once however often its deadline moved earlier', async () => {
    const { clock, queue } = setup();
    for (let d = 10_000; d > 0; d--) queue.addAfter('a', d);
    clock.advance(10_000);
    expect(await drainReady(queue)).toEqual(['a']);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('addRateLimited backs off per key; forget resets it', () => {
    const clock = new FakeClock(0);
    const queue = new WorkQueue({
      clock,
      rateLimiter: new ItemExponentialFailureRateLimiter({ baseDelayMs: 100, maxDelayMs: 1_000 }),
    });
    queue.addRateLimited('a');
    expect(queue.numRequeues('a')).toBe(1);
    expect(clock.nextDue()).toBe(100);
    clock.advance(100);
    expect(queue.len()).toBe(1);
    void queue.get();
    queue.done('a');
    queue.addRateLimited('a');
    expect(clock.nextDue()).toBe(100 + 200);
    queue.forget('a');
    expect(queue.numRequeues('a')).toBe(0);
  });

  it('shutDown resolves pending and future get() with undefined and ignores adds', async () => {
    const { clock, queue } = setup();
    const pending = queue.get();
    queue.addAfter('later', 1_000);
    queue.shutDown();
    expect(await pending).toBeUndefined();
    queue.add('a');
    queue.addAfter('b', 10);
    queue.addRateLimited('c');
    expect(await queue.get()).toBeUndefined();
    expect(queue.len()).toBe(0);
    expect(queue.shuttingDown()).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('shutDownWithDrain waits for keys being processed', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    const key = await queue.get();
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => {
      drained = true;
    });
    await Promise.resolve();
    expect(drained).toBe(false);
    expect(await queue.get()).toBeUndefined();
    queue.done(key!);
    await drain;
    expect(drained).toBe(true);
  });

  it('shutDownWithDrain resolves at once when nothing is processing', async () => {
    const { queue } = setup();
    queue.add('a');
    await queue.shutDownWithDrain();
    expect(queue.len()).toBe(0);
  });

  it('bounds the number of keys it holds and counts what it drops', () => {
    const { queue } = setup({ maxKeys: 2 });
    queue.add('a');
    queue.addAfter('b', 10);
    queue.add('c');
    queue.addAfter('d', 10);
    expect(queue.len()).toBe(1);
    expect(queue.lenDelayed()).toBe(1);
    expect(queue.dropped()).toBe(2);
    queue.add('a');
    expect(queue.dropped()).toBe(2);
  });

  it('treats a zero or invalid delay as an immediate add', () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 0);
    queue.addAfter('b', -5);
    queue.addAfter('c', Number.NaN);
    expect(queue.len()).toBe(3);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('done() of an unknown key is a no-op', () => {
    const { queue } = setup();
    queue.done('nope');
    expect(queue.len()).toBe(0);
  });
});
