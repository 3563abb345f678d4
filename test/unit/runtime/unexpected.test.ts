// Errors no code caught (src/runtime/unexpected.ts): logged, counted, and the process keeps running.
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.ts';
import { handleUnexpectedErrors, type UnexpectedKind } from '../../../src/runtime/unexpected.ts';
import { captureLog } from '../../support/log-capture.ts';

function setup(now = () => 0) {
  const source = new EventEmitter();
  const { lines, destination } = captureLog();
  const counted: UnexpectedKind[] = [];
  const uninstall = handleUnexpectedErrors({
    log: createLogger({ destination }),
    count: (kind) => counted.push(kind),
    now,
    source,
  });
  return { source, lines, counted, uninstall };
}

describe('handleUnexpectedErrors', () => {
  it('counts and logs an uncaught exception and an unhandled rejection, with the stack', () => {
    const { source, lines, counted } = setup();
    source.emit('uncaughtException', new TypeError('boom'));
    source.emit('unhandledRejection', 'a reason that is not an Error');
    expect(counted).toEqual(['uncaughtException', 'unhandledRejection']);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'error',
        kind: 'uncaughtException',
        msg: 'unexpected error (a readygate bug); the operator keeps running',
        err: expect.objectContaining({
          type: 'TypeError',
          message: 'boom',
          stack: expect.stringContaining('TypeError: boom'),
        }),
      }),
      expect.objectContaining({ level: 'error', kind: 'unhandledRejection', err: 'a reason that is not an Error' }),
    ]);
  });

  it('logs at most 10 lines a minute but counts every error, then says how many lines it left out', () => {
    let now = 0;
    const { source, lines, counted } = setup(() => now);
    for (let i = 0; i < 25; i++) source.emit('uncaughtException', new Error(`e${i}`));
    expect(counted).toHaveLength(25);
    expect(lines).toHaveLength(10);
    now = 60_000;
    source.emit('uncaughtException', new Error('later'));
    expect(lines).toHaveLength(11);
    expect(lines[10]).toMatchObject({ suppressedLogs: 15 });
  });

  it('a failing metric or logger does not throw out of the listener', () => {
    const source = new EventEmitter();
    handleUnexpectedErrors({
      log: {
        error: () => {
          throw new Error('logger down');
        },
      } as never,
      count: () => {
        throw new Error('metric gone');
      },
      now: () => 0,
      source,
    });
    expect(() => source.emit('uncaughtException', new Error('x'))).not.toThrow();
  });

  it('the returned function removes both listeners', () => {
    const { source, uninstall } = setup();
    expect(source.listenerCount('uncaughtException')).toBe(1);
    expect(source.listenerCount('unhandledRejection')).toBe(1);
    uninstall();
    expect(source.listenerCount('uncaughtException')).toBe(0);
    expect(source.listenerCount('unhandledRejection')).toBe(0);
  });

  it('in a real process: a throw in a listener and a rejection nobody handles do not end it', async () => {
    const module = fileURLToPath(new URL('../../../src/runtime/unexpected.ts', import.meta.url));
    const script = `
      import { handleUnexpectedErrors } from ${JSON.stringify(module)};
      const counted = [];
      handleUnexpectedErrors({ log: { error: () => {} }, count: (k) => counted.push(k), now: () => Date.now() });
      setImmediate(() => { throw new Error('thrown in a callback'); });
      Promise.reject(new Error('nobody handles this'));
      const check = setInterval(() => {
        if (counted.length < 2) return;
        clearInterval(check);
        console.log(JSON.stringify(counted.sort()));
      }, 5);
    `;
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (err, out) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout: out }),
      ),
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(['uncaughtException', 'unhandledRejection']);
  });
});
