// The probe scheduler on a manual clock: no real time passes in these tests.
import { afterEach, describe, expect, it } from 'vitest';
import {
  missedSlot,
  nextOnGrid,
  ProbeScheduler,
  phaseOf,
  type RunTiming,
  YIELD_RECHECK_MS,
} from '../../../src/probes/scheduler.ts';
import type { ProbeResult } from '../../../src/probes/types.ts';
import { ManualClock } from './support/fake-clock.ts';

const OK: ProbeResult = { outcome: 'success', couldNotLook: false, message: 'ok', durationMs: 0 };

interface Delivered {
  key: string;
  result: ProbeResult;
  timing: RunTiming;
}

function setup(concurrency = 100, backstopGraceMs = 1000) {
  const clock = new ManualClock();
  const delivered: Delivered[] = [];
  const scheduler = new ProbeScheduler({
    clock,
    concurrency,
    backstopGraceMs,
    onResult: (key, result, timing) => delivered.push({ key, result, timing }),
  });
  return { clock, delivered, scheduler };
}

/** A run function whose calls are recorded and finish when the test says so (or after `ms` of fake time). */
function controlled(clock: ManualClock, ms?: number) {
  const calls: Array<{ at: number; signal: AbortSignal; finish: (r?: ProbeResult) => void }> = [];
  let active = 0;
  let maxActive = 0;
  const run = (signal: AbortSignal): Promise<ProbeResult> =>
    new Promise((resolve) => {
      active++;
      maxActive = Math.max(maxActive, active);
      const finish = (r: ProbeResult = OK): void => {
        active--;
        resolve(r);
      };
      calls.push({ at: clock.now(), signal, finish });
      if (ms !== undefined) clock.setTimeout(() => finish(), ms);
    });
  return { run, calls, maxActive: () => maxActive, active: () => active };
}

let current: ProbeScheduler | undefined;
afterEach(() => {
  current?.stop();
  current = undefined;
});

describe('ProbeScheduler', () => {
  it('runs each target once per period, at a phase fixed by its key', async () => {
    const { clock, delivered, scheduler } = setup();
    current = scheduler;
    const start = clock.now();
    const c = controlled(clock, 5);
    scheduler.upsert({ key: 'shop/db#uid-1', periodMs: 10_000, timeoutMs: 1000, run: c.run });
    await clock.advance(30_000);
    expect(c.calls).toHaveLength(3);
    const phase = phaseOf('shop/db#uid-1', 10_000);
    for (const call of c.calls) expect(((call.at % 10_000) + 10_000) % 10_000).toBe(phase);
    expect(c.calls[1]!.at - c.calls[0]!.at).toBe(10_000);
    expect(c.calls[0]!.at).toBe(nextOnGrid(start, 10_000, phase));
    expect(delivered.every((d) => d.timing.lateMs === 0 && d.timing.skipped === 0)).toBe(true);
  });

  it('spreads many targets over the period (no thundering herd), with one timer armed', async () => {
    const { clock, scheduler } = setup(10_000);
    current = scheduler;
    const start = clock.now();
    const c = controlled(clock, 1);
    for (let i = 0; i < 1000; i++)
      scheduler.upsert({ key: `ns/p#pod-${i}`, periodMs: 10_000, timeoutMs: 1000, run: c.run });
    expect(clock.timers.size).toBe(1);
    await clock.advance(10_000);
    expect(c.calls).toHaveLength(1000);
    const buckets = new Array(10).fill(0) as number[];
    for (const call of c.calls) buckets[Math.floor((call.at - start) / 1000)]!++;
    for (const b of buckets) {
      expect(b).toBeGreaterThan(60);
      expect(b).toBeLessThan(140);
    }
    expect(c.maxActive()).toBeLessThan(50);
  });

  it('keeps the same phases across a restart (same keys, new scheduler)', () => {
    expect(phaseOf('ns/p#pod-1', 10_000)).toBe(phaseOf('ns/p#pod-1', 10_000));
    expect(phaseOf('ns/p#pod-1', 10_000)).not.toBe(phaseOf('ns/p#pod-2', 10_000));
    expect(nextOnGrid(1000, 10_000, 1000)).toBe(1000);
    expect(nextOnGrid(1001, 10_000, 1000)).toBe(11_000);
  });

  it('runs an immediate target at once, then on its phase', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const c = controlled(clock, 1);
    const t0 = clock.now();
    scheduler.upsert({ key: 'a', periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    await clock.advance(0);
    expect(c.calls.map((x) => x.at)).toEqual([t0]);
  });

  it('missedSlot: whether a slot of the grid fell in [since, now]', () => {
    expect(missedSlot(1000, 10_000, 1000, undefined)).toBe(false);
    expect(missedSlot(1000, 10_000, 1000, 1000)).toBe(true); // the slot is now
    expect(missedSlot(10_999, 10_000, 1000, 1000)).toBe(true); // last slot 1,000
    expect(missedSlot(10_999, 10_000, 1000, 1001)).toBe(false);
    expect(missedSlot(11_000, 10_000, 1000, 1001)).toBe(true); // slot 11,000
    expect(missedSlot(50_000, 10_000, 1000, 0)).toBe(true); // a handover longer than a period
  });

  it('a target taken over runs at once if the handover spanned its slot, else at its slot', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const [ra, rb] = [controlled(clock, 1), controlled(clock, 1)];
    const period = 100_000;
    const t0 = clock.now();
    const slots = (key: string) => {
      const next = nextOnGrid(t0 + 1, period, phaseOf(key, period));
      return { last: next - period, next };
    };
    const [a, b] = ['shop/db#uid-a', 'shop/db#uid-b'];
    // a's last slot fell after the previous holder may have stopped; b's before it.
    scheduler.upsert({ key: a, periodMs: period, timeoutMs: 1000, run: ra.run, missedSince: slots(a).last });
    scheduler.upsert({ key: b, periodMs: period, timeoutMs: 1000, run: rb.run, missedSince: slots(b).last + 1 });
    await clock.advance(0);
    expect(ra.calls.map((x) => x.at)).toEqual([t0]);
    expect(rb.calls).toEqual([]);
    await clock.advance(slots(b).next - t0);
    expect(rb.calls.map((x) => x.at)).toEqual([slots(b).next]); // on its slot, not before
    expect(ra.calls.map((x) => x.at)).toEqual(slots(a).next <= slots(b).next ? [t0, slots(a).next] : [t0]);
  });

  it('never overlaps runs of one target: a slow run skips due times and reports them', async () => {
    const { clock, delivered, scheduler } = setup();
    current = scheduler;
    const c = controlled(clock, 25_000);
    scheduler.upsert({ key: 'slow', periodMs: 10_000, timeoutMs: 30_000, run: c.run, immediate: true });
    // Due again on the key's grid at +8.488 s and +18.488 s (both while the run is busy), then
    // +28.488 s; the run ends at +25 s.
    await clock.advance(28_000);
    expect(c.calls).toHaveLength(1);
    expect(c.maxActive()).toBe(1);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.timing.skipped).toBe(2);
  });

  it("after an immediate first run, each target goes back to its key's phase (no lasting burst)", async () => {
    const { clock, scheduler } = setup(100);
    current = scheduler;
    const c = controlled(clock, 1);
    const keys = Array.from({ length: 20 }, (_, i) => `ns/p#pod-${i}`);
    const t0 = clock.now();
    for (const key of keys) scheduler.upsert({ key, periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    await clock.advance(0);
    expect(c.calls.filter((x) => x.at === t0)).toHaveLength(20);
    await clock.advance(15_000);
    const second = c.calls.slice(20).map((x) => x.at - t0);
    // Every second run sits on its key's grid, half a period to one and a half periods on.
    const expected = keys.map((k) => nextOnGrid(t0 + 5_000, 10_000, phaseOf(k, 10_000)) - t0);
    expect(second.sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
    expect(new Set(second).size).toBeGreaterThan(15);
  });

  it('holds the global concurrency limit, queues the excess FIFO and reports lateness', async () => {
    const { clock, delivered, scheduler } = setup(2);
    current = scheduler;
    const c = controlled(clock, 100);
    for (const key of ['a', 'b', 'c', 'd', 'e'])
      scheduler.upsert({ key, periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    await clock.advance(0);
    expect(c.active()).toBe(2);
    expect(scheduler.stats()).toMatchObject({ inFlight: 2, queued: 3 });
    await clock.advance(1000);
    expect(c.maxActive()).toBe(2);
    expect(delivered.map((d) => d.key)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(delivered.map((d) => d.timing.lateMs)).toEqual([0, 0, 100, 100, 200]);
    expect(delivered.every((d) => d.timing.plannedAt === delivered[0]!.timing.plannedAt)).toBe(true);
  });

  it('remove() cancels a pending run', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const c = controlled(clock, 1);
    scheduler.upsert({ key: 'gone', periodMs: 10_000, timeoutMs: 1000, run: c.run });
    scheduler.remove('gone');
    await clock.advance(30_000);
    expect(c.calls).toHaveLength(0);
  });

  it('remove() aborts an in-flight run and drops its result', async () => {
    const { clock, delivered, scheduler } = setup();
    current = scheduler;
    const c = controlled(clock);
    scheduler.upsert({ key: 'gone', periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    await clock.advance(0);
    scheduler.remove('gone');
    expect(c.calls[0]!.signal.aborted).toBe(true);
    c.calls[0]!.finish();
    await clock.advance(0);
    expect(delivered).toHaveLength(0);
    expect(scheduler.stats().inFlight).toBe(0);
  });

  it('upsert() of a changed target drops the old in-flight result and does not overlap it', async () => {
    const { clock, delivered, scheduler } = setup();
    current = scheduler;
    const old = controlled(clock);
    const fresh = controlled(clock, 1);
    scheduler.upsert({ key: 'k', periodMs: 1000, timeoutMs: 5000, run: old.run, immediate: true });
    await clock.advance(0);
    scheduler.upsert({ key: 'k', periodMs: 1000, timeoutMs: 5000, run: fresh.run });
    expect(old.calls[0]!.signal.aborted).toBe(true);
    await clock.advance(2500);
    expect(fresh.calls).toHaveLength(0); // the old run still holds the target
    old.calls[0]!.finish();
    await clock.advance(1000);
    expect(fresh.calls).toHaveLength(1);
    expect(delivered.map((d) => d.result)).toEqual([OK]);
  });

  it('abandons a run that never settles after timeout + grace and frees its slot', async () => {
    const { clock, delivered, scheduler } = setup(1, 500);
    current = scheduler;
    const stuck = controlled(clock);
    const other = controlled(clock, 1);
    scheduler.upsert({ key: 'stuck', periodMs: 60_000, timeoutMs: 1000, run: stuck.run, immediate: true });
    scheduler.upsert({ key: 'other', periodMs: 60_000, timeoutMs: 1000, run: other.run, immediate: true });
    await clock.advance(1499);
    expect(other.calls).toHaveLength(0);
    await clock.advance(1);
    expect(delivered[0]).toMatchObject({ key: 'stuck', result: { outcome: 'timeout' } });
    expect(stuck.calls[0]!.signal.aborted).toBe(true);
    await clock.advance(10);
    expect(other.calls).toHaveLength(1);
  });

  it('reports a rejected run as a failure instead of losing the slot, with a message of its own', async () => {
    const { clock, delivered, scheduler } = setup(1);
    current = scheduler;
    scheduler.upsert({
      key: 'bad',
      periodMs: 10_000,
      timeoutMs: 1000,
      run: () => Promise.reject(new Error('bug')),
      immediate: true,
    });
    await clock.advance(0);
    expect(delivered[0]!.result).toMatchObject({
      outcome: 'failure',
      couldNotLook: true,
      message: 'probe crashed inside readygate (Error); see the operator log',
    });
    expect(scheduler.stats().inFlight).toBe(0);
  });

  it('a run that throws, rejects or resolves with a non-result is contained and reported through onCrash', async () => {
    const clock = new ManualClock();
    const delivered: Delivered[] = [];
    const crashes: Array<{ key: string; kind: string; error: unknown }> = [];
    const scheduler = new ProbeScheduler({
      clock,
      concurrency: 1,
      onResult: (key, result, timing) => delivered.push({ key, result, timing }),
      onCrash: (key, crash) => crashes.push({ key, ...crash }),
    });
    current = scheduler;
    const thrown = new SyntaxError('Unexpected token \u001b in JSON from the pod');
    const runs: Record<string, () => Promise<ProbeResult>> = {
      threw: () => {
        throw thrown;
      },
      rejected: () => Promise.reject('a string'),
      invalid: () => Promise.resolve({ outcome: 'fine' } as unknown as ProbeResult),
      ok: () => Promise.resolve(OK),
    };
    for (const [key, run] of Object.entries(runs))
      scheduler.upsert({ key, periodMs: 10_000, timeoutMs: 1000, run, immediate: true });
    await clock.advance(0);
    // One slot: every crash released it, so the healthy target still ran.
    expect(delivered.map((d) => [d.key, d.result.outcome, d.result.message])).toEqual([
      ['threw', 'failure', 'probe crashed inside readygate (SyntaxError); see the operator log'],
      ['rejected', 'failure', 'probe crashed inside readygate; see the operator log'],
      ['invalid', 'failure', 'probe crashed inside readygate; see the operator log'],
      ['ok', 'success', 'ok'],
    ]);
    expect(crashes.map((c) => [c.key, c.kind])).toEqual([
      ['threw', 'threw'],
      ['rejected', 'rejected'],
      ['invalid', 'invalid-result'],
    ]);
    expect(crashes[0]!.error).toBe(thrown);
    expect(scheduler.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('an onResult that throws is reported as a crash and the queue keeps moving', async () => {
    const clock = new ManualClock();
    const crashes: Array<{ key: string; kind: string }> = [];
    const results: string[] = [];
    const scheduler = new ProbeScheduler({
      clock,
      concurrency: 1,
      onResult: (key) => {
        results.push(key);
        if (key === 'a') throw new Error('handler bug');
      },
      onCrash: (key, crash) => crashes.push({ key, kind: crash.kind }),
    });
    current = scheduler;
    const c = controlled(clock, 5);
    scheduler.upsert({ key: 'a', periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    scheduler.upsert({ key: 'b', periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    await clock.advance(20);
    expect(results).toEqual(['a', 'b']);
    expect(crashes).toEqual([{ key: 'a', kind: 'result-handler' }]);
    expect(scheduler.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('stop() clears every timer and delivers nothing more', async () => {
    const { clock, delivered, scheduler } = setup();
    const c = controlled(clock);
    for (let i = 0; i < 10; i++)
      scheduler.upsert({ key: `k${i}`, periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: i === 0 });
    await clock.advance(0);
    scheduler.stop();
    expect(clock.timers.size).toBe(0);
    expect(c.calls[0]!.signal.aborted).toBe(true);
    c.calls[0]!.finish();
    await clock.advance(60_000);
    expect(delivered).toHaveLength(0);
    expect(c.calls).toHaveLength(1);
  });
});

describe('ProbeScheduler, fair sharing between tenants', () => {
  const TARPIT = { namespace: 'tarpit', policy: 'slow' };
  const VICTIM = { namespace: 'shop', policy: 'db' };
  /** A probe that never settles and ignores its abort signal: a target that accepts and never answers. */
  const hang = (): Promise<ProbeResult> => new Promise(() => {});

  function tarpit(scheduler: ProbeScheduler, n: number, tenant?: { namespace: string; policy: string }): void {
    for (let i = 0; i < n; i++)
      scheduler.upsert({
        key: `tarpit/slow#pod-${i}`,
        periodMs: 62_000,
        timeoutMs: 60_000,
        run: hang,
        immediate: true,
        tenant,
      });
  }

  /** Victim runs started in each of `periods` consecutive fake periods of `periodMs`. */
  async function runsPerPeriod(
    clock: ManualClock,
    calls: unknown[],
    periods: number,
    periodMs = 1000,
  ): Promise<number[]> {
    const counts: number[] = [];
    for (let p = 0; p < periods; p++) {
      const before = calls.length;
      await clock.advance(periodMs);
      counts.push(calls.length - before);
    }
    return counts;
  }

  // 128 slots: the 256 tarpit targets alone would keep every slot busy (and a queue behind them).
  it('256 never-settling targets in one namespace: a victim in another runs every period, on time', async () => {
    const { clock, delivered, scheduler } = setup(128);
    current = scheduler;
    tarpit(scheduler, 256, TARPIT);
    const victim = controlled(clock, 10);
    scheduler.upsert({ key: 'shop/db#pod-0', periodMs: 1000, timeoutMs: 500, run: victim.run, tenant: VICTIM });
    const tarpitInFlight: number[] = [];
    const counts: number[] = [];
    // 300 s: each tarpit run is abandoned at timeout + grace (61 s) and its target is due again.
    for (let p = 0; p < 300; p++) {
      counts.push(...(await runsPerPeriod(clock, victim.calls, 1)));
      tarpitInFlight.push(scheduler.inFlightOf('tarpit'));
    }
    expect(counts).toEqual(new Array(300).fill(1));
    const victimTimings = delivered.filter((d) => d.key.startsWith('shop/')).map((d) => d.timing);
    expect(victimTimings).toHaveLength(300);
    expect(victimTimings.every((t) => t.lateMs === 0 && t.skipped === 0)).toBe(true);
    // The tarpit held three quarters of the slots nearly all the time, and kept coming back.
    expect(Math.max(...tarpitInFlight)).toBe(96);
    expect(tarpitInFlight.filter((n) => n === 96).length).toBeGreaterThan(270);
    // Four rounds of 96 runs abandoned at timeout + grace (61 s) in 300 s.
    expect(delivered.filter((d) => d.key.startsWith('tarpit/') && d.result.outcome === 'timeout')).toHaveLength(4 * 96);
  });

  it('two namespaces of never-settling targets: a victim in a third still runs every period', async () => {
    const { clock, scheduler } = setup(256);
    current = scheduler;
    tarpit(scheduler, 256, TARPIT);
    for (let i = 0; i < 256; i++)
      scheduler.upsert({
        key: `tarpit2/slow#pod-${i}`,
        periodMs: 90_000,
        timeoutMs: 60_000,
        run: hang,
        immediate: true,
        tenant: { namespace: 'tarpit2', policy: 'slow' },
      });
    const victim = controlled(clock, 10);
    scheduler.upsert({ key: 'shop/db#pod-0', periodMs: 1000, timeoutMs: 500, run: victim.run, tenant: VICTIM });
    expect(await runsPerPeriod(clock, victim.calls, 200)).toEqual(new Array(200).fill(1));
    expect(scheduler.inFlightOf('tarpit') + scheduler.inFlightOf('tarpit2')).toBe(255);
  });

  it('a victim that arrives after the tarpit took every slot waits at most one timeout + grace, then keeps its period', async () => {
    const { clock, scheduler } = setup(256);
    current = scheduler;
    tarpit(scheduler, 256, TARPIT);
    await clock.advance(0);
    expect(scheduler.stats().inFlight).toBe(256); // alone, the tarpit may use every slot
    const victim = controlled(clock, 10);
    scheduler.upsert({ key: 'shop/db#pod-0', periodMs: 1000, timeoutMs: 500, run: victim.run, tenant: VICTIM });
    const counts = await runsPerPeriod(clock, victim.calls, 200);
    const first = counts.findIndex((n) => n > 0);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThanOrEqual(61);
    expect(counts.slice(first + 1)).toEqual(new Array(200 - first - 1).fill(1));
  });

  it('without tenants (one shared queue) the same tarpit starves the victim', async () => {
    const { clock, scheduler } = setup(128);
    current = scheduler;
    tarpit(scheduler, 256);
    const victim = controlled(clock, 10);
    scheduler.upsert({ key: 'shop/db#pod-0', periodMs: 1000, timeoutMs: 500, run: victim.run });
    const counts = await runsPerPeriod(clock, victim.calls, 300);
    // It waits behind the tarpit's queued runs, each for a slot held 61 s: a handful of runs in 300 periods.
    expect(counts.filter((n) => n > 0).length).toBeLessThanOrEqual(5);
  });

  it('within a namespace, a policy with fewer runs in flight goes first', async () => {
    const { clock, scheduler } = setup(8);
    current = scheduler;
    for (let i = 0; i < 16; i++)
      scheduler.upsert({
        key: `shop/slow#pod-${i}`,
        periodMs: 90_000,
        timeoutMs: 60_000,
        run: hang,
        immediate: true,
        tenant: { namespace: 'shop', policy: 'slow' },
      });
    const fast = controlled(clock, 10);
    scheduler.upsert({
      key: 'shop/fast#pod-0',
      periodMs: 1000,
      timeoutMs: 500,
      run: fast.run,
      tenant: { namespace: 'shop', policy: 'fast' },
    });
    const t0 = clock.now();
    await clock.advance(0);
    expect(scheduler.inFlightOf('shop', 'slow')).toBe(8);
    // The slow policy's 8 queued runs were due first; the fast one still starts on the first
    // slot freed (when the slow runs are abandoned, at timeout + grace), the slow ones get the rest.
    await clock.advance(61_000);
    expect(fast.calls.map((c) => c.at - t0)).toEqual([61_000]);
    expect(scheduler.inFlightOf('shop', 'slow')).toBe(7);
    expect(scheduler.stats()).toMatchObject({ inFlight: 8 });
  });
});

describe('ProbeScheduler under overload (src/safety/overload.ts)', () => {
  /** Run start times of each key, from a run function that answers after 1 ms. */
  function starts(clock: ManualClock) {
    const at = new Map<string, number[]>();
    const runFor = (key: string) => (): Promise<ProbeResult> => {
      at.set(key, [...(at.get(key) ?? []), clock.now()]);
      return new Promise((resolve) => clock.setTimeout(() => resolve(OK), 1));
    };
    return { at, runFor };
  }

  it('stretches steady targets evenly, and leaves targets that are not steady at their own period', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const s = starts(clock);
    for (let i = 0; i < 20; i++) {
      const key = `shop/db#steady-${i}`;
      scheduler.upsert({ key, periodMs: 10_000, timeoutMs: 1000, run: s.runFor(key), steady: () => true });
    }
    const busy = 'shop/db#changing';
    scheduler.upsert({ key: busy, periodMs: 10_000, timeoutMs: 1000, run: s.runFor(busy), steady: () => false });
    scheduler.setStretch(3);
    expect(scheduler.stretch).toBe(3);
    await clock.advance(10_000); // due runs already planned keep their time
    await clock.advance(200_000);
    const gaps = (key: string) => {
      const t = s.at.get(key) ?? [];
      return t.slice(1).map((x, i) => x - t[i]!);
    };
    for (let i = 0; i < 20; i++) {
      const g = gaps(`shop/db#steady-${i}`).slice(1);
      expect(g.length).toBeGreaterThanOrEqual(3);
      for (const gap of g) expect(gap).toBe(30_000);
    }
    for (const gap of gaps(busy)) expect(gap).toBe(10_000);
  });

  it('a run that leaves its target unsettled brings the next run back from the stretched period', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    let steady = true;
    const at: number[] = [];
    scheduler.upsert({
      key: 'shop/db#pod',
      periodMs: 10_000,
      timeoutMs: 1000,
      steady: () => steady,
      run: () => {
        at.push(clock.now());
        steady = at.length < 3; // the third run fails: mid-transition from then on
        return Promise.resolve(OK);
      },
    });
    scheduler.setStretch(4);
    await clock.advance(200_000);
    const gaps = at.slice(1).map((x, i) => x - at[i]!);
    expect(gaps[1]).toBe(40_000); // settled: stretched
    for (const gap of gaps.slice(2)) expect(gap).toBe(10_000); // after the failing run: its own period
  });

  it('a falling factor brings runs planned far out back to the new period, to the slot after their last run', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const s = starts(clock);
    const key = 'shop/db#pod';
    scheduler.upsert({ key, periodMs: 10_000, timeoutMs: 1000, run: s.runFor(key), immediate: true });
    scheduler.setStretch(10);
    await clock.advance(1000); // first run; the next one is planned ~100 s out
    const first = s.at.get(key)![0]!;
    const t0 = clock.now();
    scheduler.setStretch(1);
    await clock.advance(20_000);
    const later = (s.at.get(key) ?? []).filter((t) => t > t0);
    expect(later.length).toBeGreaterThanOrEqual(1);
    // Where an unstretched run after `first` would be: at least half a period after it, within 1.5.
    expect(later[0]! - first).toBeGreaterThanOrEqual(5_000);
    expect(later[0]! - first).toBeLessThanOrEqual(15_000);
  });

  it('runs no target twice within half a period while the factor swings up and down', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const s = starts(clock);
    for (let i = 0; i < 50; i++) {
      const key = `shop/db#pod-${i}`;
      scheduler.upsert({ key, periodMs: 10_000, timeoutMs: 1000, run: s.runFor(key), steady: () => true });
    }
    // As at 150,000 pods (bench/RESULTS.md): runs on stretched grids, then falls, rises and falls.
    let total = 0;
    for (const [f, ms] of [
      [2.7, 60_000],
      [1.6, 20_000],
      [1, 7_000],
      [2.3, 45_000],
      [1.4, 10_000],
      [1, 30_000],
    ] as const) {
      scheduler.setStretch(f);
      await clock.advance(ms);
      total += ms;
    }
    for (const at of s.at.values()) {
      const gaps = at.slice(1).map((x, i) => x - at[i]!);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(5_000);
    }
    // No more runs than one a period each over the whole time, plus the first.
    const runs = [...s.at.values()].reduce((a, at) => a + at.length, 0);
    expect(runs).toBeLessThanOrEqual(50 * (total / 10_000 + 1));
  });

  it('queues runs of targets that are not steady before steady ones of the same policy', async () => {
    const { clock, scheduler } = setup(1);
    current = scheduler;
    const order: string[] = [];
    const blocker = controlled(clock);
    scheduler.upsert({ key: 'shop/db#blocker', periodMs: 60_000, timeoutMs: 5000, run: blocker.run, immediate: true });
    await clock.advance(0);
    for (const [key, steady] of [
      ['shop/db#steady-1', true],
      ['shop/db#steady-2', true],
      ['shop/db#new', false],
    ] as const) {
      scheduler.upsert({
        key,
        periodMs: 60_000,
        timeoutMs: 5000,
        immediate: true,
        steady: () => steady,
        run: () => {
          order.push(key);
          return Promise.resolve(OK);
        },
      });
    }
    await clock.advance(0);
    expect(order).toEqual([]);
    blocker.calls[0]!.finish();
    await clock.advance(0);
    expect(order).toEqual(['shop/db#new', 'shop/db#steady-1', 'shop/db#steady-2']);
  });

  it('starts nothing while yieldTo says writes need the loop, and resumes by itself', async () => {
    const clock = new ManualClock();
    let yielding = true;
    const scheduler = new ProbeScheduler({ clock, concurrency: 10, onResult: () => {}, yieldTo: () => yielding });
    current = scheduler;
    const c = controlled(clock, 1);
    scheduler.upsert({ key: 'shop/db#pod', periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    await clock.advance(100);
    expect(c.calls).toHaveLength(0);
    expect(scheduler.stats()).toMatchObject({ queued: 1, inFlight: 0 });
    yielding = false;
    await clock.advance(YIELD_RECHECK_MS);
    expect(c.calls).toHaveLength(1);
    await clock.advance(1);
    scheduler.stop();
    expect(clock.timers.size).toBe(0);
  });

  it('reports what the periods ask for and counts finished runs', async () => {
    const { clock, scheduler } = setup();
    current = scheduler;
    const c = controlled(clock, 1);
    scheduler.upsert({ key: 'a', periodMs: 10_000, timeoutMs: 1000, run: c.run, immediate: true });
    scheduler.upsert({ key: 'b', periodMs: 2000, timeoutMs: 1000, run: c.run, immediate: true });
    expect(scheduler.stats().demandPerSecond).toBeCloseTo(0.6);
    scheduler.upsert({ key: 'b', periodMs: 1000, timeoutMs: 1000, run: c.run });
    expect(scheduler.stats().demandPerSecond).toBeCloseTo(1.1);
    await clock.advance(10);
    expect(scheduler.stats().completed).toBeGreaterThanOrEqual(1);
    scheduler.remove('a');
    scheduler.remove('b');
    expect(scheduler.stats().demandPerSecond).toBe(0);
  });
});
