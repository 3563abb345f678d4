// Classifies socket errors into "the pod failed" vs "the operator could not look".
import { isIPv6 } from 'node:net';

// Errors that describe the operator's own network or resources, not the pod: the failsafe
// must count them, because a partitioned or starved operator sees them for every pod at once.
const COULD_NOT_LOOK = new Set([
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
  'ETIMEDOUT',
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ENOMEM',
]);

const DESCRIPTIONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'broken pipe',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

export interface ClassifiedError {
  couldNotLook: boolean;
  /** Short, body-free description such as "connection refused" or "ECONNABORTED: ...". */
  text: string;
}

/** Maps a Node.js socket/TLS error to a short description and whether it is operator-side. */
export function classifyNetError(err: unknown): ClassifiedError {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    const text = DESCRIPTIONS[code] ?? `${code}: ${firstLine(err)}`;
    return { couldNotLook: COULD_NOT_LOOK.has(code), text };
  }
  return { couldNotLook: false, text: firstLine(err) };
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const line = msg.split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Formats host:port, bracketing IPv6 literals as URLs and Go's net.JoinHostPort do. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Formats a timeout in the unit users wrote it in (seconds when whole). */
export function formatTimeout(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
