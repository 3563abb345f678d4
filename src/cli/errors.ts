// API and connection failures in the words kubectl uses, so that a user who knows one knows the
// other: `Error from server (NotFound): pods "web-1" not found` from the API server's Status
// body, `Unable to connect to the server: ...` when no answer came. client-node 2.x's
// ApiException message dumps the status line, body and headers; it is never shown. Duck-typed
// (no client-node import) so that src/cli/main.ts can load it without slowing `--help`.

// The reason kubectl shows for a status code when the body is not a Status (a proxy's HTML page,
// an empty 401), as in apimachinery's NewGenericServerResponse.
const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/**
 * The HTTP status of an ApiException. A DOMException (an aborted or timed-out request) has a
 * numeric code too, a small one: only 100-599 counts.
 */
function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code >= 100 && code <= 599 ? code : undefined;
}

/** The parts of a metav1.Status the message is made of. */
interface Status {
  kind?: unknown;
  reason?: unknown;
  message?: unknown;
}

function statusOf(body: unknown): Status | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  // A Status has kind Status; a body with a message of its own is taken as one too.
  if (value === null || typeof value !== 'object') return undefined;
  const status = value as Status;
  return status.kind === 'Status' || typeof status.message === 'string' ? status : undefined;
}

/** `Error from server (Reason): message` for an answer outside 2xx; undefined for anything else. */
export function serverError(err: unknown): string | undefined {
  const code = httpStatus(err);
  if (code === undefined) return undefined;
  const body = (err as { body?: unknown }).body;
  const status = statusOf(body);
  const reason = typeof status?.reason === 'string' && status.reason !== '' ? status.reason : REASONS[code];
  if (code === 401 && !status) return 'error: You must be logged in to the server (Unauthorized)';
  const message =
    typeof status?.message === 'string' && status.message !== ''
      ? status.message
      : `the server responded with the status code ${code}${bodyHint(body)}`;
  return reason ? `Error from server (${reason}): ${message}` : `Error from server: ${message}`;
}

/** The start of a body that is not a Status, quoted, since it is all there is to go on. */
function bodyHint(body: unknown): string {
  if (typeof body !== 'string' || body.trim() === '') return '';
  const text = body.trim();
  return ` (${JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text)})`;
}

// Node's and undici's codes for a connection that failed, in the words of Go's net package
// (what kubectl prints); TLS verification failures as crypto/x509 words them.
const DIAL: Record<string, string> = {
  ECONNREFUSED: 'connect: connection refused',
  ECONNRESET: 'read: connection reset by peer',
  EHOSTUNREACH: 'connect: no route to host',
  ENETUNREACH: 'connect: network is unreachable',
  ETIMEDOUT: 'i/o timeout',
  UND_ERR_CONNECT_TIMEOUT: 'i/o timeout',
  UND_ERR_SOCKET: 'the server closed the connection',
  EPIPE: 'write: broken pipe',
};
const X509: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate signed by unknown authority',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate signed by unknown authority',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate signed by unknown authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate signed by unknown authority',
  CERT_HAS_EXPIRED: 'certificate has expired or is not yet valid',
  CERT_NOT_YET_VALID: 'certificate has expired or is not yet valid',
  ERR_TLS_CERT_ALTNAME_INVALID: "certificate is not valid for the server's name",
};

interface NetError {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  message?: unknown;
  name?: unknown;
}

/**
 * The error that says what happened to the connection: fetch wraps it in `TypeError: fetch
 * failed` (its cause), and a dual-stack connect in an AggregateError (its errors). Bounded.
 */
function rootCause(err: unknown): NetError | undefined {
  let e = err as (NetError & { cause?: unknown; errors?: unknown }) | null | undefined;
  for (let depth = 0; depth < 8 && e && typeof e === 'object'; depth++) {
    if (typeof e.code === 'string') return e;
    const next: unknown = e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined);
    if (next === undefined) break;
    e = next as typeof e;
  }
  return e && typeof e === 'object' ? e : undefined;
}

/** `Unable to connect to the server: ...` for a request that got no answer; undefined for anything else. */
export function connectError(err: unknown): string | undefined {
  if (httpStatus(err) !== undefined) return undefined;
  const e = rootCause(err);
  if (!e) return undefined;
  const code = typeof e.code === 'string' ? e.code : '';
  const where = typeof e.address === 'string' && typeof e.port === 'number' ? ` ${e.address}:${e.port}` : '';
  let what: string | undefined;
  if (DIAL[code]) what = `dial tcp${where}: ${DIAL[code]}`;
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    what = `dial tcp: lookup ${typeof e.hostname === 'string' ? e.hostname : 'the server'}: no such host`;
  else if (X509[code]) what = `tls: failed to verify certificate: x509: ${X509[code]}`;
  else if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/.test(String(e.message)))
    what = 'the server does not speak TLS (is the kubeconfig server an https:// URL of a plain HTTP port?)';
  else if (e.name === 'TimeoutError') what = 'the server did not answer in time (request timed out)';
  return what ? `Unable to connect to the server: ${what}` : undefined;
}

/** The kubectl-style line for an API or connection failure; undefined when it is neither. */
export function kubectlError(err: unknown): string | undefined {
  return serverError(err) ?? connectError(err);
}

/**
 * src/kube/errors.ts's KubeconfigError, told by its name: importing it would load src/kube/ on
 * every start of the command line.
 */
export const isKubeconfigError = (err: unknown): err is Error => err instanceof Error && err.name === 'KubeconfigError';
