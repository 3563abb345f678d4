// The HTTP prober against hostile targets (test/support/hostile-targets.ts): every probe target
// is tenant code, so none of them may hang a probe past its deadline, make it read without
// bound, or send it anywhere but the pod. For each target, the real prober (createHttpProber,
// default transport) and the bare exchange (leanExchange) must settle with the right outcome
// and a message of our own words, and every socket they open must read at most
//   MAX_HEAD_BYTES (all heads, 1xx and trailers included) + MAX_BODY_BYTES + MAX_FRAMING_BYTES
//   + one READ_BUFFER_BYTES read,
// measured at the socket (bytesRead of every client socket, seen through Node's
// 'net.client.socket' diagnostics channel, so failed exchanges are measured too).
import dc from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpProber, MAX_BODY_BYTES, MAX_REDIRECTS } from '../../../src/probes/http.ts';
import {
  ExchangeError,
  type ExchangeRequest,
  leanExchange,
  READ_BUFFER_BYTES,
} from '../../../src/probes/http-exchange.ts';
import { MAX_FRAMING_BYTES, MAX_HEAD_BYTES, MAX_HEADER_COUNT } from '../../../src/probes/http-parser.ts';
import type { ProbeResult } from '../../../src/probes/types.ts';
import {
  HOSTILE_MARKER,
  type HostileFarm,
  type HostileTarget,
  startHostileFarm,
} from '../../support/hostile-targets.ts';
import { turnsUntil } from '../../support/wait.ts';

/** Most bytes one plain HTTP exchange may pull off its socket. */
const PLAIN_BOUND = MAX_HEAD_BYTES + MAX_BODY_BYTES + MAX_FRAMING_BYTES + READ_BUFFER_BYTES;
// The TLS targets fail in the handshake, before our caps apply: OpenSSL refuses a peer's
// certificate list above 100 KiB (SSL_CTX_set_max_cert_list's default) once the message header
// announces it, and Node reads a TLS socket in reads of up to 64 KiB (libuv's read size).
const OPENSSL_MAX_CERT_LIST = 100 * 1024;
const LIBUV_READ_BYTES = 64 * 1024;
const TLS_BOUND = OPENSSL_MAX_CERT_LIST + LIBUV_READ_BYTES;

/** Deadline of a probe against a target that stalls: the test waits it out, so it is short. */
const STALL_TIMEOUT_MS = 500;
/** Deadline of a probe against a target that a cap must stop: long, so a pass is never the deadline's doing. */
const CAP_TIMEOUT_MS = 10_000;

// What each target must give: outcome, and the message after "HTTP GET <url>: ". The failure
// texts are the parser's and the exchange's own (src/probes/http-parser.ts, net-errors.ts); none may
// quote the target.
const CASES: ReadonlyArray<readonly [name: string, outcome: ProbeResult['outcome'], tail: string]> = [
  ['slowloris', 'timeout', `timeout after ${STALL_TIMEOUT_MS}ms`],
  ['endless-1xx', 'failure', 'too many 1xx informational responses'],
  ['fat-1xx', 'failure', 'response headers larger than 64 KiB'],
  ['huge-header', 'failure', 'response headers larger than 64 KiB'],
  ['header-count', 'failure', `more than ${MAX_HEADER_COUNT} response headers`],
  ['gzip-bomb', 'success', '200'],
  ['redirect-absolute', 'success', '302, redirect to another host not followed'],
  ['redirect-scheme-relative', 'success', '301, redirect to another host not followed'],
  ['redirect-integer-host', 'success', '307, redirect to another host not followed'],
  ['redirect-userinfo', 'success', '308, redirect to another host not followed'],
  ['redirect-https', 'success', '302, redirect to another host not followed'],
  ['redirect-after-hop', 'success', '302, redirect to another host not followed'],
  ['chunk-extension', 'failure', 'chunked framing line too long'],
  ['chunk-framing', 'failure', `chunked framing larger than ${MAX_FRAMING_BYTES / 1024} KiB`],
  ['endless-trailers', 'failure', 'response headers larger than 64 KiB'],
  ['reset-mid-header', 'failure', 'connection reset by peer'],
  ['largest-answer', 'success', '200'],
  ['tls-stall', 'timeout', `timeout after ${STALL_TIMEOUT_MS}ms`],
  ['tls-huge-chain', 'failure', 'EPROTO'],
];

let farm: HostileFarm;
// Every client socket opened while a test runs, for its bytesRead once closed.
const opened: Socket[] = [];
const onClientSocket = (message: unknown): void => {
  opened.push((message as { socket: Socket }).socket);
};
beforeAll(async () => {
  dc.subscribe('net.client.socket', onClientSocket);
  farm = await startHostileFarm();
});
afterAll(async () => {
  dc.unsubscribe('net.client.socket', onClientSocket);
  await farm?.close();
});

/** Runs fn, then returns bytesRead of every socket it opened (all closed by then). */
async function reads<T>(fn: () => Promise<T>): Promise<{ value: T; bytesRead: number[] }> {
  opened.length = 0;
  const value = await fn();
  expect(opened.every((s) => s.destroyed)).toBe(true);
  return { value, bytesRead: opened.splice(0).map((s) => s.bytesRead) };
}

const timeoutFor = (outcome: ProbeResult['outcome']) => (outcome === 'timeout' ? STALL_TIMEOUT_MS : CAP_TIMEOUT_MS);
const boundFor = (t: HostileTarget) => (t.scheme === 'HTTPS' ? TLS_BOUND : PLAIN_BOUND);
const urlOf = (t: HostileTarget) => `${t.scheme === 'HTTPS' ? 'https' : 'http'}://${t.host}:${t.port}${t.path}`;

function probe(t: HostileTarget, timeoutMs: number): Promise<ProbeResult> {
  const prober = createHttpProber({ port: t.port, path: t.path, scheme: t.scheme });
  return prober.probe({ host: t.host, port: t.port, timeoutMs });
}

function exchangeRequest(t: HostileTarget, timeoutMs: number): ExchangeRequest {
  return {
    https: t.scheme === 'HTTPS',
    host: t.host,
    port: t.port,
    path: t.path,
    headers: [
      ['Host', `${t.host}:${t.port}`],
      ['Connection', 'close'],
    ],
    bodyLimit: MAX_BODY_BYTES,
    timeoutMs,
  };
}

describe('hostile targets', () => {
  it('the farm serves exactly the targets this file covers, each on loopback', () => {
    expect(farm.targets.map((t) => t.name).sort()).toEqual(CASES.map(([name]) => name).sort());
    for (const t of farm.targets) expect(t.host).toMatch(/^127\./);
    expect(farm.standIn.host).toMatch(/^127\./);
    expect(farm.standIn.host).not.toBe(farm.targets[0]!.host);
  });

  describe.each(CASES)('%s', (name, outcome, tail) => {
    it(`the prober settles with ${outcome}, a message of its own, and bounded reads`, async () => {
      const t = farm.target(name);
      const { value: r, bytesRead } = await reads(() => probe(t, timeoutFor(outcome)));
      expect(r.outcome).toBe(outcome);
      // A stalled target is the pod's fault: it accepted the connection.
      expect(r.couldNotLook).toBe(false);
      const subject = `HTTP GET ${urlOf(t)}: `;
      expect(r.message.startsWith(subject)).toBe(true);
      expect(r.message.slice(subject.length)).toBe(tail);
      expect(r.message).not.toContain(HOSTILE_MARKER);
      expect(bytesRead.length).toBeGreaterThan(0);
      expect(bytesRead.length).toBeLessThanOrEqual(MAX_REDIRECTS);
      for (const n of bytesRead) expect(n).toBeLessThanOrEqual(boundFor(t));
      expect(farm.standIn.connections()).toBe(0);
    });

    it('the bare exchange settles the same way and reads as little', async () => {
      const t = farm.target(name);
      const { value, bytesRead } = await reads(() =>
        leanExchange(exchangeRequest(t, timeoutFor(outcome))).then(
          (res) => ({ res, err: undefined }),
          (err: unknown) => ({ res: undefined, err }),
        ),
      );
      if (outcome === 'failure') {
        expect(value.err).toBeInstanceOf(ExchangeError);
        expect((value.err as ExchangeError).kind).not.toBe('timeout');
        expect((value.err as ExchangeError).message).toBe(tail);
      } else if (outcome === 'timeout') {
        expect(value.err).toMatchObject({
          kind: 'timeout',
          connected: true,
          message: `timeout after ${STALL_TIMEOUT_MS}ms`,
        });
      } else {
        expect(value.err).toBeUndefined();
        expect(value.res!.bytesRead).toBeLessThanOrEqual(boundFor(t));
      }
      expect(bytesRead).toHaveLength(1);
      expect(bytesRead[0]).toBeLessThanOrEqual(boundFor(t));
    });
  });
});

describe('what the hostile targets must not achieve', () => {
  it('a gzip bomb is never decompressed: the body is the first MAX_BODY_BYTES of raw gzip', async () => {
    const res = await leanExchange(exchangeRequest(farm.target('gzip-bomb'), CAP_TIMEOUT_MS));
    expect(res.status).toBe(200);
    expect(res.truncated).toBe(true);
    expect(res.body.length).toBe(MAX_BODY_BYTES);
    expect([...res.body.subarray(0, 3)]).toEqual([0x1f, 0x8b, 0x08]); // gzip magic and deflate
    // The bomb is 4 MiB on the wire and 4 GiB inflated; the probe reads neither.
    expect(res.bytesRead).toBeLessThanOrEqual(PLAIN_BOUND);
  });

  it('a TLS handshake that never ends is cut by its own cap under a longer probe deadline', async () => {
    const t = farm.target('tls-stall');
    const req = { ...exchangeRequest(t, CAP_TIMEOUT_MS), tlsHandshakeTimeoutMs: STALL_TIMEOUT_MS };
    await expect(leanExchange(req)).rejects.toMatchObject({
      kind: 'network',
      message: `TLS handshake timeout after ${STALL_TIMEOUT_MS}ms`,
      connected: true,
      couldNotLook: false,
    });
  });

  it('a same-host hop is followed, the cross-host one after it is not', async () => {
    const before = farm.connections('redirect-after-hop');
    const r = await probe(farm.target('redirect-after-hop'), CAP_TIMEOUT_MS);
    expect(r).toMatchObject({ outcome: 'success', warning: 'redirect to another host not followed' });
    expect(farm.connections('redirect-after-hop') - before).toBe(2);
    expect(farm.standIn.connections()).toBe(0);
  });

  it('the largest answer is read whole up to the caps: a full head and MAX_BODY_BYTES of body', async () => {
    const res = await leanExchange(exchangeRequest(farm.target('largest-answer'), CAP_TIMEOUT_MS));
    expect(res).toMatchObject({ status: 200, truncated: true });
    expect(res.body.length).toBe(MAX_BODY_BYTES);
    expect(res.bytesRead).toBeGreaterThanOrEqual(MAX_HEAD_BYTES + MAX_BODY_BYTES);
    expect(res.bytesRead).toBeLessThanOrEqual(PLAIN_BOUND);
  });

  it('a trickled largest answer keeps the probe in flight until its last byte, then succeeds', async () => {
    // The benchmark's memory scenario, once: the head comes 4 KiB at a time, its last byte held.
    const trickled = await startHostileFarm({ largest: { pieceBytes: 4096, pieceMs: 1, holdBack: 1 } });
    try {
      const t = trickled.target('largest-answer');
      let settled: ProbeResult | undefined;
      const pending = probe(t, CAP_TIMEOUT_MS).then((r) => {
        settled = r;
        return r;
      });
      expect(await turnsUntil(() => trickled.held() === 1 || settled !== undefined)).toBe(true);
      expect(settled).toBeUndefined();
      expect(trickled.heldBytes).toBe(MAX_HEAD_BYTES - 1);
      trickled.release();
      expect(await pending).toMatchObject({ outcome: 'success', message: `HTTP GET ${urlOf(t)}: 200` });
    } finally {
      await trickled.close();
    }
  });
});
