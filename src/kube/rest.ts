// A plain JSON request to the API server on client-node's credentials and connection pool, for
// the hot paths where client-node's typed calls cost more than they give: their responses are
// turned into model objects (Dates, class instances) that the operator then throws away or
// converts back. Measured at 10,000 pods: the pod status patches' typed responses were ~240 MiB
// of garbage in a 50 s start-up. Errors are client-node's ApiException, so callers classify
// them as they do any API error.
import { ApiException, HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { type Clock, realClock } from '../runtime/clock.ts';

export interface RestRequest {
  method: 'GET' | 'PATCH' | 'POST' | 'PUT';
  /** e.g. /api/v1/namespaces/ns/pods */
  path: string;
  query?: Record<string, string | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /** Content-Type of the body, e.g. application/strategic-merge-patch+json. */
  contentType?: string;
  signal?: AbortSignal;
}

/** The longest Retry-After honoured; a longer one is waited for this long, then retried. */
export const MAX_RETRY_AFTER_MS = 60_000;
/** Retries after a 429 with Retry-After, before the 429 is thrown to the caller's own backoff. */
export const MAX_THROTTLED_RETRIES = 5;

export interface RestDeps {
  /** Waits out Retry-After; default the real clock. */
  clock?: Clock;
}

/**
 * Sends the request and returns the response text of a 2xx answer; throws ApiException otherwise.
 * A 429 with Retry-After (API Priority and Fairness rejected the request before it was processed,
 * so even a PATCH is safe to resend) is retried after that delay, as client-go's rest client does:
 * at most MAX_RETRY_AFTER_MS per wait and MAX_THROTTLED_RETRIES times, and a wait ends with the
 * caller's signal (rejecting with its reason). A 429 without Retry-After is thrown at once.
 */
export async function rest(kc: KubeConfig, req: RestRequest, deps: RestDeps = {}): Promise<string> {
  const clock = deps.clock ?? realClock;
  for (let retries = 0; ; retries++) {
    const res = await send(kc, req);
    if (res.status >= 200 && res.status <= 299) return res.text;
    const waitMs =
      res.status === 429 && retries < MAX_THROTTLED_RETRIES
        ? retryAfterMs(res.headers['retry-after'], clock.now())
        : undefined;
    if (waitMs === undefined) throw new ApiException(res.status, `${req.method} ${req.path}`, res.text, res.headers);
    await clock.sleep(waitMs, req.signal);
  }
}

async function send(
  kc: KubeConfig,
  req: RestRequest,
): Promise<{ status: number; text: string; headers: Record<string, string> }> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(server + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod[req.method]);
  await kc.applySecurityAuthentication(ctx);
  const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: 'application/json' };
  if (req.body !== undefined) headers['Content-Type'] = req.contentType ?? 'application/json';
  // undici's request() rather than fetch(): fetch wraps every call in WHATWG Request, Response
  // and streams, 9 % of the operator's CPU (and its garbage) in a 30,000-pod start-up profile.
  const dispatcher = (ctx.getDispatcher() as Dispatcher | undefined) ?? getGlobalDispatcher();
  const res = await dispatcher.request({
    origin: url.origin,
    path: url.pathname + url.search,
    method: req.method,
    headers,
    body: req.body === undefined ? undefined : JSON.stringify(req.body),
    signal: req.signal,
  });
  return { status: res.statusCode, text: await res.body.text(), headers: flatHeaders(res.headers) };
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * Parses Retry-After (RFC 9110: delay-seconds or an HTTP-date) into a wait in milliseconds,
 * capped at MAX_RETRY_AFTER_MS; undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  const text = value?.trim() ?? '';
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else if (/[a-z]/i.test(text) && !Number.isNaN(Date.parse(text))) ms = Date.parse(text) - nowMs;
  else return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}
