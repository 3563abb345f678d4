// Port resolution and the runProbe dispatcher (handler choice, named ports, per-pod IP).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePort } from '../../../src/probes/ports.ts';
import { longestRunMs, type PodLike, runProbe } from '../../../src/probes/probe.ts';
import type { PodContainer } from '../../../src/probes/types.ts';
import { type Running, startHttp, startRaw } from './support/servers.ts';

const containers: PodContainer[] = [
  {
    name: 'app',
    ports: [
      { name: 'http', containerPort: 8080 },
      { name: 'dns', containerPort: 53, protocol: 'UDP' },
    ],
  },
  { name: 'sidecar', ports: [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }] },
];

describe('resolvePort', () => {
  it.each([
    [8080, { ok: true, port: 8080 }],
    ['http', { ok: true, port: 8080 }],
    ['metrics', { ok: true, port: 9090 }],
    ['8443', { ok: true, port: 8443 }],
    ['grpc', { ok: false, message: 'named port "grpc" not found in any container of the pod' }],
    ['dns', { ok: false, message: 'named port "dns" is UDP, not TCP' }],
    [0, { ok: false, message: 'invalid port number: 0' }],
    [70000, { ok: false, message: 'invalid port number: 70000' }],
  ] as const)('%s → %j', (port, expected) => {
    expect(resolvePort(port, containers)).toEqual(expected);
  });
});

describe('runProbe', () => {
  let http: Running;
  let tcp: Running;
  const pod = (port: number, ip = '127.0.0.1'): PodLike => ({
    metadata: { name: 'web-0', namespace: 'shop' },
    spec: { containers: [{ name: 'app', ports: [{ name: 'web', containerPort: port }] }] },
    status: { podIP: ip },
  });
  beforeAll(async () => {
    http = await startHttp('127.0.0.1', (req, res) => res.writeHead(req.url === '/ready' ? 200 : 503).end());
    tcp = await startRaw('127.0.0.2', () => {});
  });
  afterAll(async () => {
    await Promise.all([http.close(), tcp.close()]);
  });

  it('runs httpGet against the pod IP with a named port', async () => {
    const r = await runProbe({ probe: { httpGet: { port: 'web', path: '/ready' } }, pod: pod(http.port) });
    expect(r).toMatchObject({ outcome: 'success', message: `HTTP GET http://127.0.0.1:${http.port}/ready: 200` });
  });

  it('reuses the compiled prober for the same spec object', async () => {
    const probe = { httpGet: { port: 'web', path: '/nope' } };
    expect((await runProbe({ probe, pod: pod(http.port) })).message).toContain(': 503');
    expect((await runProbe({ probe, pod: pod(http.port) })).message).toContain(': 503');
  });

  it('runs tcpSocket', async () => {
    const r = await runProbe({ probe: { tcpSocket: { port: tcp.port } }, pod: pod(1, '127.0.0.2') });
    expect(r.outcome).toBe('success');
  });

  it('fails clearly on a missing named port, a pod without IP, a bad spec, or exec without KubeConfig', async () => {
    expect((await runProbe({ probe: { tcpSocket: { port: 'grpc' } }, pod: pod(1) })).message).toBe(
      'named port "grpc" not found in any container of the pod',
    );
    expect((await runProbe({ probe: { tcpSocket: { port: 1 } }, pod: { spec: { containers: [] } } })).message).toBe(
      'pod has no IP yet',
    );
    const hostHeader = { httpGet: { port: 1, httpHeaders: [{ name: 'Host', value: 'x' }] } };
    expect((await runProbe({ probe: hostHeader, pod: pod(1) })).message).toMatch(/Host header is not allowed/);
    expect((await runProbe({ probe: { exec: { command: ['true'] } }, pod: pod(1) })).message).toBe(
      'exec probe needs a KubeConfig',
    );
    expect((await runProbe({ probe: {}, pod: pod(1) })).outcome).toBe('failure');
  });

  it('does not start when the signal is already aborted', async () => {
    const r = await runProbe({
      probe: { tcpSocket: { port: tcp.port } },
      pod: pod(1, '127.0.0.2'),
      signal: AbortSignal.abort(),
    });
    expect(r.message).toBe('probe cancelled');
  });
});

describe('longestRunMs (the scheduler abandons a run only past it)', () => {
  it('exec: the session opening, then the command, timeoutSeconds each', () => {
    expect(longestRunMs({ exec: { command: ['true'] }, timeoutSeconds: 2 })).toBe(4000);
    expect(longestRunMs({ exec: { command: ['true'] } })).toBe(2000);
  });
  it('network probes: timeoutSeconds', () => {
    expect(longestRunMs({ timeoutSeconds: 3 })).toBe(3000);
    expect(longestRunMs({})).toBe(1000);
  });
});
