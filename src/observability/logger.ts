import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

// Structured JSON logs on stdout, one line per record, as Kubernetes log collectors expect.

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** fatal | error | warn | info | debug | trace | silent. Default info. */
  level?: string;
  /** Where lines go; default stdout. Tests pass an in-memory stream. */
  destination?: DestinationStream;
}

const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** True if `level` is a level createLogger accepts (for validating a --log-level flag). */
export function isLogLevel(level: string): level is LevelWithSilent {
  return LEVELS.includes(level);
}

/** Creates the root logger: JSON to stdout, `name: "readygate"` on every line, ISO timestamps, level names. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!isLogLevel(level)) throw new Error(`unknown log level "${level}" (expected one of ${LEVELS.join(', ')})`);
  return pino(
    {
      level,
      // No pid/hostname: the pod name already says both.
      base: { name: 'readygate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names instead of numbers, readable without pino-pretty.
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination,
  );
}

/** Returns a child logger whose lines carry `component` (e.g. "manager", "probes"). */
export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ component });
}
