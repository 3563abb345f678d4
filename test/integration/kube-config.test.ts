// API calls share keep-alive connections: client-node 2.0.1 alone opens a new TLS connection per
// call (see src/kube/config.ts), which at 10,000 pods cost hundreds of MiB and most of the CPU.
// Connections are counted from undici's diagnostics channel, as the process itself sees them.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { loadKubeConfig } from '../../src/kube/config.ts';

let connections = 0;
const onConnected = (): void => {
  connections++;
};

beforeEach(() => {
  connections = 0;
  subscribe('undici:client:connected', onConnected);
});
afterEach(() => {
  unsubscribe('undici:client:connected', onConnected);
});

async function calls(kc: KubeConfig, sequential: number, concurrent: number): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < sequential; i++) await core.readNamespace({ name: 'default' });
  await Promise.all(Array.from({ length: concurrent }, () => core.readNamespace({ name: 'default' })));
}

describe('connections to the API server', () => {
  it('100 sequential calls share one connection, 50 concurrent ones a handful', async () => {
    const kc = loadKubeConfig(inject('controlPlane').kubeconfigPath);
    await calls(kc, 100, 0);
    expect(connections).toBe(1);
    // Concurrent calls may open more (one request per HTTP/1.1 connection), never one each.
    await calls(kc, 0, 50);
    expect(connections).toBeLessThan(10);
  });

  // Documents the upstream behaviour the workaround exists for: when this fails, client-node
  // reuses connections by itself and reuseConnections() can go.
  it('client-node alone opens one connection per call', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(inject('controlPlane').kubeconfigPath);
    await calls(kc, 20, 0);
    expect(connections).toBe(20);
  });
});
