// The HTTP prober against real servers on 127.0.0.1/127.0.0.2, run once per transport (the
// lean HTTP/1.1 exchange and undici) so both stay correct while the benchmark picks one.
// The table of kubelet cases follows the documented behaviour of pkg/probe/http: success is
// 200 <= status < 400, same-host redirects are followed (at most 10 requests), a redirect to
// another host is not followed and counts as success with a warning, the timeout covers the
// whole exchange, User-Agent/Accept are defaulted unless set.
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpProber, type HttpProberOptions } from '../../../src/probes/http.ts';
import { type HttpExchange, leanExchange } from '../../../src/probes/http-exchange.ts';
import { undiciExchange } from '../../../src/probes/http-undici.ts';
import type { HTTPGetAction } from '../../../src/probes/types.ts';
import { ProbeConfigError } from '../../../src/probes/types.ts';
import { VERSION } from '../../../src/version.ts';
import { closedPort, type Running, startBlackhole, startHttp, startRaw } from './support/servers.ts';

const SECRET = 'secret-body-text';
const timers = new Set<NodeJS.Timeout>();
function later(ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function route(url: URL, res: ServerResponse, headers: Record<string, unknown>): void {
  const p = url.pathname;
  const [, kind = '', arg = ''] = /^\/([a-z-]+)(?:\/(\d+))?$/.exec(p) ?? [];
  const n = Number(arg);
  switch (kind) {
    case 'status':
      res.writeHead(n);
      res.end(n === 204 || n === 304 ? undefined : SECRET);
      return;
    case 'redirect':
      res.writeHead(n, { location: url.searchParams.get('to') ?? '/status/200' });
      res.end(SECRET);
      return;
    case 'chain':
      if (n === 0) res.writeHead(200).end('end of chain');
      else res.writeHead(302, { location: `/chain/${n - 1}` }).end();
      return;
    case 'loop':
      res.writeHead(302, { location: '/loop' }).end();
      return;
    case 'slow-chain':
      later(150, () => res.writeHead(302, { location: `/slow-chain/${n + 1}` }).end());
      return;
    case 'echo':
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(headers));
      return;
    case 'never':
      return; // accepts the request, never answers
    case 'slow-body': {
      res.writeHead(200);
      const tick = (): void => {
        if (res.destroyed) return;
        res.write('.');
        later(100, tick);
      };
      tick();
      return;
    }
    case 'huge': {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
      return;
    }
    case 'body': {
      const text = url.searchParams.get('text') ?? '';
      res.writeHead(200, { 'content-length': Buffer.byteLength(text) }).end(text);
      return;
    }
    case 'chunked':
      res.writeHead(200); // no content-length: node uses chunked
      res.write('{"status":');
      later(20, () => res.end('"ok"}'));
      return;
    case 'degraded':
      res.writeHead(200).end('{"status":"degraded","token":"s3cr3t"}');
      return;
    case 'late-match':
      res.writeHead(200).end(`${'y'.repeat(11 * 1024)}"status":"ok"`);
      return;
    default:
      res.writeHead(404).end();
  }
}

describe.each<[string, HttpExchange]>([
  ['lean exchange', leanExchange],
  ['undici exchange', undiciExchange],
])('HTTP prober over the %s', (_name, exchange) => {
  let main: Running & { requests: { url?: string }[] };
  let other: Running & { requests: { url?: string }[] };
  const host = '127.0.0.1';
  beforeAll(async () => {
    main = await startHttp(host, (req, res) => route(new URL(req.url ?? '/', 'http://x'), res, req.headers));
    other = await startHttp('127.0.0.2', (req, res) => route(new URL(req.url ?? '/', 'http://x'), res, req.headers));
  });
  afterAll(async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await Promise.all([main.close(), other.close()]);
  });

  const probe = (action: Partial<HTTPGetAction>, timeoutMs = 1000, options: HttpProberOptions = {}) =>
    createHttpProber({ port: main.port, ...action }, { exchange, ...options }).probe({
      host,
      port: main.port,
      timeoutMs,
    });

  describe('kubelet status rule [200,400)', () => {
    it.each([
      [200, 'success'],
      [201, 'success'],
      [204, 'success'],
      [299, 'success'],
      [300, 'success'],
      [304, 'success'],
      [399, 'success'],
      [400, 'failure'],
      [401, 'failure'],
      [404, 'failure'],
      [418, 'failure'],
      [500, 'failure'],
      [503, 'failure'],
      [599, 'failure'],
    ])('status %i → %s', async (code, outcome) => {
      const r = await probe({ path: `/status/${code}` });
      expect(r.outcome).toBe(outcome);
      expect(r.message).toBe(`HTTP GET http://${host}:${main.port}/status/${code}: ${code}`);
      expect(r.message).not.toContain(SECRET);
      expect(r.couldNotLook).toBe(false);
    });
  });

  describe('successCodes', () => {
    it.each([
      [['204'], 200, 'failure'],
      [['204'], 204, 'success'],
      [['200-299', '418'], 418, 'success'],
      [['200-299', '418'], 302, 'failure'],
      [['500-599'], 503, 'success'],
    ])('%j with %i → %s', async (successCodes, code, outcome) => {
      expect((await probe({ path: `/status/${code}`, successCodes })).outcome).toBe(outcome);
    });

    it('rejects malformed entries when the prober is created', () => {
      expect(() => createHttpProber({ port: 1, successCodes: ['2xx'] })).toThrow(ProbeConfigError);
      expect(() => createHttpProber({ port: 1, successCodes: ['399-200'] })).toThrow(/not a status code/);
    });
  });

  describe('redirects', () => {
    it.each([301, 302, 303, 307, 308])('follows a same-host %i', async (code) => {
      const r = await probe({ path: `/redirect/${code}?to=/status/200` });
      expect(r.outcome).toBe('success');
      expect(r.message).toBe(
        `HTTP GET http://${host}:${main.port}/redirect/${code}?to=/status/200: 200 (after 1 redirect)`,
      );
      expect(r.warning).toBeUndefined();
    });

    it('judges the final response of a followed redirect', async () => {
      const r = await probe({ path: '/redirect/302?to=/status/503' });
      expect(r.outcome).toBe('failure');
      expect(r.message).toBe(
        `HTTP GET http://${host}:${main.port}/redirect/302?to=/status/503: 503 (after 1 redirect)`,
      );
    });

    it('follows a redirect to another port of the same host (the kubelet compares host names)', async () => {
      const second = await startHttp(host, (_req, res) => res.writeHead(200).end());
      try {
        const r = await probe({ path: `/redirect/302?to=http://127.0.0.1:${second.port}/` });
        expect(r.outcome).toBe('success');
        expect(second.requests).toHaveLength(1);
      } finally {
        await second.close();
      }
    });

    it('does not follow a redirect to another host, and succeeds with a warning', async () => {
      const before = other.requests.length;
      const r = await probe({ path: `/redirect/302?to=http://127.0.0.2:${other.port}/status/500` });
      expect(r).toMatchObject({ outcome: 'success', couldNotLook: false });
      expect(r.warning).toBe('redirect to another host not followed');
      expect(r.message).toBe(
        `HTTP GET http://${host}:${main.port}/redirect/302?to=http://127.0.0.2:${other.port}/status/500: 302, redirect to another host not followed`,
      );
      expect(other.requests.length).toBe(before);
    });

    it('counts a cross-host redirect as success even when successCodes leave out 3xx (docs/api.md, "Probe semantics")', async () => {
      const r = await probe({ path: `/redirect/302?to=http://127.0.0.2:${other.port}/`, successCodes: ['200'] });
      expect(r.outcome).toBe('success');
      expect(r.warning).toBeDefined();
    });

    it('follows 9 redirects (10 requests) and stops at the 10th', async () => {
      expect(await probe({ path: '/chain/9' })).toMatchObject({
        outcome: 'success',
        message: `HTTP GET http://${host}:${main.port}/chain/9: 200 (after 9 redirects)`,
      });
      const r = await probe({ path: '/chain/10' });
      expect(r.outcome).toBe('failure');
      expect(r.message).toContain('stopped after 10 redirects');
    });

    it('fails a redirect loop', async () => {
      const r = await probe({ path: '/loop' });
      expect(r.outcome).toBe('failure');
      expect(r.message).toBe(`HTTP GET http://${host}:${main.port}/loop: stopped after 10 redirects`);
    });

    it('treats a 3xx without Location as a final response', async () => {
      expect((await probe({ path: '/status/302' })).outcome).toBe('success');
      expect((await probe({ path: '/status/302', successCodes: ['200'] })).outcome).toBe('failure');
    });

    it('fails a redirect to a non-HTTP scheme', async () => {
      const r = await probe({ path: '/redirect/302?to=ftp://127.0.0.1/x' });
      expect(r.outcome).toBe('failure');
      expect(r.message).toBe(
        `HTTP GET http://${host}:${main.port}/redirect/302?to=ftp://127.0.0.1/x: 302 redirect to an unsupported scheme`,
      );
    });

    it('applies one deadline to the whole chain, not one per hop', async () => {
      // Each hop answers after 150 ms; every single hop fits in 400 ms, the chain does not.
      const r = await probe({ path: '/slow-chain/0' }, 400);
      expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
      expect(r.message).toBe(`HTTP GET http://${host}:${main.port}/slow-chain/0: timeout after 400ms`);
    });
  });

  describe('pod-controlled text stays out of the message', () => {
    // Escape sequences a terminal would act on (set title, clear screen, CSI in its C1 form);
    // undici refuses some of them in a header, the lean exchange takes them.
    const EVIL = '\u001b]0;pwned\u0007\u001b[2J\u009b31m';
    let raw: Running;
    let n = 0;
    beforeAll(async () => {
      raw = await startRaw(host, (socket) => {
        let head = '';
        socket.on('data', (d: Buffer) => {
          head += d.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          const path = /^GET (\S+)/.exec(head)?.[1] ?? '/';
          const answer = (status: string, headers: string[]): void => {
            socket.end([`HTTP/1.1 ${status}`, ...headers, 'Content-Length: 0', '', ''].join('\r\n'), 'latin1');
          };
          // A different Location on every answer, as a pod redirecting to /ok?n=<i>.
          const tail = `pwned-${n++}${path.endsWith('-esc') ? EVIL : ''}`;
          if (path.startsWith('/ok?')) answer('200 OK', []);
          else if (path.startsWith('/same-host')) answer(`302 ${tail}`, [`Location: /ok?n=${tail}`]);
          else if (path.startsWith('/other-host')) answer('302 Found', [`Location: http://127.0.0.2:1/${tail}`]);
          else if (path.startsWith('/bad-scheme')) answer('302 Found', [`Location: gopher://pwned/${tail}`]);
          else answer(`503 ${tail}`, []);
        });
      });
    });
    afterAll(() => raw.close());
    const rawProbe = (path: string) =>
      createHttpProber({ port: raw.port, path }, { exchange }).probe({ host, port: raw.port, timeoutMs: 1000 });

    it.each([
      ['/same-host', '200 (after 1 redirect)'],
      ['/other-host', '302, redirect to another host not followed'],
      ['/bad-scheme', '302 redirect to an unsupported scheme'],
      ['/reason-phrase', '503'],
    ])('%s: a varying Location or reason phrase gives the same message every probe', async (path, tail) => {
      const first = await rawProbe(path);
      expect(first.message).toBe(`HTTP GET http://${host}:${raw.port}${path}: ${tail}`);
      expect((await rawProbe(path)).message).toBe(first.message);
      expect(first.warning ?? '').not.toContain('pwned');
    });

    it.each(['/same-host-esc', '/other-host-esc', '/bad-scheme-esc', '/reason-phrase-esc'])(
      '%s: escape sequences never reach the message',
      async (path) => {
        const r = await rawProbe(path);
        for (const text of [r.message, r.warning ?? '']) {
          expect(text).not.toContain('pwned');
          expect(text).not.toMatch(/\p{Cc}/u);
        }
        expect(r.message.startsWith(`HTTP GET http://${host}:${raw.port}${path}: `)).toBe(true);
      },
    );
  });

  describe('request headers', () => {
    const echo = async (httpHeaders: HTTPGetAction['httpHeaders']): Promise<Record<string, string>> => {
      const before = main.requests.length;
      const r = await probe({ path: '/echo', httpHeaders });
      expect(r.outcome).toBe('success');
      const req = main.requests[before] as unknown as { headers: Record<string, string> };
      return req.headers;
    };

    it('sends Host as the pod IP and port, User-Agent readygate/<version>, Accept */*, Connection: close', async () => {
      const h = await echo([]);
      expect(h.host).toBe(`${host}:${main.port}`);
      expect(h['user-agent']).toBe(`readygate/${VERSION}`);
      expect(h.accept).toBe('*/*');
      expect(h.connection).toBe('close');
    });

    it('passes custom headers and keeps a user-set User-Agent and Accept', async () => {
      const h = await echo([
        { name: 'X-Check', value: 'gate' },
        { name: 'User-Agent', value: 'custom/1' },
        { name: 'Accept', value: 'application/json' },
      ]);
      expect(h['x-check']).toBe('gate');
      expect(h['user-agent']).toBe('custom/1');
      expect(h.accept).toBe('application/json');
    });

    it('drops Accept when the user sets it empty (kubelet rule)', async () => {
      const h = await echo([{ name: 'Accept', value: '' }]);
      expect(h.accept).toBeUndefined();
    });

    it('rejects a Host header with a clear error', () => {
      expect(() => createHttpProber({ port: 1, httpHeaders: [{ name: 'host', value: 'example.com' }] })).toThrow(
        /Host header is not allowed/,
      );
    });

    it('rejects header injection', () => {
      expect(() => createHttpProber({ port: 1, httpHeaders: [{ name: 'X-A', value: 'a\r\nX-B: b' }] })).toThrow(
        ProbeConfigError,
      );
      expect(() => createHttpProber({ port: 1, httpHeaders: [{ name: 'X A', value: 'a' }] })).toThrow(ProbeConfigError);
    });
  });

  describe('bodyRegex and the 10 KiB cap', () => {
    it('matches a Content-Length body', async () => {
      const path = `/body?text=${encodeURIComponent('{"status":"ok"}')}`;
      expect((await probe({ path, bodyRegex: '"status":"ok"' })).outcome).toBe('success');
    });

    it('fails a miss without putting the body in the message', async () => {
      const r = await probe({ path: '/degraded', bodyRegex: '"status":"ok"' });
      expect(r.outcome).toBe('failure');
      expect(r.message).toContain('body does not match bodyRegex');
      expect(r.message).not.toContain('s3cr3t');
    });

    it('matches a chunked body split over several writes', async () => {
      expect((await probe({ path: '/chunked', bodyRegex: '\\{"status":"ok"\\}' })).outcome).toBe('success');
    });

    it('only looks at the first 10 KiB', async () => {
      const r = await probe({ path: '/late-match', bodyRegex: '"status":"ok"' });
      expect(r.outcome).toBe('failure');
    });

    it('accepts a leading RE2 inline flag group', async () => {
      const path = `/body?text=${encodeURIComponent('STATUS: OK')}`;
      expect((await probe({ path, bodyRegex: '(?i)status:\\sok' })).outcome).toBe('success');
      expect((await probe({ path, bodyRegex: '(?i)status:\\Sok' })).outcome).toBe('failure');
    });

    it('rejects regexes that cannot run in linear time', () => {
      expect(() => createHttpProber({ port: 1, bodyRegex: '(a)\\1' })).toThrow(/linear time/);
      expect(() => createHttpProber({ port: 1, bodyRegex: '(' })).toThrow(/not a valid regular expression/);
    });

    it('survives a catastrophic-backtracking pattern on a hostile body', async () => {
      const path = `/body?text=${'a'.repeat(5000)}b`;
      expect((await probe({ path, bodyRegex: '^(a+)+$' })).outcome).toBe('failure');
    });

    it('stops reading an endless body after 10 KiB (success without waiting for the end)', async () => {
      const r = await probe({ path: '/huge' }, 5000);
      expect(r.outcome).toBe('success');
      const m = await probe({ path: '/huge', bodyRegex: '^x+$' }, 5000);
      expect(m.outcome).toBe('success');
    });

    it('times out on a body that trickles past the deadline', async () => {
      const r = await probe({ path: '/slow-body', bodyRegex: 'never' }, 400);
      expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
    });
  });

  describe('connection failures', () => {
    it('refused → failure, the pod is to blame', async () => {
      const port = await closedPort('127.0.0.2');
      const r = await createHttpProber({ port }, { exchange }).probe({ host: '127.0.0.2', port, timeoutMs: 1000 });
      expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
      expect(r.message).toBe(`HTTP GET http://127.0.0.2:${port}/: connection refused`);
    });

    it('no answer after connecting → timeout, the pod is to blame', async () => {
      const r = await probe({ path: '/never' }, 300);
      expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
      expect(r.message).toBe(`HTTP GET http://${host}:${main.port}/never: timeout after 300ms`);
    });

    it('connect never completes → timeout that could not look', async () => {
      const hole = await startBlackhole('127.0.0.3');
      try {
        const r = await createHttpProber({ port: hole.port }, { exchange }).probe({
          host: '127.0.0.3',
          port: hole.port,
          timeoutMs: 300,
        });
        expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: true });
        expect(r.message).toBe(`HTTP GET http://127.0.0.3:${hole.port}/: timeout after 300ms (connect)`);
      } finally {
        await hole.close();
      }
    });
  });
});
