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
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate not trusted (self-signed)',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate not trusted (self-signed CA in chain)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate not trusted (unknown issuer)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate not trusted (unknown issuer)',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate does not name the server',
  // OpenSSL's words when the first bytes back are not a TLS record: a plain-text port.
  ERR_SSL_WRONG_VERSION_NUMBER: 'the port does not speak TLS',
};

// Node's and undici's error codes are constants such as ECONNRESET or ERR_TLS_CERT_ALTNAME_INVALID.
const CODE = /^[A-Z][A-Z0-9_]{1,63}$/;

export interface ClassifiedError {
  couldNotLook: boolean;
  /** A fixed description or an error code, such as "connection refused" or "ECONNABORTED". */
  text: string;
}

/**
 * Maps a Node.js socket/TLS error to a short description and whether it is operator-side. Only
 * the error's code is used, never its message: messages can quote what the peer sent (the
 * names in its certificate, bytes it answered with), and the text ends up in pod conditions.
 */
export function classifyNetError(err: unknown): ClassifiedError {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CODE.test(code)) return classifyErrorCode(code);
  // No code: the error's class says what went wrong (e.g. undici's HTTPParserError).
  const name = err instanceof Error ? err.name : '';
  return { couldNotLook: false, text: /^[A-Za-z]{1,40}$/.test(name) && name !== 'Error' ? name : 'network error' };
}

/** Classifies an error code such as ECONNREFUSED (see classifyNetError). */
export function classifyErrorCode(code: string): ClassifiedError {
  return { couldNotLook: COULD_NOT_LOOK.has(code), text: DESCRIPTIONS[code] ?? code };
}

/** Formats host:port, bracketing IPv6 literals as URLs and Go's net.JoinHostPort do. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Formats a timeout in the unit users wrote it in (seconds when whole). */
export function formatTimeout(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
