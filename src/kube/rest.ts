// A plain JSON request to the API server on client-node's credentials and connection pool, for
// the hot paths where client-node's typed calls cost more than they give: their responses are
// turned into model objects (Dates, class instances) that the operator then throws away or
// converts back. Measured at 10,000 pods: the pod status patches' typed responses were ~240 MiB
// of garbage in a 50 s start-up. Errors are client-node's ApiException, so callers classify
// them as they do any API error.
import { ApiException, HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { fetch } from 'undici';

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

/** Sends the request and returns the response text of a 2xx answer; throws ApiException otherwise. */
export async function rest(kc: KubeConfig, req: RestRequest): Promise<string> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(server + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod[req.method]);
  await kc.applySecurityAuthentication(ctx);
  const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: 'application/json' };
  if (req.body !== undefined) headers['Content-Type'] = req.contentType ?? 'application/json';
  const res = await fetch(url, {
    method: req.method,
    headers,
    body: req.body === undefined ? undefined : JSON.stringify(req.body),
    dispatcher: ctx.getDispatcher(),
    signal: req.signal,
  });
  const text = await res.text();
  if (res.status < 200 || res.status > 299) {
    throw new ApiException(res.status, `${req.method} ${req.path}`, text, Object.fromEntries(res.headers));
  }
  return text;
}
