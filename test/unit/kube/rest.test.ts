// rest() against a local stand-in for the API server that throttles with 429: Retry-After is
// waited out on an injected clock (bounded, and cut short by the caller's signal).
import { createServer, type Server } from 'node:http';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, MAX_THROTTLED_RETRIES, rest, retryAfterMs } from '../../../src/kube/rest.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { eventually } from '../../support/wait.ts';

interface FakeApi {
  kc: KubeConfig;
  /** Method and path of every request seen. */
  requests: string[];
  close(): Promise<void>;
}

/** Answers the first `throttled` requests with 429 and the given Retry-After, then 200 '{"ok":true}'. */
async function startApi(throttled: number, retryAfter?: string): Promise<FakeApi> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    if (requests.length <= throttled) {
      res.writeHead(429, retryAfter === undefined ? {} : { 'Retry-After': retryAfter });
      res.end('{"kind":"Status","reason":"TooManyRequests"}');
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    }
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 't', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'token' }],
    contexts: [{ name: 't', cluster: 't', user: 'u' }],
    currentContext: 't',
  });
  return {
    kc,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('rest() and 429 Retry-After', () => {
  const apis: FakeApi[] = [];
  afterEach(async () => {
    await Promise.all(apis.splice(0).map((a) => a.close()));
  });
  const api = async (throttled: number, retryAfter?: string) => {
    const a = await startApi(throttled, retryAfter);
    apis.push(a);
    return a;
  };
  const patch = { method: 'PATCH' as const, path: '/api/v1/namespaces/shop/pods/web-0/status', body: {} };

  it('waits the Retry-After seconds, then resends the request', async () => {
    const a = await api(1, '5');
    const clock = new FakeClock();
    const start = clock.now();
    const done = rest(a.kc, patch, { clock });
    await eventually(() => expect(clock.pendingTimers()).toBe(1), 5000, 10);
    expect(clock.nextDue()).toBe(start + 5000);
    expect(a.requests).toHaveLength(1);
    await clock.tick(5000);
    await expect(done).resolves.toBe('{"ok":true}');
    expect(a.requests).toEqual([`PATCH ${patch.path}`, `PATCH ${patch.path}`]);
  });

  it('caps a long Retry-After at 60 s', async () => {
    const a = await api(1, '3600');
    const clock = new FakeClock();
    const start = clock.now();
    const done = rest(a.kc, patch, { clock });
    await eventually(() => expect(clock.pendingTimers()).toBe(1), 5000, 10);
    expect(clock.nextDue()).toBe(start + MAX_RETRY_AFTER_MS);
    await clock.tick(MAX_RETRY_AFTER_MS);
    await expect(done).resolves.toBe('{"ok":true}');
  });

  it("ends the wait when the caller's signal aborts, with its reason, and sends nothing more", async () => {
    const a = await api(1, '30');
    const clock = new FakeClock();
    const abort = new AbortController();
    const done = rest(a.kc, { ...patch, signal: abort.signal }, { clock });
    await eventually(() => expect(clock.pendingTimers()).toBe(1), 5000, 10);
    const reason = new Error('step down');
    abort.abort(reason);
    await expect(done).rejects.toBe(reason);
    expect(clock.pendingTimers()).toBe(0);
    expect(a.requests).toHaveLength(1);
  });

  it('throws a 429 without Retry-After at once, for the caller’s backoff', async () => {
    const a = await api(1);
    const err = await rest(a.kc, patch, { clock: new FakeClock() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(429);
    expect(a.requests).toHaveLength(1);
  });

  it(`gives up after ${MAX_THROTTLED_RETRIES} retries and throws the 429`, async () => {
    const a = await api(1000, '1');
    const clock = new FakeClock();
    const done = rest(a.kc, patch, { clock }).catch((e: unknown) => e);
    for (let i = 1; i <= MAX_THROTTLED_RETRIES; i++) {
      await eventually(() => expect(a.requests).toHaveLength(i), 5000, 10);
      await eventually(() => expect(clock.pendingTimers()).toBe(1), 5000, 10);
      await clock.tick(1000);
    }
    const err = await done;
    expect((err as ApiException<unknown>).code).toBe(429);
    expect(a.requests).toHaveLength(MAX_THROTTLED_RETRIES + 1);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('retryAfterMs', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  it.each([
    ['0', 0],
    ['1', 1000],
    [' 7 ', 7000],
    ['120', MAX_RETRY_AFTER_MS],
    ['99999999999', MAX_RETRY_AFTER_MS],
    ['Thu, 01 Jan 2026 12:00:10 GMT', 10_000],
    ['Thu, 01 Jan 2026 11:59:00 GMT', 0],
    ['Fri, 02 Jan 2026 12:00:00 GMT', MAX_RETRY_AFTER_MS],
  ])('%j → %i ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });

  it.each([undefined, '', '-1', '1.5', 'soon'])('%j is not a delay', (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});
