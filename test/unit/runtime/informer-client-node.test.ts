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

describe('ResilientInformer over client-node makeInformer', () => {
  it('normalises listed models and restarts after the watch fails to connect', async () => {
    const port = await refusedPort();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
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
