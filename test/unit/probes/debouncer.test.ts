import { describe, expect, it } from 'vitest';
import { conditionMessage, Debouncer, type DebounceSpec, MAX_MESSAGE_DETAIL } from '../../../src/probes/debouncer.ts';
import type { ProbeResult } from '../../../src/probes/types.ts';

const ok = (message = 'HTTP GET http://127.0.0.1:8080/ready: 200'): ProbeResult => ({
  outcome: 'success',
  couldNotLook: false,
  message,
  durationMs: 1,
});
const bad = (message = 'HTTP GET http://127.0.0.1:8080/ready: 503'): ProbeResult => ({
  outcome: 'failure',
  couldNotLook: false,
  message,
  durationMs: 1,
});
const slow: ProbeResult = {
  outcome: 'timeout',
  couldNotLook: false,
  message: 'TCP connect 127.0.0.1:5432: timeout after 1s',
  durationMs: 1000,
};

const spec = (over: Partial<DebounceSpec> = {}, probe: DebounceSpec['probe'] = {}): DebounceSpec => ({
  probe: { successThreshold: 1, failureThreshold: 3, ...probe },
  ...over,
});
const T0 = 1_000_000;

describe('Debouncer.settled (who may be stretched under overload)', () => {
  it('is false with no verdict yet, true once the gate has a status and no run toward the other', () => {
    const d = new Debouncer(spec(), undefined, T0);
    expect(d.settled()).toBe(false);
    d.observe(ok(), T0);
    expect(d.settled()).toBe(true);
    d.observe(bad(), T0 + 1);
    expect(d.settled()).toBe(false); // mid-transition: 1 of 3 failures
    d.observe(bad(), T0 + 2);
    d.observe(bad(), T0 + 3);
    expect(d.desired(T0 + 3)?.status).toBe('False');
    expect(d.settled()).toBe(true);
    d.observe(ok(), T0 + 4);
    expect(d.settled()).toBe(true); // successThreshold 1: True again at once
  });

  it('a False gate with a success toward its threshold is not settled', () => {
    const d = new Debouncer(
      spec({}, { successThreshold: 2 }),
      { status: 'False', reason: 'ProbeFailed', message: 'down' },
      T0,
    );
    expect(d.settled()).toBe(true);
    d.observe(ok(), T0);
    expect(d.settled()).toBe(false);
  });
});

describe('Debouncer thresholds', () => {
  it('failureThreshold consecutive failures flip True → False, with the count in the message', () => {
    const d = new Debouncer(spec(), { status: 'True', reason: 'ProbeSucceeded', message: 'm' }, T0);
    expect(d.observe(bad(), T0 + 1)).toEqual({ status: 'True', reason: 'ProbeSucceeded', message: 'm' });
    expect(d.observe(bad(), T0 + 2)?.status).toBe('True');
    expect(d.observe(bad(), T0 + 3)).toEqual({
      status: 'False',
      reason: 'ProbeFailed',
      message: 'HTTP GET http://127.0.0.1:8080/ready: 503 (3/3 failures)',
    });
  });

  it('a success in between resets the failure count', () => {
    const d = new Debouncer(spec(), { status: 'True' }, T0);
    d.observe(bad(), T0);
    d.observe(bad(), T0);
    d.observe(ok(), T0);
    d.observe(bad(), T0);
    expect(d.observe(bad(), T0)?.status).toBe('True');
    expect(d.observe(bad(), T0)?.status).toBe('False');
  });

  it('keeps the message stable after the flip ("3/3", not "4/3"), so no write per period', () => {
    const d = new Debouncer(spec(), { status: 'True' }, T0);
    for (let i = 0; i < 3; i++) d.observe(bad(), T0);
    const flipped = d.desired(T0);
    expect(d.observe(bad(), T0)).toEqual(flipped);
    expect(d.observe(bad(), T0)).toEqual(flipped);
  });

  it('a timeout flips with reason ProbeTimeout', () => {
    const d = new Debouncer(spec({}, { failureThreshold: 1 }), { status: 'True' }, T0);
    expect(d.observe(slow, T0)).toMatchObject({ status: 'False', reason: 'ProbeTimeout' });
  });

  it('successThreshold consecutive successes flip False → True', () => {
    const d = new Debouncer(
      spec({}, { successThreshold: 2 }),
      { status: 'False', reason: 'ProbeFailed', message: 'x' },
      T0,
    );
    expect(d.observe(ok(), T0)?.status).toBe('False');
    d.observe(bad(), T0);
    expect(d.observe(ok(), T0)?.status).toBe('False');
    expect(d.observe(ok(), T0)).toEqual({ status: 'True', reason: 'ProbeSucceeded', message: ok().message });
  });
});

describe('Debouncer seeding', () => {
  it('a True condition seeds "True with 0 failures": a restart never flips a healthy gate', () => {
    const d = new Debouncer(spec(), { status: 'True', reason: 'ProbeSucceeded', message: ok().message }, T0);
    expect(d.desired(T0)).toEqual({ status: 'True', reason: 'ProbeSucceeded', message: ok().message });
    expect(d.observe(ok(), T0)).toEqual({ status: 'True', reason: 'ProbeSucceeded', message: ok().message });
  });

  it('no condition: nothing to write until a verdict, then successThreshold successes make it True', () => {
    const d = new Debouncer(spec({}, { successThreshold: 2 }), undefined, T0);
    expect(d.desired(T0)).toBeUndefined();
    expect(d.observe(ok(), T0)).toBeUndefined();
    expect(d.observe(ok(), T0)?.status).toBe('True');
  });

  it('no condition and failing: False once failureThreshold is reached', () => {
    const d = new Debouncer(spec(), undefined, T0);
    expect(d.observe(bad(), T0)).toBeUndefined();
    expect(d.observe(bad(), T0)).toBeUndefined();
    expect(d.observe(bad(), T0)).toMatchObject({ status: 'False', message: expect.stringContaining('(3/3 failures)') });
  });

  it('a False condition written by a previous process is repeated, not rewritten', () => {
    const message = `${bad().message} (3/3 failures)`;
    const d = new Debouncer(spec(), { status: 'False', reason: 'ProbeFailed', message }, T0);
    expect(d.observe(bad(), T0)).toEqual({ status: 'False', reason: 'ProbeFailed', message });
  });

  it('withSpec keeps counters and status across a spec change', () => {
    const d = new Debouncer(spec(), { status: 'True' }, T0);
    d.observe(bad(), T0);
    d.observe(bad(), T0);
    const next = d.withSpec(spec({}, { failureThreshold: 5 }));
    expect(next.observe(bad(), T0)?.status).toBe('True'); // 3 of 5
    expect(next.snapshot().failures).toBe(3);
  });
});

describe('Debouncer timing gates', () => {
  it('does not probe nor take results before the pod is first seen Running', () => {
    const d = new Debouncer(spec({}, { failureThreshold: 1 }), { status: 'True' });
    expect(d.shouldProbe(T0)).toBe(false);
    expect(d.observe(bad(), T0)?.status).toBe('True');
    d.markRunning(T0);
    expect(d.shouldProbe(T0)).toBe(true);
    expect(d.observe(bad(), T0)?.status).toBe('False');
  });

  it('initialDelaySeconds counts from the first Running observation', () => {
    const d = new Debouncer(spec({}, { initialDelaySeconds: 10, failureThreshold: 1 }), { status: 'True' });
    d.markRunning(T0);
    d.markRunning(T0 + 5000); // later observations do not move it
    expect(d.shouldProbe(T0 + 9999)).toBe(false);
    expect(d.observe(bad(), T0 + 9999)?.status).toBe('True');
    expect(d.shouldProbe(T0 + 10_000)).toBe(true);
    expect(d.observe(bad(), T0 + 10_000)?.status).toBe('False');
  });
});

describe('Debouncer modes', () => {
  it('StartupOnly latches True forever once True', () => {
    const d = new Debouncer(spec({ mode: 'StartupOnly' }, { failureThreshold: 1 }), undefined, T0);
    d.observe(ok(), T0);
    expect(d.snapshot().latched).toBe(true);
    expect(d.shouldProbe(T0 + 1)).toBe(false);
    expect(d.observe(bad(), T0 + 1)?.status).toBe('True');
  });

  it('StartupOnly seeded True is latched from the start', () => {
    const d = new Debouncer(spec({ mode: 'StartupOnly' }), { status: 'True' }, T0);
    expect(d.shouldProbe(T0)).toBe(false);
  });

  it('Continuous does not latch', () => {
    const d = new Debouncer(spec({}, { failureThreshold: 1 }), undefined, T0);
    d.observe(ok(), T0);
    expect(d.observe(bad(), T0)?.status).toBe('False');
  });

  it('fails open after failOpenAfterSeconds False since first Running', () => {
    const d = new Debouncer(spec({ failsafe: { failOpenAfterSeconds: 60 } }), undefined, T0);
    for (let i = 0; i < 3; i++) d.observe(bad(), T0 + i * 1000);
    expect(d.desired(T0 + 59_999)?.status).toBe('False');
    const open = d.desired(T0 + 60_000);
    expect(open).toEqual({
      status: 'True',
      reason: 'FailOpenTimeout',
      message: 'probe not passing after 60s; failing open',
    });
    // More failures do not close it again, nor change the message.
    expect(d.observe(bad('other error'), T0 + 70_000)).toEqual(open);
    // A real success takes over.
    expect(d.observe(ok(), T0 + 80_000)).toMatchObject({ status: 'True', reason: 'ProbeSucceeded' });
  });

  it('fail-open counts from the flip for a gate that was True', () => {
    const d = new Debouncer(
      spec({ failsafe: { failOpenAfterSeconds: 60 } }, { failureThreshold: 1 }),
      { status: 'True' },
      T0,
    );
    d.observe(bad(), T0 + 100_000);
    expect(d.desired(T0 + 159_999)?.status).toBe('False');
    expect(d.desired(T0 + 160_000)?.reason).toBe('FailOpenTimeout');
  });

  it('a FailOpenTimeout condition on the pod stays open across a restart', () => {
    const d = new Debouncer(
      spec({ failsafe: { failOpenAfterSeconds: 60 } }),
      { status: 'True', reason: 'FailOpenTimeout' },
      T0,
    );
    expect(d.observe(bad(), T0)).toMatchObject({ status: 'True', reason: 'FailOpenTimeout' });
  });

  it('failOpenAfterSeconds 0 never fails open', () => {
    const d = new Debouncer(spec({ failsafe: { failOpenAfterSeconds: 0 } }, { failureThreshold: 1 }), undefined, T0);
    d.observe(bad(), T0);
    expect(d.desired(T0 + 1e9)?.status).toBe('False');
  });

  it('dryRun computes the same status with reason DryRun and patch false', () => {
    const d = new Debouncer(spec({ dryRun: true }, { failureThreshold: 1 }), { status: 'True' }, T0);
    expect(d.patch).toBe(false);
    expect(d.observe(bad(), T0)).toEqual({
      status: 'False',
      reason: 'DryRun',
      message: `${bad().message} (1/1 failures)`,
    });
    expect(new Debouncer(spec()).patch).toBe(true);
  });
});

describe('Debouncer messages', () => {
  // Counts the desired-condition changes the way the probe manager does: a change in status,
  // reason or message is one pod write.
  const changes = (d: Debouncer, results: ProbeResult[]): number => {
    let last = d.desired(T0);
    let n = 0;
    results.forEach((r, i) => {
      const next = d.observe(r, T0 + i * 1000);
      if (next && (next.status !== last?.status || next.reason !== last.reason || next.message !== last.message)) n++;
      last = next;
    });
    return n;
  };
  const redirected = (i: number) => ok(`HTTP GET http://127.0.0.1:8080/ready: 200 (after ${(i % 3) + 1} redirects)`);

  it('successes whose messages vary every probe make one change: the verdict', () => {
    const d = new Debouncer(spec(), undefined, T0);
    expect(
      changes(
        d,
        Array.from({ length: 20 }, (_, i) => redirected(i)),
      ),
    ).toBe(1);
    expect(d.desired(T0)).toEqual({ status: 'True', reason: 'ProbeSucceeded', message: redirected(0).message });
  });

  it('a True gate seeded from the pod keeps its message through varying successes: no change', () => {
    const seed = { status: 'True', reason: 'ProbeSucceeded', message: 'written by the previous process' };
    const d = new Debouncer(spec(), seed, T0);
    expect(
      changes(
        d,
        Array.from({ length: 20 }, (_, i) => redirected(i)),
      ),
    ).toBe(0);
    expect(d.desired(T0)?.message).toBe(seed.message);
  });

  it('failures whose messages vary make one change: the flip, and the message stays the first', () => {
    const d = new Debouncer(spec(), { status: 'True', reason: 'ProbeSucceeded', message: 'm' }, T0);
    const results = Array.from({ length: 20 }, (_, i) => bad(`HTTP GET http://127.0.0.1:8080/ready: ${500 + (i % 4)}`));
    expect(changes(d, results)).toBe(1);
    expect(d.desired(T0)).toEqual({
      status: 'False',
      reason: 'ProbeFailed',
      message: 'HTTP GET http://127.0.0.1:8080/ready: 502 (3/3 failures)',
    });
  });

  it('a False gate changes its message when the reason changes, and only then', () => {
    const d = new Debouncer(spec(), { status: 'True' }, T0);
    for (let i = 0; i < 3; i++) d.observe(bad(), T0);
    expect(d.observe(slow, T0)).toEqual({
      status: 'False',
      reason: 'ProbeTimeout',
      message: `${slow.message} (3/3 failures)`,
    });
    expect(d.observe({ ...slow, message: 'TCP connect 127.0.0.1:5432: timeout after 2s' }, T0)?.message).toBe(
      `${slow.message} (3/3 failures)`,
    );
  });

  it('strips control characters and bounds the length, keeping the failure count', () => {
    const d = new Debouncer(spec({}, { failureThreshold: 1 }), { status: 'True' }, T0);
    const hostile = `probe crashed: \u001b]0;pwned\u0007\u001b[2J\u009b31m\u202e\r\nX-Injected: 1${'x'.repeat(5000)}`;
    const message = d.observe(bad(hostile), T0)?.message ?? '';
    expect(message).not.toMatch(/[\p{Cc}\u202e]/u);
    expect(message.length).toBeLessThanOrEqual(MAX_MESSAGE_DETAIL + ' (1/1 failures)'.length);
    expect(message).toMatch(/^probe crashed: \uFFFD\]0;pwned/);
    expect(message.endsWith('… (1/1 failures)')).toBe(true);
    expect(conditionMessage('HTTP GET http://10.0.0.1:8080/healthz: 200')).toBe(
      'HTTP GET http://10.0.0.1:8080/healthz: 200',
    );
  });
});

describe('Debouncer and results that observed nothing', () => {
  const notRun: ProbeResult = {
    outcome: 'unknown',
    couldNotLook: true,
    message: 'exec ["true"] in shop/web-0/app: not run: API server answered HTTP 503',
    durationMs: 1,
  };

  it('unknown results neither count toward failureThreshold nor reset a run of failures', () => {
    const d = new Debouncer(spec(), { status: 'True', reason: 'ProbeSucceeded', message: 'm' }, T0);
    for (let i = 0; i < 10; i++) expect(d.observe(notRun, T0)?.status).toBe('True');
    d.observe(bad(), T0);
    d.observe(bad(), T0);
    d.observe(notRun, T0);
    expect(d.snapshot().failures).toBe(2);
    expect(d.observe(bad(), T0)?.status).toBe('False');
  });

  it('unknown results do not reset a run of successes either', () => {
    const d = new Debouncer(spec({}, { successThreshold: 2 }), { status: 'False', reason: 'ProbeFailed' }, T0);
    d.observe(ok(), T0);
    expect(d.observe(notRun, T0)?.status).toBe('False');
    expect(d.observe(ok(), T0)?.status).toBe('True');
  });

  it('an operator-side network failure (couldNotLook) still counts: the failsafe, not the debouncer, holds those', () => {
    const d = new Debouncer(spec(), { status: 'True' }, T0);
    const unreachable = { ...bad('TCP connect 127.0.0.1:5432: host unreachable'), couldNotLook: true };
    for (let i = 0; i < 3; i++) d.observe(unreachable, T0);
    expect(d.desired(T0)?.status).toBe('False');
  });
});

describe('Debouncer.interrupt', () => {
  it('restarts the run of failures: failures before and after a gap do not add up to a flip', () => {
    const d = new Debouncer({ probe: { failureThreshold: 2 } }, { status: 'True' }, 0);
    const fail = { outcome: 'failure' as const, couldNotLook: false, message: 'refused', durationMs: 1 };
    expect(d.observe(fail, 1)?.status).toBe('True');
    d.interrupt();
    expect(d.observe(fail, 2)?.status).toBe('True');
    expect(d.observe(fail, 3)?.status).toBe('False');
  });

  it('keeps the status it had', () => {
    const d = new Debouncer({ probe: { failureThreshold: 1 } }, { status: 'False', reason: 'ProbeFailed' }, 0);
    d.interrupt();
    expect(d.desired(1)?.status).toBe('False');
  });
});
