// The overload shell (src/controllers/overload.ts) on a fake clock, with a scripted event loop.
import { afterEach, describe, expect, it } from 'vitest';
import { GOVERNOR_SAMPLES, OverloadMonitor, SAMPLE_MS } from '../../../src/controllers/overload.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';

function setup(opts: { elu: number[]; writesWaiting?: number; throttled?: boolean }) {
  const clock = new FakeClock();
  const eluValues = [...opts.elu];
  const t0 = clock.now();
  const stretches: number[] = [];
  const changes: Array<{ from: number; to: number }> = [];
  const monitor = new OverloadMonitor({
    clock,
    // 3,000 runs/s asked for, 1,000/s finished: a saturated loop.
    scheduler: {
      stats: () => ({ demandPerSecond: 3000, completed: clock.now() - t0 }),
      setStretch: (f) => stretches.push(f),
    },
    writes: () => ({ queued: opts.writesWaiting ?? 0, throttled: opts.throttled ?? false }),
    onChange: (c) => changes.push(c),
    maxStretch: 10,
    elu: () => eluValues.shift() ?? 0.1,
  });
  return { clock, monitor, stretches, changes };
}

let monitor: OverloadMonitor | undefined;
afterEach(() => monitor?.stop());

describe('OverloadMonitor', () => {
  it('stretches the scheduler after a saturated second and reports the change once', async () => {
    const t = setup({ elu: [0, 1, 1, 1, 1, 0.8, 0.8, 0.8, 0.8] });
    monitor = t.monitor;
    t.monitor.start();
    await t.clock.advance(SAMPLE_MS * GOVERNOR_SAMPLES);
    expect(t.stretches).toEqual([4]);
    expect(t.changes).toEqual([{ from: 1, to: 4 }]);
    expect(t.monitor.stretch).toBe(4);
    expect(t.monitor.elu).toBe(1);
    await t.clock.advance(SAMPLE_MS * GOVERNOR_SAMPLES); // inside the band: holds
    expect(t.changes).toHaveLength(1);
  });

  it('yields probe starts only while writes wait and the last short sample was saturated', async () => {
    const waiting = setup({ elu: [0, 0.99, 0.3], writesWaiting: 3 });
    monitor = waiting.monitor;
    expect(waiting.monitor.yielding()).toBe(false); // not started: never yields
    waiting.monitor.start();
    await waiting.clock.advance(SAMPLE_MS);
    expect(waiting.monitor.yielding()).toBe(true);
    await waiting.clock.advance(SAMPLE_MS);
    expect(waiting.monitor.yielding()).toBe(false);
    waiting.monitor.stop();

    const idle = setup({ elu: [0, 0.99], writesWaiting: 0 });
    monitor = idle.monitor;
    idle.monitor.start();
    await idle.clock.advance(SAMPLE_MS);
    expect(idle.monitor.yielding()).toBe(false);
    idle.monitor.stop();

    // Writes that wait for --api-qps are not helped by holding probes back.
    const throttled = setup({ elu: [0, 0.99], writesWaiting: 3, throttled: true });
    monitor = throttled.monitor;
    throttled.monitor.start();
    await throttled.clock.advance(SAMPLE_MS);
    expect(throttled.monitor.yielding()).toBe(false);
  });

  it('stop() leaves no timer behind', async () => {
    const t = setup({ elu: [] });
    t.monitor.start();
    t.monitor.start();
    expect(t.clock.pendingTimers()).toBe(1);
    t.monitor.stop();
    expect(t.clock.pendingTimers()).toBe(0);
    expect(t.monitor.yielding()).toBe(false);
    t.monitor.start(); // a reconcile still in flight at shutdown
    expect(t.clock.pendingTimers()).toBe(0);
  });
});
