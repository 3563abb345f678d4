import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { componentLogger, createLogger, isLogLevel, textLine } from '../../../src/observability/logger.ts';
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

  it('format text: one `time LEVEL [component] msg key=value` line per record, without name', () => {
    const out: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        out.push(String(chunk));
        cb();
      },
    });
    const root = createLogger({ level: 'info', destination, format: 'text' });
    componentLogger(root, 'pods').info({ pod: 'shop/a-1', attempt: 2, ok: true }, 'gate patched');
    root.warn('plain');
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}\[pods\] gate patched pod=shop\/a-1 attempt=2 ok=true\n$/,
    );
    expect(out[1]).toMatch(/Z WARN {2}plain\n$/);
  });

  it('textLine quotes what is not a plain word, so cluster text cannot break lines or drive a terminal', () => {
    const line = (rec: Record<string, unknown>) => textLine(JSON.stringify({ time: 't', level: 'error', ...rec }));
    expect(line({ msg: 'probe failed', reason: 'connection refused', err: { message: 'x' } })).toBe(
      't ERROR probe failed reason="connection refused" err={"message":"x"}\n',
    );
    expect(line({ msg: 'evil\nsecond line', msgC1: 'a\u009b31mb' })).toBe(
      't ERROR "evil\\nsecond line" msgC1="a\\u009b31mb"\n',
    );
    expect(line({ msg: 'bell\u0007' })).toBe('t ERROR "bell\\u0007"\n');
    expect(textLine('not json\u001b[2J')).toBe('"not json\\u001b[2J"\n');
    expect(line({ msg: 'x', name: 'readygate' })).toBe('t ERROR x\n');
  });
});
