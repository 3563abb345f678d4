import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.ts';
import { FakeClock, RealClock } from '../../../src/runtime/clock.ts';
import { DEADLINE_EXIT_CODE, ExitDeadline, openHandles } from '../../../src/runtime/shutdown.ts';
import { captureLog } from '../../support/log-capture.ts';

function setup(pending: () => Record<string, unknown> = () => ({ runnables: ['controllers'] })) {
  const clock = new FakeClock(0);
  const { lines, destination } = captureLog();
  const exits: number[] = [];
  const deadline = new ExitDeadline({
    clock,
    limitMs: 15_000,
    exit: (code) => exits.push(code),
    logger: createLogger({ level: 'info', destination }),
    pending,
  });
  return { clock, lines, exits, deadline };
}

describe('ExitDeadline', () => {
  it('ends the process with 1 once the limit has passed since arm(), naming what was still running', async () => {
    const { clock, lines, exits, deadline } = setup();
    await clock.tick(60_000); // unarmed: nothing happens however long the operator runs
    deadline.arm();
    expect(deadline.armed()).toBe(true);
    await clock.tick(14_999);
    expect(exits).toEqual([]);
    await clock.tick(1);
    expect(exits).toEqual([DEADLINE_EXIT_CODE]);
    expect(DEADLINE_EXIT_CODE).not.toBe(0);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: 'shutdown did not finish within its deadline; exiting',
        limitMs: 15_000,
        runnables: ['controllers'],
      }),
    ]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('keeps the first deadline when armed again', async () => {
    const { clock, exits, deadline } = setup();
    deadline.arm();
    await clock.tick(10_000);
    deadline.arm(); // e.g. the signal, then the manager noticing it stops
    await clock.tick(5_000);
    expect(exits).toEqual([DEADLINE_EXIT_CODE]);
  });

  it('finish() ends the process at once with its code, and the deadline never fires after', async () => {
    const { clock, lines, exits, deadline } = setup();
    deadline.arm();
    await clock.tick(2_000);
    deadline.finish(0);
    expect(exits).toEqual([0]);
    expect(clock.pendingTimers()).toBe(0);
    await clock.tick(60_000);
    deadline.arm();
    deadline.finish(3);
    expect(exits).toEqual([0]);
    expect(lines).toEqual([]);
  });

  it('finish() without a shutdown (run failed at once) exits with its code', () => {
    const { exits, deadline } = setup();
    deadline.finish(1);
    expect(exits).toEqual([1]);
  });

  it('exits even when describing what is pending throws', async () => {
    const { clock, lines, exits, deadline } = setup(() => {
      throw new Error('no state');
    });
    deadline.arm();
    await clock.tick(15_000);
    expect(exits).toEqual([DEADLINE_EXIT_CODE]);
    expect(lines[0]).toMatchObject({ pendingError: 'Error: no state' });
  });

  it('refuses a negative limit', () => {
    const clock = new FakeClock(0);
    const make = () =>
      new ExitDeadline({
        clock,
        limitMs: -1,
        exit: () => {},
        logger: createLogger({ level: 'silent' }),
        pending: () => ({}),
      });
    expect(make).toThrow(/limitMs must be >= 0/);
  });

  it('on the real clock its timer never keeps the process alive', () => {
    const clock = new RealClock();
    const handle = clock.setTimeout(() => {}, 60_000, { unref: true }) as unknown as NodeJS.Timeout;
    expect(handle.hasRef()).toBe(false);
    clock.clearTimeout(handle as never);
    const ref = clock.setTimeout(() => {}, 60_000) as unknown as NodeJS.Timeout;
    expect(ref.hasRef()).toBe(true);
    clock.clearTimeout(ref as never);
  });

  it('openHandles counts what holds the event loop by kind', () => {
    const timer = setTimeout(() => {}, 60_000);
    try {
      expect(openHandles().Timeout).toBeGreaterThanOrEqual(1);
    } finally {
      clearTimeout(timer);
    }
  });
});
