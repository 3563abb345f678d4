// How the operator talks to the API server, below the reconcilers:
// - API calls share keep-alive connections: client-node 2.0.1 alone opens a new TLS connection per
//   call (see src/kube/config.ts). Connections are counted from undici's diagnostics channel, as
//   the process itself sees them, with the protocol each negotiated.
// - listAll pages through a collection as raw JSON (see src/kube/list.ts).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { listAll } from '../../src/kube/list.ts';
import { conditionPatch, patchPodConditions } from '../../src/kube/pod-status.ts';
import { createNamespace, deleteNamespace } from '../support/kube.ts';

let connections = 0;
let protocols: (string | false | undefined)[] = [];
const onConnected = (message: unknown): void => {
  connections++;
  protocols.push((message as { socket?: { alpnProtocol?: string | false } }).socket?.alpnProtocol);
};

beforeEach(() => {
  connections = 0;
  protocols = [];
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
  it('100 sequential calls share one connection, and so do 50 concurrent ones (HTTP/2)', async () => {
    const kc = loadKubeConfig(inject('controlPlane').kubeconfigPath);
    await calls(kc, 100, 0);
    expect(connections).toBe(1);
    // undici 8 offers HTTP/2 and kube-apiserver takes it: concurrent calls become streams of the
    // one connection, so their count does not depend on how fast answers come back (over HTTP/1.1
    // it would: one request per connection at a time).
    expect(protocols).toEqual(['h2']);
    await calls(kc, 0, 50);
    expect(connections).toBe(1);
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

describe('listAll', () => {
  let ns: string;
  let kc: KubeConfig;
  beforeAll(async () => {
    kc = loadKubeConfig(inject('controlPlane').kubeconfigPath);
    ns = await createNamespace(kc, 'list');
    const core = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 7; i++) {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `p${i}`, labels: { n: String(i % 2) } },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        },
      });
    }
  });
  afterAll(async () => {
    await deleteNamespace(kc, ns);
  });

  it('pages through a collection and returns every item in the wire shape', async () => {
    const list = await listAll<V1Pod>(kc, `/api/v1/namespaces/${ns}/pods`, { limit: 3 });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    expect(list.metadata?.resourceVersion).toMatch(/^\d+$/);
    for (const pod of list.items) {
      expect(pod).toMatchObject({ kind: 'Pod', apiVersion: 'v1' });
      // Timestamps stay RFC3339 strings, as in watch events; no Date objects.
      expect(typeof pod.metadata?.creationTimestamp).toBe('string');
    }
  });

  it('transforms each item as its page arrives', async () => {
    const seen: string[] = [];
    const list = await listAll<V1Pod>(kc, `/api/v1/namespaces/${ns}/pods`, {
      limit: 4,
      transform: (pod) => {
        seen.push(pod.metadata?.name ?? '');
        return { metadata: { name: pod.metadata?.name?.toUpperCase() } };
      },
    });
    expect(seen).toHaveLength(7);
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['P0', 'P1', 'P2', 'P3', 'P4', 'P5', 'P6']);
  });

  it('applies the label selector', async () => {
    const list = await listAll<V1Pod>(kc, `/api/v1/namespaces/${ns}/pods`, { limit: 2, labelSelector: 'n=1' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['p1', 'p3', 'p5']);
  });

  it('patches pod conditions with the UID as precondition (patchPodConditions)', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const pod = await core.readNamespacedPod({ namespace: ns, name: 'p0' });
    const ref = { namespace: ns, name: 'p0', uid: pod.metadata?.uid ?? '' };
    const desired = { type: 'readygate.dev/list', status: 'True' as const, reason: 'ProbeSucceeded', message: 'ok' };
    const body = conditionPatch(ref.uid, [{ desired, observed: undefined }], Date.now());
    expect(await patchPodConditions(kc, ref, body)).toBe('patched');
    const after = await core.readNamespacedPod({ namespace: ns, name: 'p0' });
    expect(after.status?.conditions?.find((c) => c.type === desired.type)).toMatchObject({ status: 'True' });
    const stale = { ...ref, uid: 'not-the-uid' };
    expect(await patchPodConditions(kc, stale, conditionPatch(stale.uid, [{ desired, observed: undefined }], 0))).toBe(
      'conflict',
    );
    expect(await patchPodConditions(kc, { ...ref, name: 'gone' }, body)).toBe('not-found');
  });

  it('refuses a patch carrying an old resourceVersion as stale, and applies one carrying the current', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const pod = await core.readNamespacedPod({ namespace: ns, name: 'p1' });
    const ref = { namespace: ns, name: 'p1', uid: pod.metadata?.uid ?? '' };
    const rv = pod.metadata?.resourceVersion ?? '';
    const desired = { type: 'readygate.dev/list', status: 'True' as const, reason: 'ProbeSucceeded', message: 'ok' };
    expect(await patchPodConditions(kc, ref, conditionPatch(ref.uid, [{ desired, observed: undefined }], 0, rv))).toBe(
      'patched',
    );
    // The pod moved on (our own write did): the same precondition now fails, and nothing is written.
    const flip = { ...desired, status: 'False' as const, reason: 'ProbeFailed' };
    expect(
      await patchPodConditions(kc, ref, conditionPatch(ref.uid, [{ desired: flip, observed: undefined }], 0, rv)),
    ).toBe('stale');
    const after = await core.readNamespacedPod({ namespace: ns, name: 'p1' });
    expect(after.status?.conditions?.find((c) => c.type === desired.type)?.status).toBe('True');
  });

  it('throws the API status as client-node does', async () => {
    const err = await listAll(kc, '/apis/readygate.dev/v1alpha1/nothingthere').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 404 });
  });
});
