// gRPC health probes against an in-test grpc-js Server that implements grpc.health.v1.Health
// with the same hand-written (de)serialisers.
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeGrpc } from '../../../src/probes/grpc.ts';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  encodeHealthCheckResponse,
} from '../../../src/probes/health-proto.ts';
import {
  type HostileServers,
  startHalfOpenRelay,
  startHostileServers,
  watchClientSockets,
} from './support/hostile-grpc.ts';
import { closedPort, startBlackhole, startRaw } from './support/servers.ts';

const healthService: ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeHealthCheckRequest,
    requestDeserialize: decodeHealthCheckRequest,
    responseSerialize: encodeHealthCheckResponse,
    responseDeserialize: decodeHealthCheckResponse,
  },
};

// service name → serving status; "hang" never answers; unknown → NOT_FOUND like grpc-go.
const statuses: Record<string, number> = { '': 1, payments: 1, ledger: 2, booting: 0 };

function bind(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:0`, ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

describe('probeGrpc', () => {
  let health: Server;
  let plain: Server;
  let healthPort: number;
  let plainPort: number;
  const pending = new Set<() => void>();
  beforeAll(async () => {
    health = new Server();
    health.addService(healthService, {
      Check: (
        call: ServerUnaryCall<{ service: string }, { status: number }>,
        callback: sendUnaryData<{ status: number }>,
      ) => {
        const svc = call.request.service;
        if (svc === 'hang') {
          pending.add(() => callback(null, { status: 1 }));
          return;
        }
        const s = statuses[svc];
        // Details are the server's text: an errno to pass for "could not look", and escapes.
        if (svc === 'hostile')
          callback({ code: status.UNAVAILABLE, details: 'connect EHOSTUNREACH \u001b]0;pwned\u0007\u001b[2J' });
        else if (s === undefined) callback({ code: status.NOT_FOUND, details: 'unknown service' });
        else callback(null, { status: s });
      },
    });
    healthPort = await bind(health, '127.0.0.1');
    // A gRPC server that does not implement the health service at all.
    plain = new Server();
    plainPort = await bind(plain, '127.0.0.2');
  });
  afterAll(() => {
    for (const answer of pending) answer();
    health.forceShutdown();
    plain.forceShutdown();
  });

  const check = (service?: string, port = healthPort, host = '127.0.0.1', timeoutMs = 1000) =>
    probeGrpc({ host, port, timeoutMs, ...(service !== undefined ? { service } : {}) });

  it('SERVING for the whole server → success', async () => {
    const r = await check();
    expect(r).toMatchObject({ outcome: 'success', couldNotLook: false });
    expect(r.message).toBe(`gRPC health check 127.0.0.1:${healthPort}: SERVING`);
  });

  it('SERVING for a named service → success', async () => {
    expect((await check('payments')).outcome).toBe('success');
  });

  it('NOT_SERVING → failure', async () => {
    const r = await check('ledger');
    expect(r.outcome).toBe('failure');
    expect(r.message).toBe(`gRPC health check 127.0.0.1:${healthPort} (service "ledger"): NOT_SERVING`);
  });

  it('UNKNOWN → failure', async () => {
    expect((await check('booting')).message).toMatch(/: UNKNOWN$/);
  });

  it('an unknown service (NOT_FOUND) → failure', async () => {
    const r = await check('nope');
    expect(r.outcome).toBe('failure');
    expect(r.message).toContain('SERVICE_UNKNOWN');
  });

  it("an error's details from the server stay out of the message and cannot claim could-not-look", async () => {
    const r = await check('hostile');
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe(`gRPC health check 127.0.0.1:${healthPort} (service "hostile"): UNAVAILABLE`);
  });

  it('a server without the health service → failure that says so', async () => {
    const r = await check(undefined, plainPort, '127.0.0.2');
    expect(r.outcome).toBe('failure');
    expect(r.message).toContain('does not implement grpc.health.v1.Health');
  });

  it('a refused port → failure, the pod is to blame', async () => {
    const port = await closedPort('127.0.0.3');
    const r = await check(undefined, port, '127.0.0.3');
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe(`gRPC health check 127.0.0.3:${port}: UNAVAILABLE: connection refused`);
  });

  it('a server that never closes its side of the connection does not keep the probe’s socket', async () => {
    const relay = await startHalfOpenRelay(healthPort);
    const opened = watchClientSockets(relay.port);
    try {
      // At once: each probe has a connection of its own, and closing it spares the others'.
      const results = await Promise.all(Array.from({ length: 10 }, () => check(undefined, relay.port)));
      expect(results.map((r) => r.outcome)).toEqual(Array(10).fill('success'));
      expect(opened.sockets).toHaveLength(10);
      expect(opened.sockets.filter((s) => !s.destroyed)).toEqual([]);
    } finally {
      opened.stop();
      await relay.close();
    }
  });

  it('goes straight to the pod whatever proxy the environment names', async () => {
    const proxy = createNetServer((socket) => socket.destroy());
    let proxied = 0;
    proxy.on('connection', () => proxied++);
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const names = ['grpc_proxy', 'https_proxy', 'http_proxy', 'no_grpc_proxy', 'no_proxy'];
    const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
    for (const name of names) delete process.env[name];
    process.env.grpc_proxy = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      expect((await check()).outcome).toBe('success');
      expect(proxied).toBe(0);
    } finally {
      for (const [name, value] of Object.entries(saved))
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it('a port that accepts TCP and never speaks HTTP/2 → timeout, the pod is to blame', async () => {
    const silent = await startRaw('127.0.0.4', () => {});
    try {
      const r = await check(undefined, silent.port, '127.0.0.4', 300);
      expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
      expect(r.message).toBe(`gRPC health check 127.0.0.4:${silent.port}: timeout after 300ms`);
    } finally {
      await silent.close();
    }
  });

  it('connect never completes → timeout that could not look', async () => {
    const hole = await startBlackhole('127.0.0.3');
    try {
      const r = await check(undefined, hole.port, '127.0.0.3', 300);
      expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: true });
      expect(r.message).toBe(`gRPC health check 127.0.0.3:${hole.port}: timeout after 300ms (connect)`);
    } finally {
      await hole.close();
    }
  });

  it('no answer within the deadline → timeout, after the connection was up', async () => {
    const r = await check('hang', healthPort, '127.0.0.1', 300);
    expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
    expect(r.message).toContain('timeout after 300ms');
  });
});

describe('probeGrpc against a server that says GOAWAY before it answers', () => {
  // The channel is IDLE again by the time the answer comes: the connection was still up.
  let servers: HostileServers;
  beforeAll(async () => {
    servers = await startHostileServers();
  });
  afterAll(() => servers.close());

  it("an error after GOAWAY is the server's: no could-not-look, none of its text", async () => {
    const details = 'connect EHOSTUNREACH 10.0.0.1:80'; // text the server sends; no traffic goes there
    const { port, service } = servers.stage({ kind: 'goaway-then-error', code: status.UNAVAILABLE, details });
    const r = await probeGrpc({ host: '127.0.0.1', port, service, timeoutMs: 1000 });
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe(`gRPC health check 127.0.0.1:${port} (service "${service}"): UNAVAILABLE`);
  });

  it('silence after GOAWAY is a timeout after the connection was up', async () => {
    const { port, service } = servers.stage({ kind: 'goaway-then-hang' });
    const r = await probeGrpc({ host: '127.0.0.1', port, service, timeoutMs: 300 });
    expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
    expect(r.message).toBe(`gRPC health check 127.0.0.1:${port} (service "${service}"): timeout after 300ms`);
  });
});

describe('health.proto (de)serialisation', () => {
  it('round-trips requests and responses', () => {
    expect(encodeHealthCheckRequest({}).length).toBe(0);
    expect(decodeHealthCheckRequest(encodeHealthCheckRequest({ service: 'päyments' }))).toEqual({
      service: 'päyments',
    });
    for (const s of [0, 1, 2, 3, 300])
      expect(decodeHealthCheckResponse(encodeHealthCheckResponse({ status: s }))).toEqual({ status: s });
  });

  it('matches protoc bytes and skips unknown fields', () => {
    expect([...encodeHealthCheckRequest({ service: 'ab' })]).toEqual([0x0a, 0x02, 0x61, 0x62]);
    expect([...encodeHealthCheckResponse({ status: 2 })]).toEqual([0x08, 0x02]);
    // field 2 (string "x"), field 3 (fixed32), then status = SERVING
    const withUnknown = Buffer.from([0x12, 0x01, 0x78, 0x1d, 1, 2, 3, 4, 0x08, 0x01]);
    expect(decodeHealthCheckResponse(withUnknown)).toEqual({ status: 1 });
  });

  it('rejects truncated messages', () => {
    expect(() => decodeHealthCheckResponse(Buffer.from([0x08]))).toThrow();
    expect(() => decodeHealthCheckRequest(Buffer.from([0x0a, 0x05, 0x61]))).toThrow();
  });
});
