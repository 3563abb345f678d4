import { describe, expect, it } from 'vitest';
import { EXIT } from '../../../src/cli/exit.ts';
import { runUntilStopped } from '../../../src/cli/run.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { Manager, type Runnable } from '../../../src/runtime/manager.ts';
import { captureLog } from '../../support/log-capture.ts';

// `readygate run` as the process sees it: the operator's run() under the exit deadline, with a
// fake clock. The operator is a Manager plus whatever run() does after it (health server, probes).

const cooperative: Runnable = {
  start: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
};
const stuck: Runnable = { start: () => new Promise(() => {}) };
const never = new Promise<void>(() => {});

function setup(runnables: Record<string, Runnable>, afterManager: () => Promise<void> = async () => {}) {
  const clock = new FakeClock(0);
  const manager = new Manager({ clock, gracePeriodMs: 10_000 });
  for (const [name, r] of Object.entries(runnables)) manager.add(r, name);
  const { lines, destination } = captureLog();
  const exits: Array<[number, number]> = [];
  const run = async () => {
    try {
      await manager.start();
    } finally {
      await afterManager();
    }
  };
  const done = runUntilStopped(
    { manager, run },
    {
      gracePeriodMs: 10_000,
      log: createLogger({ level: 'info', destination }),
      exit: (code) => exits.push([clock.now(), code]),
      clock,
    },
  );
  return { clock, manager, lines, exits, done };
}

describe('readygate run: the process ends in time once shutdown begins', () => {
  it('exits 0 as soon as the operator stopped, leaving no timer behind', async () => {
    const { clock, manager, exits, done } = setup({ controllers: cooperative });
    await clock.runDue();
    await clock.tick(3_000);
    void manager.stop();
    await clock.runDue();
    expect(await done).toBe(EXIT.ok);
    expect(exits).toEqual([[3_000, EXIT.ok]]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('exits non-zero at the grace period when a runnable does not stop, naming it', async () => {
    const { clock, manager, lines, exits, done } = setup({ controllers: stuck, informers: cooperative });
    await clock.runDue();
    void manager.stop();
    await clock.tick(9_999);
    expect(exits).toEqual([]);
    await clock.tick(1);
    expect(await done).toBe(EXIT.failed);
    expect(exits).toEqual([[10_000, EXIT.failed]]);
    const failure = lines.find((l) => l.msg === 'operator stopped with an error');
    expect(String(failure?.err)).toContain('grace period: controllers');
  });

  it('exits non-zero at grace + margin when what follows the manager never returns, naming what still runs', async () => {
    const { clock, manager, lines, exits } = setup({ controllers: stuck }, () => never);
    await clock.runDue();
    void manager.stop();
    await clock.tick(14_999);
    expect(exits).toEqual([]);
    await clock.tick(1);
    expect(exits).toEqual([[15_000, 1]]);
    expect(lines.at(-1)).toMatchObject({
      msg: 'shutdown did not finish within its deadline; exiting',
      runnables: ['controllers'],
    });
    expect(lines.at(-1)?.openHandles).toBeTypeOf('object');
  });

  it('the deadline also starts when the manager stops on its own (a runnable failed)', async () => {
    let fail: () => void = () => {};
    const failing: Runnable = { start: () => new Promise((_, reject) => (fail = () => reject(new Error('boom')))) };
    const { clock, exits } = setup({ failing, controllers: cooperative }, () => never);
    await clock.runDue();
    await clock.tick(60_000); // running normally: no deadline
    fail();
    await clock.runDue();
    await clock.tick(15_000);
    expect(exits).toEqual([[75_000, 1]]);
  });
});
