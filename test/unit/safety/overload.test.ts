// The overload rules (src/safety/overload.ts): the stretch factor from load samples, with time passed in.
import { describe, expect, it } from 'vitest';
import {
  effectivePeriodMs,
  HIGH_ELU,
  LOW_ELU,
  type LoadSample,
  nextStretch,
  OverloadGovernor,
  roundFactor,
  shouldYield,
  TARGET_ELU,
} from '../../../src/safety/overload.ts';

const sample = (over: Partial<LoadSample>): LoadSample => ({
  now: 0,
  elu: 0.5,
  demandPerSecond: 3000,
  completedPerSecond: 1000,
  ...over,
});

describe('nextStretch', () => {
  it('jumps at once to what the measured probe rate affords at the target utilisation', () => {
    // 30,000 pods every 10 s ask 3,000 runs/s; a saturated loop finishes 1,000/s.
    const to = nextStretch(1, sample({ elu: 1, demandPerSecond: 3000, completedPerSecond: 1000 }), 10);
    expect(to).toBe(roundFactor(3000 / (1000 * TARGET_ELU)));
    expect(to).toBe(4);
  });

  it('never exceeds the bound', () => {
    expect(nextStretch(1, sample({ elu: 1, demandPerSecond: 50_000, completedPerSecond: 100 }), 10)).toBe(10);
    expect(nextStretch(10, sample({ elu: 1 }), 10)).toBe(10);
    expect(nextStretch(1, sample({ elu: 1 }), 1)).toBe(1);
  });

  it('steps up once per settle time while saturated when the rates ask for no more, never winding up', () => {
    // The estimate lags a period behind a change; saturation still means "more", but only once
    // the last change had time to show.
    const busy = sample({ elu: 0.95, demandPerSecond: 1000, completedPerSecond: 1000 });
    expect(nextStretch(2, busy, 10, true)).toBe(roundFactor(2 * 1.15));
    expect(nextStretch(2, busy, 10, false)).toBe(2);
    // The rates asking for more are followed at once, settled or not.
    expect(nextStretch(2, sample({ elu: 1, demandPerSecond: 3000, completedPerSecond: 1000 }), 10, false)).toBe(4);
  });

  it('rises one step with no completions to scale by', () => {
    expect(nextStretch(1, sample({ elu: 1, completedPerSecond: 0 }), 10)).toBeGreaterThan(1);
  });

  it('holds inside the band between LOW and HIGH', () => {
    for (const elu of [LOW_ELU, TARGET_ELU, HIGH_ELU]) expect(nextStretch(3, sample({ elu }), 10)).toBe(3);
  });

  it('falls below LOW toward the factor that puts the loop at TARGET, at most a quarter per settle time, back to exactly 1', () => {
    expect(nextStretch(4, sample({ elu: 0.1 }), 10)).toBe(3);
    expect(nextStretch(4, sample({ elu: 0.5 }), 10)).toBe(3);
    expect(nextStretch(10, sample({ elu: 0.58 }), 10)).toBe(roundFactor((10 * 0.58) / TARGET_ELU));
    expect(nextStretch(4, sample({ elu: 0.1 }), 10, false)).toBe(4);
    expect(LOW_ELU / TARGET_ELU).toBeLessThan(1 / 1.15); // so any fall is more than a hysteresis step
    expect(nextStretch(1.2, sample({ elu: 0.1 }), 10)).toBe(1);
    expect(nextStretch(1, sample({ elu: 0.1 }), 10)).toBe(1);
  });

  it('clamps nonsense utilisation', () => {
    expect(nextStretch(1, sample({ elu: 7 }), 10)).toBe(4);
    expect(nextStretch(3, sample({ elu: -1 }), 10)).toBeLessThan(3);
  });
});

describe('roundFactor', () => {
  it('keeps two significant digits and never goes below 1', () => {
    expect(roundFactor(2.3456)).toBe(2.3);
    expect(roundFactor(12.6)).toBe(13);
    expect(roundFactor(0.4)).toBe(1);
    expect(roundFactor(Number.NaN)).toBe(1);
  });
});

describe('OverloadGovernor', () => {
  it('stretches under saturation, holds in the band, and falls only after the settle time', () => {
    const g = new OverloadGovernor({ maxStretch: 10, settleMs: 5000 });
    expect(g.overloaded).toBe(false);
    expect(g.sample(sample({ now: 1000, elu: 1 }))).toEqual({ from: 1, to: 4 });
    expect(g.overloaded).toBe(true);
    expect(g.sample(sample({ now: 2000, elu: 0.7 }))).toBeUndefined();
    // Idle again, but the last change is 2 s old: the load of the new factor shows a period later.
    expect(g.sample(sample({ now: 3000, elu: 0.2 }))).toBeUndefined();
    expect(g.stretch).toBe(4);
    const down = g.sample(sample({ now: 6000, elu: 0.2 }));
    expect(down?.from).toBe(4);
    expect(down?.to).toBeLessThan(4);
    for (let i = 1; i <= 20 && g.stretch > 1; i++) g.sample(sample({ now: 6000 + i * 5000, elu: 0.2 }));
    expect(g.stretch).toBe(1);
    expect(g.overloaded).toBe(false);
  });

  it('rises again within the settle time only when the rates ask for more', () => {
    const g = new OverloadGovernor({ settleMs: 60_000 });
    g.sample(sample({ now: 0, elu: 1, demandPerSecond: 1500, completedPerSecond: 1000 }));
    expect(g.stretch).toBe(2);
    g.sample(sample({ now: 1000, elu: 1, demandPerSecond: 1500, completedPerSecond: 1000 }));
    expect(g.stretch).toBe(2); // no wind-up while the last change has not shown yet
    g.sample(sample({ now: 2000, elu: 1, demandPerSecond: 1500, completedPerSecond: 500 }));
    expect(g.stretch).toBe(4);
  });

  it('refuses a bound below 1', () => {
    expect(() => new OverloadGovernor({ maxStretch: 0.5 })).toThrow(/maxStretch/);
  });
});

describe('shouldYield and effectivePeriodMs', () => {
  it('yields to writes only while they wait for the loop, not the API rate limit, and the loop is saturated', () => {
    const waiting = { queued: 5, throttled: false };
    expect(shouldYield(waiting, 0.99)).toBe(true);
    expect(shouldYield({ queued: 0, throttled: false }, 0.99)).toBe(false);
    expect(shouldYield({ queued: 5, throttled: true }, 0.99)).toBe(false);
    expect(shouldYield(waiting, HIGH_ELU)).toBe(false);
    expect(shouldYield(waiting, 0.2)).toBe(false);
  });

  it('multiplies the period, never shortening it', () => {
    expect(effectivePeriodMs(10_000, 2.4)).toBe(24_000);
    expect(effectivePeriodMs(10_000, 0.5)).toBe(10_000);
  });
});
