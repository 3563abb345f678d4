// The Lease clients over a local stand-in for the API server: every call is reported with its verb,
// result and duration, which readygate_lease_request_duration_seconds exports.
import { createServer, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LeaseCallObserver, restLeaseClient, restLeaseSetClient } from '../../../src/kube/lease.ts';
import { createMetrics, leaseCallMetrics } from '../../../src/observability/metrics.ts';

const NS = 'readygate-system';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
const lease = (name: string) => ({ metadata: { name, namespace: NS }, spec: { holderIdentity: 'a' } });

let server: Server;
let kc: KubeConfig;

// GET of `missing` 404s, PUT of `taken` 409s, GET of `slow` never answers; the rest succeed.
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    const json = (code: number, body: unknown) =>
      res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    const url = req.url ?? '';
    if (url.endsWith('/slow')) return; // hangs until the caller aborts
    if (req.method === 'GET' && url.endsWith('/missing')) return json(404, { kind: 'Status', reason: 'NotFound' });
    if (req.method === 'PUT' && url.endsWith('/taken')) return json(409, { kind: 'Status', reason: 'Conflict' });
    if (req.method === 'GET' && url.startsWith(`${LEASES}?`)) return json(200, { items: [lease('x')] });
    return json(req.method === 'POST' ? 201 : 200, lease('x'));
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 't', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'token' }],
    contexts: [{ name: 't', cluster: 't', user: 'u' }],
    currentContext: 't',
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('Lease calls are observed', () => {
  it('reports each call with its verb and result, and still answers and throws as before', async () => {
    const seen: Array<[string, string]> = [];
    const observe: LeaseCallObserver = (verb, result, seconds) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      seen.push([verb, result]);
    };
    const set = restLeaseSetClient(kc, NS, observe);
    const signal = () => AbortSignal.timeout(5_000);
    expect(await set.list('readygate.dev/shard-bucket', signal())).toHaveLength(1);
    await set.create(lease('new'), signal());
    await expect(set.update(lease('taken'), signal())).rejects.toMatchObject({ code: 409 });
    const one = restLeaseClient(kc, NS, 'missing', observe);
    expect(await one.get(signal())).toBeUndefined();
    const slow = restLeaseClient(kc, NS, 'slow', observe);
    await expect(slow.get(AbortSignal.timeout(50))).rejects.toThrow();
    expect(seen).toEqual([
      ['list', 'ok'],
      ['create', 'ok'],
      ['update', 'conflict'],
      ['get', 'notfound'],
      ['get', 'aborted'],
    ]);
  });

  it('into readygate_lease_request_duration_seconds', async () => {
    const metrics = createMetrics();
    const set = restLeaseSetClient(kc, NS, leaseCallMetrics(metrics));
    await set.update(lease('x'), AbortSignal.timeout(5_000));
    await expect(set.update(lease('taken'), AbortSignal.timeout(5_000))).rejects.toMatchObject({ code: 409 });
    const text = await metrics.registry.metrics();
    expect(text).toContain('readygate_lease_request_duration_seconds_count{verb="update",result="ok"} 1');
    expect(text).toContain('readygate_lease_request_duration_seconds_count{verb="update",result="conflict"} 1');
  });
});
