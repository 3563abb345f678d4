import { request } from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from '../../../src/observability/health.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { turnsUntil } from '../../support/wait.ts';

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(opts: Partial<Parameters<typeof startHealthServer>[0]> = {}): Promise<HealthServer> {
  const server = await startHealthServer({ host: '127.0.0.1', port: 0, ready: () => true, ...opts });
  servers.push(server);
  return server;
}

// A plain node:http request with its own connection, so no pooled socket outlives the test.
function get(
  url: string,
  method = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('health server', () => {
  it('listens on the requested host with an ephemeral port', async () => {
    const server = await start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('answers /healthz 200 while healthy and 503 otherwise', async () => {
    let healthy = true;
    const server = await start({ healthy: () => healthy });
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
    healthy = false;
    expect((await get(`${server.url}/healthz`)).status).toBe(503);
  });

  it('answers /readyz from the injected ready()', async () => {
    let ready = false;
    const server = await start({ ready: () => ready });
    const before = await get(`${server.url}/readyz`);
    expect(before.status).toBe(503);
    expect(before.headers['cache-control']).toBe('no-store');
    ready = true;
    expect((await get(`${server.url}/readyz?verbose`)).status).toBe(200);
  });

  it('serves the registry on /metrics with its content type', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.leader.set(1);
    const server = await start({ registry: metrics.registry });
    const res = await get(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(metrics.registry.contentType);
    expect(res.body).toContain('readygate_leader 1');
  });

  it('answers 404 for unknown paths (and /metrics without a registry), 405 for other methods', async () => {
    const server = await start();
    expect((await get(`${server.url}/nope`)).status).toBe(404);
    expect((await get(`${server.url}/metrics`)).status).toBe(404);
    const post = await get(`${server.url}/healthz`, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await get(`${server.url}/healthz`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('answers 500 when the registry fails', async () => {
    const registry = new Registry();
    registry.metrics = () => Promise.reject(new Error('collector broke'));
    const server = await start({ registry });
    expect((await get(`${server.url}/metrics`)).status).toBe(500);
  });

  it('reports a port that is already taken', async () => {
    const first = await start();
    await expect(startHealthServer({ host: '127.0.0.1', port: first.port, ready: () => true })).rejects.toThrow(
      /EADDRINUSE/,
    );
  });

  it('close() lets an in-flight request finish, and cuts it after the grace period', async () => {
    const clock = new FakeClock(0);
    const registry = new Registry();
    let release: (text: string) => void = () => {};
    let scrapes = 0;
    registry.metrics = () =>
      new Promise<string>((resolve) => {
        scrapes++;
        release = resolve;
      });
    const server = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      ready: () => true,
      registry,
      clock,
      closeGraceMs: 1_000,
    });

    // Graceful: the slow scrape completes after close() began.
    const slow = get(`${server.url}/metrics`);
    await waitUntil(() => scrapes === 1);
    const closing = server.close();
    release('ok\n');
    expect((await slow).body).toBe('ok\n');
    await closing;

    // Bounded: a scrape that never ends is cut when the grace period expires.
    const server2 = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      ready: () => true,
      registry,
      clock,
      closeGraceMs: 1_000,
    });
    const hung = get(`${server2.url}/metrics`).catch((err: Error) => err);
    await waitUntil(() => scrapes === 2);
    const closing2 = server2.close();
    clock.advance(1_000);
    await closing2;
    expect(await hung).toBeInstanceOf(Error);
    release('too late\n');
  });
});

// Polls a condition across real I/O turns, with a deadline in time (no timing assumptions).
async function waitUntil(cond: () => boolean): Promise<void> {
  expect(await turnsUntil(cond)).toBe(true);
}
