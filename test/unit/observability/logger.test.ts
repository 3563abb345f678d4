import { describe, expect, it } from 'vitest';
import { componentLogger, createLogger, isLogLevel } from '../../../src/observability/logger.ts';
import { captureLog } from '../../support/log-capture.ts';

const capture = captureLog;

describe('logger', () => {
  it('writes one JSON object per line with name, level name, ISO time and message', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', destination });
    log.info({ pod: 'ns/a' }, 'hello');
    log.debug('hidden');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ name: 'readygate', level: 'info', msg: 'hello', pod: 'ns/a' });
    expect(lines[0]?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[0]).not.toHaveProperty('pid');
  });

  it('child loggers carry their component and inherit the level', () => {
    const { lines, destination } = capture();
    const root = createLogger({ level: 'debug', destination });
    componentLogger(root, 'manager').debug('x');
    expect(lines[0]).toMatchObject({ name: 'readygate', component: 'manager', level: 'debug' });
  });

  it('serialises errors', () => {
    const { lines, destination } = capture();
    createLogger({ destination }).error({ err: new Error('boom') }, 'failed');
    expect(lines[0]).toMatchObject({ err: { type: 'Error', message: 'boom' } });
  });

  it('rejects an unknown level and accepts silent', () => {
    expect(() => createLogger({ level: 'verbose' })).toThrow(/unknown log level/);
    const { lines, destination } = capture();
    createLogger({ level: 'silent', destination }).error('nothing');
    expect(lines).toEqual([]);
    expect(isLogLevel('warn')).toBe(true);
    expect(isLogLevel('WARN')).toBe(false);
  });
});
