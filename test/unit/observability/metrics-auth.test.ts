// Authenticated /metrics: the decisions (no token 401, unknown token 401, not allowed 403,
// allowed 200, a failed review 500 and not cached), the bounded TTL cache, and the health server
// asking only for /metrics.
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from '../../../src/observability/health.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { bearerToken, metricsAuthorizer, type ReviewedUser } from '../../../src/observability/metrics-auth.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';

/** Reviews against a fixed table of tokens → users, and users allowed /metrics; counts the calls. */
function reviews(opts: { failing?: boolean } = {}) {
  const tokens: Record<string, ReviewedUser> = {
    reader: { username: 'system:serviceaccount:mon:prometheus' },
    other: { username: 'system:serviceaccount:shop:app' },
  };
  const calls = { authenticate: 0, authorize: 0 };
  return {
    calls,
    authenticate: async (token: string) => {
      calls.authenticate++;
      if (opts.failing) throw new Error('API server down');
      return tokens[token];
    },
    authorize: async (user: ReviewedUser, path: string) => {
      calls.authorize++;
      return path === '/metrics' && user.username === 'system:serviceaccount:mon:prometheus';
    },
  };
}

describe('metrics authorizer', () => {
  it('reads only a well-formed bearer token', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic dXNlcg==')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('answers 401 without or with an unknown token, 403 when not allowed, 200 when allowed', async () => {
    const r = reviews();
    const check = metricsAuthorizer({ ...r, clock: new FakeClock(0) });
    expect((await check(undefined, '/metrics')).status).toBe(401);
    expect((await check('Bearer nobody', '/metrics')).status).toBe(401);
    expect(await check('Bearer other', '/metrics')).toEqual({
      status: 403,
      message: 'Forbidden: user "system:serviceaccount:shop:app" may not get path "/metrics"',
    });
    expect((await check('Bearer reader', '/metrics')).status).toBe(200);
    // No review for a request without a token.
    expect(r.calls.authenticate).toBe(3);
  });

  it('reuses a decision for the TTL, then asks again', async () => {
    const r = reviews();
    const clock = new FakeClock(0);
    const check = metricsAuthorizer({ ...r, clock, ttlMs: 10_000 });
    for (let i = 0; i < 5; i++) expect((await check('Bearer reader', '/metrics')).status).toBe(200);
    expect(r.calls).toEqual({ authenticate: 1, authorize: 1 });
    clock.advance(10_000);
    expect((await check('Bearer reader', '/metrics')).status).toBe(200);
    expect(r.calls).toEqual({ authenticate: 2, authorize: 2 });
  });

  it('keeps at most maxEntries decisions, dropping the oldest', async () => {
    const r = reviews();
    const check = metricsAuthorizer({ ...r, clock: new FakeClock(0), maxEntries: 2 });
    await check('Bearer reader', '/metrics');
    await check('Bearer other', '/metrics');
    await check('Bearer nobody', '/metrics'); // evicts reader
    await check('Bearer other', '/metrics'); // still cached
    expect(r.calls.authenticate).toBe(3);
    await check('Bearer reader', '/metrics');
    expect(r.calls.authenticate).toBe(4);
  });

  it('answers 500 when a review fails, and does not cache it', async () => {
    const r = reviews({ failing: true });
    const check = metricsAuthorizer({ ...r, clock: new FakeClock(0) });
    expect((await check('Bearer reader', '/metrics')).status).toBe(500);
    expect((await check('Bearer reader', '/metrics')).status).toBe(500);
    expect(r.calls.authenticate).toBe(2);
  });
});

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function get(url: string, token?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const req = request(url, { agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('health server with authenticated /metrics', () => {
  it('guards /metrics only; /healthz and /readyz stay open for the kubelet', async () => {
    const check = metricsAuthorizer({ ...reviews(), clock: new FakeClock(0) });
    const server = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      ready: () => true,
      registry: createMetrics({ defaultMetrics: false }).registry,
      authorizeMetrics: check,
    });
    servers.push(server);
    const none = await get(`${server.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await get(`${server.url}/metrics`, 'other')).status).toBe(403);
    expect((await get(`${server.url}/metrics`, 'reader')).status).toBe(200);
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
  });
});
