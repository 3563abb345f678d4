import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

// Structured JSON logs on stdout, one line per record, as Kubernetes log collectors expect.

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** fatal | error | warn | info | debug | trace | silent. Default info. */
  level?: string;
  /** Where lines go; default stdout. Tests pass an in-memory stream. */
  destination?: DestinationStream;
  /** json (default) or text: `textLine` of each record, for people reading a terminal. */
  format?: 'json' | 'text';
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
    opts.format === 'text' ? textDestination(opts.destination ?? pino.destination(1)) : opts.destination,
  );
}

/** A destination that writes each JSON record pino gives it as `textLine`. */
function textDestination(out: DestinationStream): DestinationStream {
  return { write: (line: string) => out.write(textLine(line)) };
}

const PLAIN = /^[\w./:@+-]+$/;
/** JSON of v, with DEL and the C1 controls (which JSON leaves raw; 0x9b starts terminal escapes) escaped too. */
const quote = (v: unknown) =>
  (JSON.stringify(v) ?? String(v)).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
/** A value as text: bare when plain, else quoted. */
const show = (v: unknown) => (typeof v === 'string' && PLAIN.test(v) ? v : quote(v));
/** True unless the message holds a control character (C0, DEL or C1). */
const printable = (s: string) => [...s].every((c) => c >= ' ' && (c < '\u007f' || c > '\u009f'));

/**
 * One JSON log record as `time LEVEL [component] msg key=value ...`. The message and values come
 * from the cluster too: a message with a control character and any value but a plain word are
 * quoted, so no record spans lines or carries terminal escapes. A line that is not JSON is quoted.
 */
export function textLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `${quote(json.trimEnd())}\n`;
  }
  // name is always "readygate": the JSON format keeps it for collectors; text drops it.
  const { time, level, name, component, msg, ...fields } = rec;
  const head = [
    String(time ?? ''),
    String(level ?? '')
      .toUpperCase()
      .padEnd(5),
  ];
  if (component !== undefined) head.push(`[${show(component)}]`);
  if (msg !== undefined) head.push(typeof msg === 'string' && printable(msg) ? msg : quote(msg));
  const kv = Object.entries(fields).map(([k, v]) => `${k}=${show(v)}`);
  return `${[...head, ...kv].join(' ')}\n`;
}

/** Returns a child logger whose lines carry `component` (e.g. "manager", "probes"). */
export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ component });
}
