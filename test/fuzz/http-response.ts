// Property-based fuzzing of the HTTP response path (src/probes/http-exchange.ts), shared by the
// bounded suite in CI (test/unit/probes/http-exchange.fuzz.test.ts) and the long run
// (bench/fuzz.ts). Responses are generated from HTTP's own parts, adversarial ones included, then
// cut into reads at random boundaries; Node's own parser (llhttp, through node:http on an
// in-memory socket) is the reference.
import { request } from 'node:http';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { createHttpProber } from '../../src/probes/http.ts';
import {
  ExchangeError,
  type ExchangeRequest,
  leanExchange,
  READ_BUFFER_BYTES,
} from '../../src/probes/http-exchange.ts';
import { MAX_FRAMING_BYTES, MAX_HEAD_BYTES, ResponseParser } from '../../src/probes/http-parser.ts';

/** The prober's body cap (src/probes/http.ts MAX_BODY_BYTES). */
export const BODY_LIMIT = 10 * 1024;
/** Most bytes one exchange may consume before it must have settled (head, body, framing). */
export const CONSUMED_BOUND = MAX_HEAD_BYTES + BODY_LIMIT + MAX_FRAMING_BYTES;
/** Most bytes one exchange may take off its socket: the above plus the one read in progress. */
export const SOCKET_BOUND = CONSUMED_BOUND + READ_BUFFER_BYTES;

export type Parsed =
  | { ok: true; status: number; location: string | undefined; body: string; truncated: boolean; consumed: number }
  | { ok: false; error: string; consumed: number };

/** Runs our parser over reads as leanExchange does: stop when it is done, else signal EOF. */
export function parseOurs(reads: readonly Buffer[], limit = BODY_LIMIT): Parsed {
  const parser = new ResponseParser(limit);
  let consumed = 0;
  try {
    for (const read of reads) {
      consumed += read.length;
      if (parser.feed(read)) return ours(parser, consumed);
    }
    parser.end();
    return ours(parser, consumed);
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`parser threw a non-Error: ${String(err)}`);
    return { ok: false, error: err.message, consumed };
  }
}

function ours(parser: ResponseParser, consumed: number): Parsed {
  const r = parser.response();
  return {
    ok: true,
    status: r.status,
    location: r.location,
    body: r.body.toString('latin1'),
    truncated: r.truncated,
    consumed,
  };
}

export type Reference = { ok: true; status: number; location: string | undefined; body: string } | { ok: false };

/** Node's http client (llhttp) reading the same bytes from an in-memory socket that ends after them. */
export function parseNode(reads: readonly Buffer[]): Promise<Reference> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Reference): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(r);
    };
    const socket = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    const req = request({ createConnection: () => socket, path: '/', maxHeaderSize: MAX_HEAD_BYTES });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        if (!res.complete) return finish({ ok: false });
        const location = res.headers.location;
        finish({ ok: true, status: res.statusCode ?? 0, location, body: Buffer.concat(parts).toString('latin1') });
      });
      res.on('error', () => finish({ ok: false }));
      res.on('aborted', () => finish({ ok: false }));
    });
    req.on('error', () => finish({ ok: false }));
    req.end();
    queueMicrotask(() => {
      for (const r of reads) socket.push(r);
      socket.push(null);
    });
  });
}

// ---- generators ----

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const ctl = fc.constantFrom('\0', '\r', '\n', '\x7f', '\x01', '\t', '\v', '\xa0', ' ');
const value = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[ -~]{0,24}$/) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.stringMatching(/^[ -~]{0,8}$/), ctl, fc.stringMatching(/^[ -~]{0,8}$/))
      .map((p) => p.join('')),
  },
);
const decimal = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 64 }).map(String) },
  fc.constantFrom('-1', '+5', '05', '0x10', '1e3', '5, 5', ' 7 ', '99999999999999999999', '4294967296', ''),
);
const codings = fc.constantFrom('chunked', 'gzip', 'gzip, chunked', 'chunked, gzip', 'Chunked', 'identity', 'chunked,');

const header = fc.oneof(
  { weight: 3, arbitrary: decimal.map((v) => `Content-Length: ${v}`) },
  { weight: 2, arbitrary: codings.map((v) => `Transfer-Encoding: ${v}`) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('/next', 'http://127.0.0.1/x', '//other/', ' /pad ', '/a\xa0')
      .map((v) => `Location: ${v}`),
  },
  { weight: 8, arbitrary: fc.tuple(token, value).map(([n, v]) => `${n}: ${v}`) },
  { weight: 1, arbitrary: value.map((v) => ` folded ${v}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('Content-Length : 3', ': empty', 'No-Colon', 'Bad Name: x', 'X\0: y', 'X: a\rb'),
  },
  { weight: 1, arbitrary: fc.constantFrom('Content-Encoding: gzip', 'Connection: close', 'Connection: keep-alive') },
);

const statusLine = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(fc.constantFrom('HTTP/1.1', 'HTTP/1.0'), fc.integer({ min: 100, max: 599 }))
      .map(([v, s]) => `${v} ${s} OK`),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 999 }).map((s) => `HTTP/1.1 ${String(s).padStart(3, '0')}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'HTTP/2.0 200 OK',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1 20 OK',
      'HTTP/1.1  200 OK',
      'http/1.1 200 OK',
      'HTTP/1.1 200 O\0K',
      'ICY 200 OK',
      '',
    ),
  },
);

const interim = fc
  .tuple(
    fc.constantFrom(100, 102, 103, 199),
    fc.array(
      fc.tuple(token, value).map(([n, v]) => `${n}: ${v}`),
      { maxLength: 2 },
    ),
  )
  .map(([s, hs]) => `HTTP/1.1 ${s} Interim\r\n${hs.map((h) => `${h}\r\n`).join('')}\r\n`);

const chunkExt = fc.oneof(
  fc.constant(''),
  fc.constant(';a=b'),
  fc.stringMatching(/^;[a-z=]{0,40}$/),
  fc.constant(` ;x`),
);
const chunk = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.string({ unit: 'binary-ascii', maxLength: 40 }), chunkExt)
      .map(([d, e]) => `${d.length.toString(16)}${e}\r\n${d}\r\n`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '-1\r\n',
      'ffffffffffffffff\r\n',
      '7fffffff\r\n',
      'zz\r\n',
      '5\r\nab\r\n',
      '3\nabc\n',
      '0x3\r\nabc\r\n',
      '\r\n',
    ),
  },
);
const chunkedBody = fc
  .tuple(fc.array(chunk, { maxLength: 6 }), fc.array(header, { maxLength: 2 }), fc.boolean())
  .map(
    ([chunks, trailers, last]) =>
      chunks.join('') + (last ? `0\r\n${trailers.map((t) => `${t}\r\n`).join('')}\r\n` : ''),
  );
const body = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  chunkedBody,
  fc.nat({ max: 30 * 1024 }).map((n) => 'x'.repeat(n)),
);

/** A response built from HTTP's parts, with adversarial variants mixed in. */
const structured = fc
  .tuple(
    fc.array(interim, { maxLength: 3 }),
    statusLine,
    fc.array(header, { maxLength: 5 }),
    fc.oneof({ weight: 12, arbitrary: fc.constant('\r\n') }, fc.constantFrom('\n', '\r\r\n', '')),
    body,
  )
  .map(([pre, status, headers, blank, b]) =>
    latin1(`${pre.join('')}${status}\r\n${headers.map((h) => `${h}\r\n`).join('')}${blank}${b}`),
  );

/** Bytes that are not HTTP/1.x at all: random, HTTP/2 preface, HTTP/0.9 bodies. */
const foreign = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.constant(latin1('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00')),
  fc.constant(latin1('<html>ok</html>')),
);

/** Floods that must hit a cap: endless 1xx, header floods, framing floods, a trickled giant head. */
const flood = fc
  .oneof(
    fc.nat({ max: 3000 }).map((n) => 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(n)),
    fc.nat({ max: 6000 }).map((n) => `HTTP/1.1 200 OK\r\n${'X-A: b\r\n'.repeat(n)}Content-Length: 0\r\n\r\n`),
    fc.nat({ max: 200 }).map((n) => `HTTP/1.1 200 OK\r\nX: ${'v'.repeat(n * 512)}\r\n\r\n`),
    fc
      .nat({ max: 9000 })
      .map((n) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'1;e=ffffffff\r\nx\r\n'.repeat(n)}0\r\n\r\n`),
    fc
      .nat({ max: 3000 })
      .map(
        (n) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n${'T: t\r\n'.repeat(n * 4)}\r\n`,
      ),
  )
  .map(latin1);

/** Bytes that print as a short latin1 excerpt in a counterexample (a flood prints in full otherwise). */
export class Bytes {
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  [fc.toStringMethod](): string {
    const text = JSON.stringify(this.buf.toString('latin1', 0, 400));
    return `Bytes(${this.buf.length}: ${text}${this.buf.length > 400 ? '…' : ''})`;
  }
}

/** A response, mutated at a few random bytes one time in six. */
export const responseBytes: fc.Arbitrary<Bytes> = fc
  .tuple(
    fc.oneof({ weight: 16, arbitrary: structured }, { weight: 2, arbitrary: foreign }, { weight: 1, arbitrary: flood }),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 3 }),
    fc.nat({ max: 5 }),
  )
  .map(([bytes, edits, chance]) => {
    if (chance !== 0 || bytes.length === 0) return new Bytes(bytes);
    const out = Buffer.from(bytes);
    for (const [at, byte] of edits) out[at % out.length] = byte;
    return new Bytes(out);
  });

/** Cuts bytes into reads of at most READ_BUFFER_BYTES at the given points (as a socket would). */
export function cut(bytes: Buffer, points: readonly number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const reads: Buffer[] = [];
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    while (at - from > READ_BUFFER_BYTES) {
      reads.push(bytes.subarray(from, from + READ_BUFFER_BYTES));
      from += READ_BUFFER_BYTES;
    }
    if (at > from) reads.push(bytes.subarray(from, at));
    from = Math.max(from, at);
  }
  return reads;
}

export const splitResponse = fc.tuple(responseBytes, fc.array(fc.nat(), { maxLength: 8 }));

// ---- properties ----

/** Never throws anything but an Error, never consumes past the bound, and any split gives one answer. */
export function parserProperty(): fc.IPropertyWithHooks<[[Bytes, number[]]]> {
  return fc.property(splitResponse, ([{ buf: bytes }, points]) => {
    const whole = parseOurs(cut(bytes, []));
    const split = parseOurs(cut(bytes, points));
    for (const r of [whole, split]) {
      if (r.consumed > SOCKET_BOUND)
        throw new Error(`read ${r.consumed} bytes before settling (bound ${SOCKET_BOUND})`);
    }
    // Where the bound cut a flood short, what was read differs; the verdict must not.
    const same = JSON.stringify({ ...whole, consumed: 0 }) === JSON.stringify({ ...split, consumed: 0 });
    if (!same) throw new Error(`split changed the answer: ${JSON.stringify(whole)} vs ${JSON.stringify(split)}`);
  });
}

/** Wherever llhttp and our parser both accept a response, they read the same status, Location and body. */
export function agreesWithLlhttpProperty(): fc.IAsyncPropertyWithHooks<[[Bytes, number[]]]> {
  return fc.asyncProperty(splitResponse, async ([{ buf: bytes }, points]) => {
    const reads = cut(bytes, points);
    const mine = parseOurs(reads);
    const node = await parseNode(reads);
    if (!mine.ok || !node.ok) return;
    const theirs = { status: node.status, location: node.location, body: node.body.slice(0, BODY_LIMIT) };
    const got = { status: mine.status, location: mine.location, body: mine.body };
    if (JSON.stringify(got) !== JSON.stringify(theirs)) {
      throw new Error(
        `disagree: ours ${JSON.stringify(got).slice(0, 300)} llhttp ${JSON.stringify(theirs).slice(0, 300)}`,
      );
    }
  });
}

// ---- over a real socket ----

export type Ending = 'fin' | 'reset' | 'stall';

/** What the loopback target sends next: the reads, one write each, then how it ends. */
export interface Scenario {
  reads: Buffer[];
  ending: Ending;
}

/** A raw TCP target on 127.0.0.1 that answers each request with the current scenario. */
export async function startScenarioTarget(): Promise<{ port: number; set(s: Scenario): void; close(): Promise<void> }> {
  let current: Scenario = { reads: [], ending: 'fin' };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the prober resets connections it is done with
    socket.setNoDelay(true);
    const { reads, ending } = current;
    socket.once('data', () => writeAll(socket, reads, ending));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    set: (s) => {
      current = s;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// One write per read, each after the previous one drained to the kernel, so reads arrive apart.
function writeAll(socket: Socket, reads: readonly Buffer[], ending: Ending): void {
  let i = 0;
  const next = (): void => {
    if (socket.destroyed) return;
    if (i < reads.length) {
      socket.write(reads[i++]!, () => setImmediate(next));
      return;
    }
    if (ending === 'fin') socket.end();
    else if (ending === 'reset') socket.resetAndDestroy();
  };
  next();
}

export const socketCase = fc.tuple(splitResponse, fc.constantFrom<Ending>('fin', 'fin', 'reset', 'stall'));

/**
 * Over a real socket: the exchange settles (by our deadline when the target stalls), reads at
 * most SOCKET_BOUND bytes, agrees with the in-memory parse when the target ends cleanly, and the
 * whole prober resolves with a result, never a throw.
 */
export function socketProperty(target: {
  port: number;
  set(s: Scenario): void;
}): fc.IAsyncPropertyWithHooks<[[[Bytes, number[]], Ending]]> {
  return fc.asyncProperty(socketCase, async ([[{ buf }, points], ending]) => {
    const reads = cut(buf, points);
    target.set({ reads, ending });
    const expected = parseOurs(reads);
    const timeoutMs = ending === 'stall' ? 100 : 5000;
    const req = exchangeRequest(target.port, timeoutMs);
    const got = await leanExchange(req).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    if (got.ok) {
      if (got.r.bytesRead > SOCKET_BOUND) throw new Error(`read ${got.r.bytesRead} bytes (bound ${SOCKET_BOUND})`);
      const same = expected.ok && expected.status === got.r.status && expected.body === got.r.body.toString('latin1');
      if (!same) throw new Error(`socket ${got.r.status} vs in memory ${JSON.stringify(expected).slice(0, 200)}`);
    } else {
      if (!(got.e instanceof ExchangeError)) throw new Error(`exchange rejected with ${String(got.e)}`);
      if (ending === 'fin' && got.e.kind !== 'protocol' && expected.ok)
        throw new Error(`${got.e.message}, expected ${expected.status}`);
      if (ending === 'stall' && got.e.kind === 'timeout' && !got.e.message.startsWith('timeout after')) throw got.e;
    }
    const result = await createHttpProber({ port: target.port, path: '/' }).probe({
      host: '127.0.0.1',
      port: target.port,
      timeoutMs,
    });
    if (!['success', 'failure', 'timeout'].includes(result.outcome)) throw new Error(`prober said ${result.outcome}`);
  });
}

function exchangeRequest(port: number, timeoutMs: number): ExchangeRequest {
  return {
    https: false,
    host: '127.0.0.1',
    port,
    path: '/',
    headers: [
      ['Host', `127.0.0.1:${port}`],
      ['Connection', 'close'],
    ],
    bodyLimit: BODY_LIMIT,
    timeoutMs,
  };
}
