import { describe, expect, it } from 'vitest';
import { FakeClock, RealClock } from '../../../src/runtime/clock.ts';

describe('FakeClock', () => {
  it('fires due timers in deadline order, each seeing its own deadline as now', () => {
    const clock = new FakeClock(1_000);
    const seen: Array<[string, number]> = [];
    clock.setTimeout(() => seen.push(['b', clock.now()]), 200);
    clock.setTimeout(() => seen.push(['a', clock.now()]), 100);
    clock.setTimeout(() => seen.push(['c', clock.now()]), 300);
    clock.advance(250);
    expect(seen).toEqual([
      ['a', 1_100],
      ['b', 1_200],
    ]);
    expect(clock.now()).toBe(1_250);
    expect(clock.pendingTimers()).toBe(1);
  });

  it('fires equal deadlines in creation order and timers scheduled while advancing', () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    clock.setTimeout(() => {
      seen.push('first');
      clock.setTimeout(() => seen.push('nested'), 10);
    }, 50);
    clock.setTimeout(() => seen.push('second'), 50);
    clock.advance(60);
    expect(seen).toEqual(['first', 'second', 'nested']);
  });

  it('does not fire cleared timers', () => {
    const clock = new FakeClock(0);
    let fired = false;
    const h = clock.setTimeout(() => {
      fired = true;
    }, 10);
    clock.clearTimeout(h);
    clock.advance(100);
    expect(fired).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('sleep resolves when time is advanced and rejects on abort', async () => {
    const clock = new FakeClock(0);
    let done = false;
    const p = clock.sleep(1_000).then(() => {
      done = true;
    });
    await clock.tick(999);
    expect(done).toBe(false);
    await clock.tick(1);
    await p;
    expect(done).toBe(true);

    const ac = new AbortController();
    const q = clock.sleep(1_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(q).rejects.toThrow('stop');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('tick lets async chains schedule their next timer before it decides what is due', async () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(100);
        seen.push(clock.now());
      }
    })();
    await clock.tick(300);
    expect(seen).toEqual([100, 200, 300]);
  });
});

describe('RealClock', () => {
  it('sleep rejects at once with an already aborted signal and clears its timer on abort', async () => {
    const clock = new RealClock();
    await expect(clock.sleep(10, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    const ac = new AbortController();
    const p = clock.sleep(60_000, ac.signal);
    ac.abort(new Error('stopped'));
    await expect(p).rejects.toThrow('stopped');
  });
});
