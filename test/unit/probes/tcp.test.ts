import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyNetError, joinHostPort } from '../../../src/probes/net-errors.ts';
import { probeTcp } from '../../../src/probes/tcp.ts';
import { closedPort, type Running, startBlackhole, startRaw } from './support/servers.ts';

describe('probeTcp', () => {
  const open: Running[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });

  it('succeeds when the port accepts, and tears the connection down with RST', async () => {
    const server = await startRaw('127.0.0.1', () => {});
    open.push(server);
    const r = await probeTcp({ host: '127.0.0.1', port: server.port, timeoutMs: 1000 });
    expect(r).toMatchObject({ outcome: 'success', couldNotLook: false });
    expect(r.message).toBe(`TCP connect 127.0.0.1:${server.port}: connected`);
    // The server side sees ECONNRESET, not an orderly FIN: no TIME_WAIT is left on our side.
    await expect.poll(() => server.resets()).toBe(1);
  });

  it('fails on a refused port without blaming the operator', async () => {
    const port = await closedPort('127.0.0.2');
    const r = await probeTcp({ host: '127.0.0.2', port, timeoutMs: 1000 });
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe(`TCP connect 127.0.0.2:${port}: connection refused`);
  });

  it('times out on a listener whose accept queue is full, and says it could not look', async () => {
    const hole = await startBlackhole('127.0.0.3');
    open.push(hole);
    const r = await probeTcp({ host: '127.0.0.3', port: hole.port, timeoutMs: 300 });
    expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: true });
    expect(r.message).toBe(`TCP connect 127.0.0.3:${hole.port}: timeout after 300ms`);
  });

  it('succeeds on a listener that accepts but never says anything (TCP only checks the handshake)', async () => {
    const silent = await startRaw('127.0.0.2', (s) => s.pause());
    open.push(silent);
    const r = await probeTcp({ host: '127.0.0.2', port: silent.port, timeoutMs: 500 });
    expect(r.outcome).toBe('success');
  });
});

describe('classifyNetError', () => {
  it.each([
    ['ECONNREFUSED', false, 'connection refused'],
    ['ECONNRESET', false, 'connection reset by peer'],
    ['EHOSTUNREACH', true, 'host unreachable'],
    ['ENETUNREACH', true, 'network unreachable'],
    ['EMFILE', true, 'EMFILE'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', false, 'certificate does not name the server'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', false, 'the port does not speak TLS'],
    ['ERR_SSL_PACKET_LENGTH_TOO_LONG', false, 'ERR_SSL_PACKET_LENGTH_TOO_LONG'],
  ])('%s → couldNotLook %s, named by its code only', (code, couldNotLook, text) => {
    const err = Object.assign(new Error("Host: x is not in the cert's altnames: DNS:\u001b]0;pwned\u0007"), { code });
    expect(classifyNetError(err)).toEqual({ couldNotLook, text });
  });

  it('an error without a constant code is named by its class, never by its message', () => {
    const pwned = 'pwned \u001b[2J';
    expect(classifyNetError(new Error(pwned))).toEqual({ couldNotLook: false, text: 'network error' });
    expect(classifyNetError(Object.assign(new Error(pwned), { code: pwned }))).toEqual({
      couldNotLook: false,
      text: 'network error',
    });
    class HTTPParserError extends Error {
      override name = 'HTTPParserError';
    }
    expect(classifyNetError(new HTTPParserError(pwned))).toEqual({ couldNotLook: false, text: 'HTTPParserError' });
  });

  it('brackets IPv6 literals', () => {
    expect(joinHostPort('::1', 80)).toBe('[::1]:80');
    expect(joinHostPort('127.0.0.1', 80)).toBe('127.0.0.1:80');
  });
});

describe('probeTcp burst', () => {
  let server: Awaited<ReturnType<typeof startRaw>>;
  beforeAll(async () => {
    server = await startRaw('127.0.0.4', () => {});
  });
  afterAll(async () => {
    await server.close();
  });

  it('every probe of a burst resets its connection', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, () => probeTcp({ host: '127.0.0.4', port: server.port, timeoutMs: 2000 })),
    );
    expect(results.every((r) => r.outcome === 'success')).toBe(true);
    await expect.poll(() => server.resets()).toBe(50);
  });
});
