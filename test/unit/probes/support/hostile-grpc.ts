// Hostile gRPC health servers on 127.0.0.1 for probeGrpc: a grpc-js Server whose Check answers
// whatever bytes it is given (identity serialiser), errors or never answers, and a bare
// node:http2 server for what grpc-js would not send (garbage grpc-status, GOAWAY before the
// answer, lying frames, compression bombs, resets). Each case is looked up by the service name
// the probe asks about. Every text a server sends contains MARKER, which must never reach a
// probe's message. Also: a relay that never closes its side of a connection, and a watch on the
// sockets this process opens, to check that a probe leaves none open.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http2 from 'node:http2';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
} from '@grpc/grpc-js';
import fc from 'fast-check';
import { decodeHealthCheckRequest } from '../../../../src/probes/health-proto.ts';

export const MARKER = 'pod-text';

export type Behaviour =
  // grpc-js Server
  | { kind: 'answer'; bytes: Uint8Array }
  | { kind: 'error'; code: number; details: string }
  | { kind: 'hang' }
  // node:http2
  | { kind: 'garbage-status'; grpcStatus: string; bytes: Uint8Array; details: string }
  | { kind: 'goaway-then-error'; code: number; details: string }
  | { kind: 'goaway-then-hang' }
  | { kind: 'headers-then-hang' }
  | { kind: 'http-status'; status: number }
  /** servingInside: the frame holds SERVING in a form a lenient client accepts (grpc-js does). */
  | { kind: 'frame'; frame: Uint8Array; encoding?: string; servingInside?: true }
  | { kind: 'reset'; code: number; afterHeaders: boolean }
  | { kind: 'destroy'; afterHeaders: boolean }
  | { kind: 'two-messages' };

const GRPC_JS_KINDS = new Set(['answer', 'error', 'hang']);

/** Behaviours under which the server never ends the call: the probe's own deadline must. */
export const HANGS = new Set(['hang', 'goaway-then-hang', 'headers-then-hang']);

/** A length-prefixed gRPC message frame. */
export function frame(message: Uint8Array, compressed = 0, length = message.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(compressed, 0);
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, message]);
}

const SERVING = Uint8Array.from([0x08, 0x01]);
const BOMB = 4 * 1024 * 1024; // inflates to 4 MiB, 64 times the probe's 64 KiB limit

/** Server text: errno-looking words (which must not turn into "could not look"), escapes, bulk. */
export const detailsArb: fc.Arbitrary<string> = fc
  .tuple(
    // biome-ignore format: the note on 10.0.0.1 stays on its line
    fc.constantFrom('', 'connect EHOSTUNREACH 10.0.0.1:80', 'ETIMEDOUT', 'ENETUNREACH', 'ECONNREFUSED ', 'EMFILE'), // server text; no traffic goes there
    fc.constantFrom('', '\u001b]0;owned\u0007\u001b[2J', '\r\nX-Injected: 1', '%00%zz', '\u{1f600}'),
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.integer({ min: 1, max: 16_000 }).map((n) => 'x'.repeat(n)),
    ),
  )
  .map(([errno, escapes, bulk]) => `${MARKER} ${errno}${escapes}${bulk}`);

const codeArb = fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(2 ** 31 - 1, 4, 5, 12, 14));

/** Every behaviour; message bytes come from the decoder fuzzing's generators. */
export function behaviourArb(messageBytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Behaviour> {
  const answerBytes = fc.oneof(
    { weight: 4, arbitrary: messageBytes },
    // SERVING, 2^32 + 1 (SERVING as an int32), NOT_SERVING, SERVICE_UNKNOWN, 5, -1, nothing (UNKNOWN)
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        ...['0801', '088180808010', '0802', '0803', '0805', '08ffffffffffffffffff01', ''].map((h) =>
          Buffer.from(h, 'hex'),
        ),
      ),
    },
    // over the probe's 64 KiB max_receive_message_length, SERVING at the end
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 1, max: 64 })
        .map((k) =>
          Buffer.concat([Buffer.from([0x12, 0xff, 0xff, 0x03]), Buffer.alloc(0xffff), Buffer.alloc(k), SERVING]),
        ),
    },
  );
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('answer' as const), bytes: answerBytes }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('error' as const), code: codeArb, details: detailsArb }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'hang' as const }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('garbage-status' as const),
        grpcStatus: fc.oneof(
          fc.constantFrom(
            '',
            ' ',
            'abc',
            '-1',
            '99',
            '1e3',
            '0x0',
            '00',
            ' 0',
            '-0',
            '0.5',
            '4294967296',
            '1'.repeat(400),
          ),
          fc.string({ unit: 'grapheme-ascii', maxLength: 6 }),
        ),
        bytes: fc.oneof(fc.constant(SERVING), messageBytes),
        details: detailsArb,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('goaway-then-error' as const), code: codeArb, details: detailsArb }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'goaway-then-hang' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'headers-then-hang' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('http-status' as const),
        status: fc.constantFrom(200, 204, 302, 400, 401, 403, 404, 429, 500, 502, 503, 504),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.constant({ kind: 'frame' as const, frame: frame(SERVING, 1) }), // compressed, no grpc-encoding
        fc.constant({ kind: 'frame' as const, frame: frame(SERVING, 2), servingInside: true as const }), // flag 2 is no flag
        fc.constant({ kind: 'frame' as const, frame: frame(SERVING, 0, 3) }), // longer than sent
        fc.constant({ kind: 'frame' as const, frame: frame(SERVING, 0, 0xffffffff) }), // 4 GiB announced
        fc.constant({ kind: 'frame' as const, frame: frame(SERVING).subarray(0, 3) }), // cut in the prefix
        fc.constant({ kind: 'frame' as const, frame: frame(gzipSync(Buffer.alloc(BOMB)), 1), encoding: 'gzip' }),
        fc.constant({ kind: 'frame' as const, frame: frame(deflateSync(Buffer.alloc(BOMB)), 1), encoding: 'deflate' }),
        fc.constant({ kind: 'frame' as const, frame: frame(gzipSync(SERVING), 1), encoding: 'snappy' }),
        fc.constant({ kind: 'frame' as const, frame: frame(SERVING.subarray(0, 1), 1), encoding: 'gzip' }), // not gzip
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('reset' as const),
        code: fc.integer({ min: 0, max: 13 }),
        afterHeaders: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), afterHeaders: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'two-messages' as const }) },
  );
}

export interface HostileServers {
  /** Serves behaviour under a fresh service name, on the server that can act it out. */
  stage(behaviour: Behaviour): { port: number; service: string };
  readonly ports: number[];
  close(): Promise<void>;
}

export async function startHostileServers(): Promise<HostileServers> {
  const cases = new Map<string, Behaviour>();
  const held: (() => void)[] = [];
  let next = 0;
  const grpc = new Server();
  grpc.addService(checkService, {
    Check: (call: ServerUnaryCall<{ service: string }, Buffer>, callback: sendUnaryData<Buffer>) => {
      const b = cases.get(call.request.service);
      if (b?.kind === 'answer') callback(null, Buffer.from(b.bytes));
      else if (b?.kind === 'error') callback({ code: b.code, details: b.details });
      else held.push(() => callback(null, Buffer.from(SERVING)));
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  const h2 = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {}); // clients reset and vanish: that is the point
  });
  h2.on('stream', (stream) => {
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const { service } = decodeHealthCheckRequest(Buffer.concat(chunks).subarray(5));
      const b = cases.get(service);
      if (b) act(stream, b);
    });
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const h2Port = (h2.address() as AddressInfo).port;
  return {
    stage(behaviour) {
      const service = `case-${next++}`;
      cases.set(service, behaviour);
      return { port: GRPC_JS_KINDS.has(behaviour.kind) ? grpcPort : h2Port, service };
    },
    ports: [grpcPort, h2Port],
    async close() {
      for (const answer of held) answer();
      grpc.forceShutdown();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => h2.close(() => resolve()));
    },
  };
}

const checkService: ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: decodeHealthCheckRequest,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

/** grpc-message is percent-encoded on the wire; a server may send any bytes it likes there. */
function grpcMessage(details: string): string {
  return encodeURIComponent(details);
}

function act(stream: http2.ServerHttp2Stream, b: Behaviour): void {
  const session = stream.session!;
  switch (b.kind) {
    case 'garbage-status':
      stream.respond(GRPC_HEADERS, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': b.grpcStatus, 'grpc-message': grpcMessage(b.details) }),
      );
      stream.end(frame(b.bytes));
      return;
    case 'goaway-then-error':
    case 'goaway-then-hang':
      session.goaway(0, stream.id);
      if (b.kind === 'goaway-then-error')
        stream.respond(
          { ...GRPC_HEADERS, 'grpc-status': String(b.code), 'grpc-message': grpcMessage(b.details) },
          { endStream: true },
        );
      return;
    case 'headers-then-hang':
      stream.respond(GRPC_HEADERS);
      return;
    case 'http-status':
      stream.respond({ ':status': b.status, 'content-type': 'text/html' });
      stream.end(`<h1>${MARKER}</h1>`);
      return;
    case 'frame':
      stream.respond(
        { ...GRPC_HEADERS, ...(b.encoding ? { 'grpc-encoding': b.encoding } : {}) },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(b.frame);
      return;
    case 'reset':
      if (b.afterHeaders) stream.respond(GRPC_HEADERS);
      stream.close(b.code);
      return;
    case 'destroy':
      if (b.afterHeaders) stream.respond(GRPC_HEADERS);
      session.destroy();
      return;
    case 'two-messages':
      stream.respond(GRPC_HEADERS, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.write(frame(SERVING));
      stream.end(frame(SERVING));
      return;
    default:
      throw new Error(`${b.kind} is served by grpc-js`);
  }
}

/**
 * A relay to 127.0.0.1:upstream that never closes its side towards the client: a server that
 * keeps every connection, however the client ends it. Only close() ends them.
 */
export async function startHalfOpenRelay(upstream: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const relay = createServer({ allowHalfOpen: true }, (client) => {
    const up = connect(upstream, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => {});
    }
    client.on('data', (d) => up.write(d));
    up.on('data', (d) => client.writable && client.write(d));
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    port: (relay.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

/** Records the client sockets this process opens to these ports (net.connect's diagnostics channel). */
export function watchClientSockets(...ports: number[]): { sockets: Socket[]; stop(): void } {
  const sockets: Socket[] = [];
  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    socket.once('connect', () => ports.includes(socket.remotePort ?? -1) && sockets.push(socket));
  };
  subscribe('net.client.socket', onSocket);
  return { sockets, stop: () => unsubscribe('net.client.socket', onSocket) };
}
