// The lean HTTP/1.1 exchange against raw TCP servers that write exact bytes: framing edge
// cases, the 10 KiB read cap measured at the socket, and RST teardown.
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpProber } from '../../../src/probes/http.ts';
import { type ExchangeRequest, leanExchange } from '../../../src/probes/http-exchange.ts';
import {
  MAX_FRAMING_BYTES,
  MAX_HEAD_BYTES,
  MAX_HEADER_COUNT,
  MAX_INTERIM_RESPONSES,
  ResponseParser,
} from '../../../src/probes/http-parser.ts';
import { type Running, startRaw } from './support/servers.ts';

const open: Running[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

/** A server that, on each request, writes `parts` (strings) in separate writes and then maybe closes. */
async function serve(parts: string[], end = false): Promise<Awaited<ReturnType<typeof startRaw>>> {
  const server = await startRaw('127.0.0.1', (socket: Socket) => {
    socket.once('data', () => {
      for (const p of parts) socket.write(p);
      if (end) socket.end();
    });
  });
  open.push(server);
  return server;
}

function request(port: number, overrides: Partial<ExchangeRequest> = {}): ExchangeRequest {
  return {
    https: false,
    host: '127.0.0.1',
    port,
    path: '/',
    headers: [
      ['Host', `127.0.0.1:${port}`],
      ['Connection', 'close'],
    ],
    bodyLimit: 10 * 1024,
    timeoutMs: 2000,
    ...overrides,
  };
}

describe('leanExchange framing', () => {
  it('reads a Content-Length body delivered in pieces', async () => {
    const s = await serve(['HTTP/1.1 200 OK\r\nContent-Length: 11\r\n', '\r\nhello', ' world', 'IGNORED']);
    const res = await leanExchange(request(s.port));
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello world');
    expect(res.truncated).toBe(false);
  });

  it('decodes chunked bodies with extensions and trailers', async () => {
    const s = await serve([
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
      '5;ext=1\r\nhello\r\n',
      '1\r\n \r\n6\r',
      '\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n',
    ]);
    const res = await leanExchange(request(s.port));
    expect(res.body.toString()).toBe('hello world!');
  });

  it('reads a close-delimited HTTP/1.0 body until EOF', async () => {
    const s = await serve(['HTTP/1.0 200 OK\r\n\r\npart one, ', 'part two'], true);
    const res = await leanExchange(request(s.port));
    expect(res.body.toString()).toBe('part one, part two');
  });

  it('skips interim 1xx responses', async () => {
    const s = await serve([
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
    ]);
    expect((await leanExchange(request(s.port))).status).toBe(204);
  });

  it('reports Location and status of a redirect', async () => {
    const s = await serve(['HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n']);
    const res = await leanExchange(request(s.port));
    expect(res).toMatchObject({ status: 302, location: '/next' });
  });

  it.each([
    ['a malformed status line', ['SSH-2.0-OpenSSH\r\n\r\n'], /malformed HTTP status line/],
    ['a close before the headers end', ['HTTP/1.1 200 OK\r\nContent-'], /closed before response headers/],
    ['a close mid-body', ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort'], /closed mid-body/],
    [
      'conflicting Content-Length',
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
      /conflicting/,
    ],
    ['a bad chunk size', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'], /invalid chunk size/],
  ])('fails on %s', async (_what, parts, error) => {
    const s = await serve(parts, true);
    await expect(leanExchange(request(s.port))).rejects.toMatchObject({
      kind: 'protocol',
      message: expect.stringMatching(error),
    });
  });

  it('fails on response headers larger than 64 KiB', async () => {
    const s = await serve([`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(70 * 1024)}\r\n\r\n`]);
    await expect(leanExchange(request(s.port))).rejects.toMatchObject({ kind: 'protocol' });
  });

  it('the prober turns protocol errors into failures that name the error, not the bytes', async () => {
    const s = await serve(['SSH-2.0-OpenSSH secret\r\n\r\n'], true);
    const r = await createHttpProber({ port: s.port }).probe({ host: '127.0.0.1', port: s.port, timeoutMs: 1000 });
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe(`HTTP GET http://127.0.0.1:${s.port}/: malformed HTTP status line`);
  });
});

describe('leanExchange read cap and teardown', () => {
  it('never pulls more than 10 KiB of body (plus one 4 KiB read) off the socket', async () => {
    const body = 'x'.repeat(64 * 1024);
    // 1 MiB is far more than the kernel buffers a reader could drain unnoticed.
    const s = await serve(['HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n', ...Array(16).fill(body)]);
    const res = await leanExchange(request(s.port));
    expect(res.truncated).toBe(true);
    expect(res.body.length).toBe(10 * 1024);
    expect(res.bytesRead).toBeLessThanOrEqual(10 * 1024 + 4 * 1024 + 64);
  });

  it('stops at 10 KiB of a chunked body too', async () => {
    const chunk = `4000\r\n${'c'.repeat(0x4000)}\r\n`;
    const s = await serve(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', chunk, chunk, chunk]);
    const res = await leanExchange(request(s.port));
    expect(res).toMatchObject({ truncated: true });
    expect(res.body.length).toBe(10 * 1024);
  });

  it('closes with RST once the response is in', async () => {
    const s = await serve(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    await leanExchange(request(s.port));
    await expect.poll(() => s.resets()).toBe(1);
  });
});

describe('ResponseParser', () => {
  it('gives the same answer when fed one byte at a time', () => {
    const raw = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    const p = new ResponseParser(10 * 1024);
    let done = false;
    for (let i = 0; i < raw.length; i++) done = p.feed(raw.subarray(i, i + 1));
    expect(done).toBe(true);
    expect(p.response().body.toString()).toBe('abcde');
  });

  it('treats 204 and 304 as bodiless even with a Content-Length', () => {
    const p = new ResponseParser(1024);
    expect(p.feed(Buffer.from('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n'))).toBe(true);
  });

  it('lets Transfer-Encoding win over Content-Length', () => {
    const p = new ResponseParser(1024);
    p.feed(
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n'),
    );
    expect(p.response().body.toString()).toBe('abcd');
  });

  // Defects found by test/fuzz/http-response.ts, each kept as a plain case.
  const parse = (raw: string, limit = 1024): ResponseParser => {
    const p = new ResponseParser(limit);
    p.feed(Buffer.from(raw, 'latin1'));
    return p;
  };

  it('skips at most five 1xx interim responses, as Go does, then refuses', () => {
    const ok = `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(MAX_INTERIM_RESPONSES)}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n`;
    expect(parse(ok).response().status).toBe(200);
    const endless = 'HTTP/1.1 103 Early Hints\r\n\r\n'.repeat(MAX_INTERIM_RESPONSES + 1);
    expect(() => parse(endless)).toThrow('too many 1xx informational responses');
  });

  it('counts every head, interim ones and trailers included, against one 64 KiB cap', () => {
    const big = `HTTP/1.1 103 Early Hints\r\nLink: ${'x'.repeat(MAX_HEAD_BYTES / 2)}\r\n\r\n`;
    expect(() => parse(big.repeat(2))).toThrow('response headers larger than 64 KiB');
    const trailers = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n${'T: t\r\n'.repeat(MAX_HEAD_BYTES / 6)}\r\n`;
    expect(() => parse(trailers)).toThrow('response headers larger than 64 KiB');
  });

  it('refuses chunked framing past 16 KiB while the body stays under its cap', () => {
    const flood = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'1;e=ffffffff\r\nx\r\n'.repeat(MAX_FRAMING_BYTES / 10)}`;
    expect(() => parse(flood, 10 * 1024)).toThrow('chunked framing larger than 16 KiB');
  });

  it('refuses more than MAX_HEADER_COUNT header fields', () => {
    const head = (n: number): string => `HTTP/1.1 200 OK\r\n${'A: b\r\n'.repeat(n)}Content-Length: 0\r\n\r\n`;
    expect(parse(head(MAX_HEADER_COUNT - 1)).response().status).toBe(200);
    expect(() => parse(head(MAX_HEADER_COUNT))).toThrow(`more than ${MAX_HEADER_COUNT} response headers`);
  });

  it('takes the first Location, as Go and llhttp do', () => {
    const p = parse('HTTP/1.1 302 Found\r\nLocation: /first\r\nLocation: /second\r\nContent-Length: 0\r\n\r\n');
    expect(p.response().location).toBe('/first');
  });

  it('trims only SP and HTAB around a value', () => {
    const p = parse('HTTP/1.1 302 Found\r\nLocation: \t/a\xa0 \r\nContent-Length: 0\r\n\r\n');
    expect(p.response().location).toBe('/a\xa0');
  });

  it('reads the body of a status under 100 (only 1xx, 204 and 304 have none)', () => {
    const p = parse('HTTP/1.1 000\r\n\r\nx');
    p.end();
    expect(p.response()).toMatchObject({ status: 0 });
    expect(p.response().body.toString()).toBe('x');
  });

  it('refuses obs-fold lines, a space before the colon, and control characters in values', () => {
    for (const line of [' folded', 'Content-Length : 1', 'X: a\0b', 'X: a\rb', 'X: a\nb']) {
      expect(() => parse(`HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 0\r\n\r\n`), line).toThrow(
        /malformed HTTP header/,
      );
    }
  });

  it('parses a head trickled one byte per read without copying it per read', () => {
    const raw = Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'v'.repeat(60 * 1024)}\r\nContent-Length: 2\r\n\r\nok`, 'latin1');
    const p = new ResponseParser(1024);
    let done = false;
    for (let i = 0; i < raw.length && !done; i++) done = p.feed(raw.subarray(i, i + 1));
    expect(done).toBe(true);
    expect(p.response().body.toString()).toBe('ok');
  });
});
