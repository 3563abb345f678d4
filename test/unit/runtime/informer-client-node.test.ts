import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { KubeConfig, type KubernetesListObject, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { clientNodeInformerFactory, ResilientInformer, type RestartReason } from '../../../src/runtime/informer.ts';
import { normalizerFor } from '../../../src/runtime/normalize.ts';
import { turnsUntil } from '../../support/wait.ts';

// Checks the wrapper's assumptions about client-node's real ListWatch (not an API server test):
// the list is delivered as model objects with Dates, and a watch that cannot connect reports
// 'error' and stops, which the wrapper turns into a restart.

async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function kubeConfigFor(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

/** An "API server" that accepts watches and holds them open, counting them. */
async function watchServer(): Promise<{ server: Server; port: number; opened: () => number; open: () => number }> {
  let opened = 0;
  let open = 0;
  const server = createHttpServer((req, res) => {
    opened++;
    open++;
    req.socket.once('close', () => open--);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, port, opened: () => opened, open: () => open };
}

function podInformer(
  kc: KubeConfig,
  list: (ns: string | undefined, signal: AbortSignal) => Promise<KubernetesListObject<V1Pod>>,
) {
  return new ResilientInformer<V1Pod>({
    name: 'pods',
    factory: clientNodeInformerFactory<V1Pod>(kc, { path: () => '/api/v1/pods', list }),
    normalize: normalizerFor<V1Pod>({ apiVersion: 'v1', kind: 'Pod' }),
    clock: new FakeClock(0),
    resyncMs: 0,
    stallTimeoutMs: 0,
  });
}

describe('ResilientInformer over client-node makeInformer', () => {
  it('aborts a list in flight when it stops', async () => {
    const kc = kubeConfigFor(await refusedPort());
    let listSignal: AbortSignal | undefined;
    const informer = podInformer(
      kc,
      (_ns, signal) =>
        new Promise((_, reject) => {
          listSignal = signal;
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
    );
    const ac = new AbortController();
    const done = informer.start(ac.signal);
    expect(await turnsUntil(() => listSignal !== undefined)).toBe(true);
    expect(listSignal?.aborted).toBe(false);
    ac.abort();
    await done;
    expect(listSignal?.aborted).toBe(true);
  });

  it('closes the watch that a list returning after the stop still opens', async () => {
    const api = await watchServer();
    try {
      let release: () => void = () => {};
      let listed = false;
      // A list that ignores its signal (client-node's own stop() cannot abort one either).
      const informer = podInformer(
        kubeConfigFor(api.port),
        () =>
          new Promise((resolve) => {
            listed = true;
            release = () => resolve({ metadata: { resourceVersion: '1' }, items: [] });
          }),
      );
      const ac = new AbortController();
      const done = informer.start(ac.signal);
      expect(await turnsUntil(() => listed)).toBe(true);
      ac.abort();
      await done;
      release(); // the stopped ListWatch now opens a watch
      expect(await turnsUntil(() => api.opened() === 1 && api.open() === 0)).toBe(true);
    } finally {
      api.server.closeAllConnections();
      await new Promise<void>((resolve) => api.server.close(() => resolve()));
    }
  });

  it('normalises listed models and restarts after the watch fails to connect', async () => {
    const kc = kubeConfigFor(await refusedPort());
    let lists = 0;
    const list = async (): Promise<KubernetesListObject<V1Pod>> => {
      lists++;
      return {
        metadata: { resourceVersion: '10' },
        items: [
          {
            metadata: {
              namespace: 'ns',
              name: 'a',
              resourceVersion: '10',
              creationTimestamp: new Date('2026-11-27T05:31:23Z'),
            },
          },
        ],
      };
    };
    const clock = new FakeClock(0);
    const restarts: RestartReason[] = [];
    const informer = new ResilientInformer<V1Pod>({
      name: 'pods',
      factory: clientNodeInformerFactory<V1Pod>(kc, { path: () => '/api/v1/pods', list }),
      normalize: normalizerFor<V1Pod>({ apiVersion: 'v1', kind: 'Pod' }),
      clock,
      backoffBaseMs: 1_000,
      resyncMs: 0,
      stallTimeoutMs: 0,
      onRestart: (reason) => restarts.push(reason),
    });
    const ac = new AbortController();
    const done = informer.start(ac.signal);
    await turnsUntil(() => restarts.length > 0);
    expect(restarts).toEqual(['error']);
    expect(lists).toBe(1);
    expect(informer.get('ns', 'a')).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: 'ns', name: 'a', resourceVersion: '10', creationTimestamp: '2026-11-27T05:31:23Z' },
    });
    await clock.tick(1_000);
    await turnsUntil(() => restarts.length !== 1);
    expect(lists).toBe(2);
    ac.abort();
    await done;
    expect(clock.pendingTimers()).toBe(0);
  });
});
