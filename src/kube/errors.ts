// Classifies client-node errors by the API server's status code.

/**
 * The HTTP status of a client-node ApiException, or undefined for transport errors. A
 * DOMException (an aborted or timed-out call) has a numeric code too: 20 or 23, never an HTTP status.
 */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' && code >= 100 && code <= 599 ? code : undefined;
}

export const isNotFound = (err: unknown) => statusCode(err) === 404;
export const isConflict = (err: unknown) => statusCode(err) === 409;

/** A one-line description of an API error without its response body dump. */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  const body = (err as { body?: unknown })?.body;
  if (code !== undefined) {
    let message = '';
    if (typeof body === 'string') {
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? '';
      } catch {
        message = body.slice(0, 200);
      }
    }
    return `HTTP ${code}${message ? `: ${message}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * No kubeconfig could be found or read. Its message is meant for the user as is; the command line
 * prints it after `error: ` and exits with the code of an unreachable cluster.
 */
export class KubeconfigError extends Error {
  override name = 'KubeconfigError';
}
