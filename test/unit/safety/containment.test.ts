// The containment rule (src/safety/containment.ts): a crashed probe run becomes a failure of our own.
import { describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../../src/probes/types.ts';
import {
  CrashLogLimiter,
  contain,
  crashResult,
  isProbeResult,
  type ProbeCrash,
} from '../../../src/safety/containment.ts';
import { Failsafe } from '../../../src/safety/failsafe.ts';

const OK: ProbeResult = {
  outcome: 'success',
  couldNotLook: false,
  message: 'TCP connect 10.0.0.1:80: ok', // a message only; nothing is probed
  durationMs: 3,
};
const HOSTILE = `Unexpected token \u001b]0;pwned\u0007 in JSON at position 0 ${'x'.repeat(5000)}`;

async function run(fn: () => Promise<ProbeResult>) {
  const crashes: ProbeCrash[] = [];
  const result = await contain(
    fn,
    (c) => crashes.push(c),
    () => 42,
  );
  return { result, crashes };
}

describe('contain', () => {
  it('passes a ProbeResult through untouched, reporting nothing', async () => {
    const { result, crashes } = await run(() => Promise.resolve(OK));
    expect(result).toBe(OK);
    expect(crashes).toEqual([]);
  });

  it('a synchronous throw → failure, could not look, with the class name only', async () => {
    const error = new SyntaxError(HOSTILE);
    const { result, crashes } = await run(() => {
      throw error;
    });
    expect(result).toEqual({
      outcome: 'failure',
      couldNotLook: true,
      message: 'probe crashed inside readygate (SyntaxError); see the operator log',
      durationMs: 42,
    });
    expect(crashes).toEqual([{ kind: 'threw', error }]);
  });

  it('a rejection → the same failure; the reason reaches onCrash, never the message', async () => {
    const error = new Error(HOSTILE);
    const { result, crashes } = await run(() => Promise.reject(error));
    expect(result.message).toBe('probe crashed inside readygate (Error); see the operator log');
    expect(crashes).toEqual([{ kind: 'rejected', error }]);
  });

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a string', HOSTILE],
    ['an array', [OK]],
    ['an unknown outcome', { ...OK, outcome: 'great' }],
    ['a message that is not a string', { ...OK, message: { text: HOSTILE } }],
    ['couldNotLook not a boolean', { ...OK, couldNotLook: 'no' }],
    ['a warning that is not a string', { ...OK, warning: 1 }],
  ])('resolving with %s → invalid-result crash', async (_name, value) => {
    const { result, crashes } = await run(() => Promise.resolve(value as ProbeResult));
    expect(result).toMatchObject({ outcome: 'failure', couldNotLook: true });
    expect(result.message).toBe('probe crashed inside readygate; see the operator log');
    expect(crashes).toHaveLength(1);
    expect(crashes[0]!.kind).toBe('invalid-result');
    expect(String(crashes[0]!.error)).not.toContain('pwned');
  });

  it('thrown values that are not errors, or whose name is not a class name, give the plain phrase', async () => {
    const odd: unknown[] = [
      'text',
      42,
      undefined,
      Object.assign(new Error('x'), { name: HOSTILE }),
      Object.assign(new Error('x'), { name: 'lower' }),
      Object.assign(new Error('x'), { name: 'A'.repeat(41) }),
      Object.defineProperty(new Error('x'), 'name', {
        get() {
          throw new Error('getter');
        },
      }),
    ];
    for (const error of odd) {
      const { result } = await run(() => Promise.reject(error));
      expect(result.message).toBe('probe crashed inside readygate; see the operator log');
    }
  });

  it('never rejects, even when onCrash or the clock throw', async () => {
    const result = await contain(
      () => Promise.reject(new Error('probe')),
      () => {
        throw new Error('logger down');
      },
      () => {
        throw new Error('clock');
      },
    );
    expect(result).toMatchObject({ outcome: 'failure', couldNotLook: true, durationMs: 0 });
  });

  it('a non-finite elapsed time is reported as 0', async () => {
    const result = await contain(
      () => Promise.reject(new Error('x')),
      () => {},
      () => Number.NaN,
    );
    expect(result.durationMs).toBe(0);
  });
});

describe('crashResult and isProbeResult', () => {
  it('messages are short and free of control characters whatever the error', () => {
    const m = crashResult({ kind: 'threw', error: new TypeError(HOSTILE) }, 1).message;
    expect(m.length).toBeLessThan(120);
    expect(m).not.toMatch(/\p{Cc}/u);
  });

  it('accepts what the probers return and rejects near misses', () => {
    expect(isProbeResult(OK)).toBe(true);
    expect(isProbeResult({ outcome: 'unknown', couldNotLook: true, message: '' })).toBe(true);
    expect(isProbeResult({ ...OK, warning: 'redirect not followed' })).toBe(true);
    expect(isProbeResult({ ...OK, durationMs: '3' })).toBe(false);
    expect(isProbeResult({ outcome: 'success', message: 'm' })).toBe(false);
  });
});

describe('CrashLogLimiter', () => {
  it('lets `burst` lines through per window, then counts the rest and reports them with the next line', () => {
    const l = new CrashLogLimiter(2, 1000);
    expect(l.admit(0)).toEqual({ log: true, suppressed: 0 });
    expect(l.admit(1)).toEqual({ log: true, suppressed: 0 });
    expect(l.admit(2)).toEqual({ log: false });
    expect(l.admit(999)).toEqual({ log: false });
    expect(l.admit(1000)).toEqual({ log: true, suppressed: 2 });
    expect(l.admit(1001)).toEqual({ log: true, suppressed: 0 });
  });

  it('refuses bad limits with a clear error', () => {
    expect(() => new CrashLogLimiter(0)).toThrow(/burst must be an integer >= 1/);
    expect(() => new CrashLogLimiter(1, 0)).toThrow(/windowMs must be > 0/);
  });
});

describe('crash results and the failsafe (why couldNotLook is true)', () => {
  const limits = { windowMs: 30_000, maxUnavailable: '50%', targets: 20 };
  const crash = crashResult({ kind: 'threw', error: new TypeError('bug') }, 1);
  const setup = () => {
    const f = new Failsafe();
    f.addPolicy('shop/web', [], 0, limits);
    for (let i = 0; i < 20; i++) f.addTarget(`t${i}`);
    return f;
  };

  it('one crashing target among healthy ones is an observation and its flip is admitted', () => {
    const f = setup();
    for (let i = 1; i < 20; i++) f.observe(`t${i}`, false, 'shop/web');
    f.observe('t0', crash.couldNotLook, 'shop/web');
    expect(f.isObservation(crash.couldNotLook)).toBe(true);
    expect(f.requestFlip('shop/web', 't0', 1000).verdict).toEqual({ admit: true });
  });

  it('every target crashing (a readygate bug) makes the operator blind: flips are held, not counted', () => {
    const f = setup();
    for (let i = 0; i < 20; i++) f.observe(`t${i}`, crash.couldNotLook, 'shop/web');
    expect(f.blind()).toBe(true);
    expect(f.isObservation(crash.couldNotLook)).toBe(false);
    expect(f.requestFlip('shop/web', 't0', 1000).verdict).toEqual({ admit: false, reason: 'CouldNotLook' });
  });
});
