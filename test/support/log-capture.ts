// A pino destination that keeps every JSON log line as an object, for tests that assert on logs.
import { Writable } from 'node:stream';

/** The parsed lines and the destination to give createLogger. */
export function captureLog(): { lines: Array<Record<string, unknown>>; destination: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, destination };
}
