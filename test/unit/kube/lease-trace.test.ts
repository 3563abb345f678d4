// Slow Lease calls are timed phase by phase from undici's diagnostics channels: here against a
// local server that answers a Lease path late.
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LeaseCallPhases, phasesOf, traceLeaseCalls } from '../../../src/kube/lease-trace.ts';

const LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/ns/leases/readygate';
let server: Server;
let origin: string;

beforeAll(async () => {
  // Answers after 150 ms, whatever the path.
  server = createServer((req, res) => {
    req.resume();
    setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'), 150);
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  origin = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('phasesOf', () => {
  it('splits a call into queued, answer and body, counting a phase not reached as 0', () => {
    const t = { method: 'PUT', path: LEASE_PATH, created: 1000, sent: 1600, answered: 1900 };
    expect(phasesOf(t, 2000)).toEqual({
      method: 'PUT',
      path: LEASE_PATH,
      queuedMs: 600,
      answerMs: 300,
      bodyMs: 100,
      totalMs: 1000,
    });
    // Aborted before its headers went out: all of it queued.
    expect(phasesOf({ method: 'PUT', path: LEASE_PATH, created: 1000 }, 3000, 'AbortError')).toMatchObject({
      queuedMs: 2000,
      answerMs: 0,
      bodyMs: 0,
      error: 'AbortError',
    });
  });
});

describe('traceLeaseCalls', () => {
  it('reports a Lease call slower than the threshold with its phases, and nothing of other paths', async () => {
    const slow: LeaseCallPhases[] = [];
    const stop = traceLeaseCalls(100, (p) => slow.push(p));
    try {
      const res = await request(`${origin}${LEASE_PATH}`, { method: 'PUT', body: '{}' });
      await res.body.text();
      const pods = await request(`${origin}/api/v1/namespaces/ns/pods`);
      await pods.body.text();
    } finally {
      stop();
    }
    expect(slow).toHaveLength(1);
    expect(slow[0]).toMatchObject({ method: 'PUT', path: LEASE_PATH });
    expect(slow[0]!.answerMs).toBeGreaterThanOrEqual(140);
    expect(slow[0]!.totalMs).toBeGreaterThanOrEqual(slow[0]!.answerMs);
    // Unsubscribed: a later slow call is not reported.
    const res = await request(`${origin}${LEASE_PATH}`);
    await res.body.text();
    expect(slow).toHaveLength(1);
  });

  it('reports a call aborted before it was answered, with the error', async () => {
    const slow: LeaseCallPhases[] = [];
    const stop = traceLeaseCalls(10, (p) => slow.push(p));
    try {
      await expect(request(`${origin}${LEASE_PATH}`, { signal: AbortSignal.timeout(50) })).rejects.toThrow();
    } finally {
      stop();
    }
    expect(slow).toHaveLength(1);
    // It waited for the answer until the abort: that is where its time went.
    expect(slow[0]).toMatchObject({ bodyMs: 0, error: 'TimeoutError' });
    expect(slow[0]!.answerMs).toBeGreaterThanOrEqual(30);
  });
});
