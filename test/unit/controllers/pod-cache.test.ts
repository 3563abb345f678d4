// The sharded pod cache (docs/sharding.md, step 3): one watch per held bucket when the API server
// honours shardSelector, today's full watch otherwise; a released bucket's pods leave the cache
// with no delete event, and a bucket's listing is announced only once its list is in.
import { createServer as createHttpServer } from 'node:http';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { detectShardSelector, type PodSource, ShardedPodCache } from '../../../src/controllers/pod-cache.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import type { InformerHandlers } from '../../../src/runtime/informer.ts';
import { shardSelector } from '../../../src/safety/sharding.ts';
import { eventually } from '../../support/wait.ts';

/** A pod source driven by the test: `list(pods)` delivers its initial list, `add` a watch event. */
class FakeSource implements PodSource {
  readonly handlers = new Set<InformerHandlers<V1Pod>>();
  readonly pods = new Map<string, V1Pod>();
  started = false;
  stopped = false;
  #synced = false;
  #waiters: (() => void)[] = [];
  readonly selector: string | undefined;
  constructor(selector?: string) {
    this.selector = selector;
  }
  on(h: InformerHandlers<V1Pod>) {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }
  async start(signal: AbortSignal) {
    this.started = true;
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    this.stopped = true;
  }
  hasSynced() {
    return this.#synced;
  }
  waitForSync(signal: AbortSignal) {
    if (this.#synced) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push(resolve);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
  list(ns?: string) {
    return [...this.pods.values()].filter((p) => ns === undefined || p.metadata?.namespace === ns);
  }
  get(ns: string, name: string) {
    return this.pods.get(`${ns}/${name}`);
  }
  size() {
    return this.pods.size;
  }
  add(pod: V1Pod) {
    this.pods.set(`${pod.metadata?.namespace}/${pod.metadata?.name}`, pod);
    for (const h of this.handlers) h.add?.(pod);
  }
  listed(pods: V1Pod[]) {
    for (const p of pods) this.add(p);
    this.#synced = true;
    for (const w of this.#waiters.splice(0)) w();
  }
}

const pod = (name: string): V1Pod => ({ metadata: { name, namespace: 'ns', uid: `uid-${name}` } });

let abort: AbortController | undefined;
afterEach(() => abort?.abort());

function harness(honoured: boolean, held: number[]) {
  const full = new FakeSource();
  const buckets = new Map<string, FakeSource>();
  const owned = new Set(held);
  const listed: number[] = [];
  const dropped: number[] = [];
  const events: string[] = [];
  const cache = new ShardedPodCache({
    buckets: 4,
    held: () => owned,
    honoured: async () => honoured,
    full,
    bucketInformer: (selector) => {
      const s = new FakeSource(selector);
      buckets.set(selector, s);
      return s;
    },
    log: pino({ level: 'silent' }),
    onListed: (b) => listed.push(b),
    onDropped: (b) => dropped.push(b),
  });
  cache.on({
    add: (p) => events.push(`add ${p.metadata?.name}`),
    delete: (p) => events.push(`delete ${p.metadata?.name}`),
  });
  abort = new AbortController();
  const running = cache.start(abort.signal);
  const bucket = (b: number) => buckets.get(shardSelector([b], 4));
  return { cache, full, owned, bucket, listed, dropped, events, running };
}

describe('ShardedPodCache', () => {
  it('keeps the full watch when the API server does not honour shardSelector', async () => {
    const h = harness(false, [0, 1]);
    await eventually(() => expect(h.full.started).toBe(true));
    expect(h.cache.sharded()).toBe(false);
    expect(h.cache.hasSynced()).toBe(false);
    h.full.listed([pod('a'), pod('b')]);
    await h.cache.waitForSync(new AbortController().signal);
    expect(h.cache.list('ns').map((p) => p.metadata?.name)).toEqual(['a', 'b']);
    expect(h.events).toEqual(['add a', 'add b']);
    h.cache.heldChanged();
    expect(h.bucket(0)).toBeUndefined();
  });

  it('watches each held bucket alone, announces a bucket once listed, and drops a released one silently', async () => {
    const h = harness(true, [0, 2]);
    await h.cache.waitForSync(new AbortController().signal);
    expect(h.cache.sharded()).toBe(true);
    expect(h.full.started).toBe(false);
    expect(h.bucket(0)?.started && h.bucket(2)?.started).toBe(true);
    expect(h.cache.bucketWatches()).toBe(2);
    h.bucket(0)!.listed([pod('a')]);
    h.bucket(2)!.listed([pod('c')]);
    await eventually(() => expect(h.listed.sort()).toEqual([0, 2]));
    expect(h.cache.size()).toBe(2);
    expect(h.cache.get('ns', 'c')?.metadata?.uid).toBe('uid-c');

    // Bucket 1 acquired: its watch starts, the others are not listed again.
    h.owned.add(1);
    h.cache.heldChanged();
    const b0 = h.bucket(0);
    h.cache.heldChanged();
    expect(h.bucket(0)).toBe(b0);
    expect(h.listed).toHaveLength(2);
    // Until its list is in, the bucket's pods are not in the cache's view: no pass sees half a bucket.
    h.bucket(1)!.add(pod('early'));
    expect(h.cache.get('ns', 'early')).toBeUndefined();
    expect(h.cache.listedBuckets().sort()).toEqual([0, 2]);
    h.bucket(1)!.listed([pod('b')]);
    expect(h.cache.get('ns', 'early')?.metadata?.name).toBe('early');
    expect(h.cache.listedBuckets().sort()).toEqual([0, 1, 2]);
    await eventually(() => expect(h.listed).toContain(1));

    // Bucket 0 released: its pods leave the cache at once, with no delete event, and its late events are ignored.
    h.owned.delete(0);
    h.cache.heldChanged();
    expect(h.dropped).toEqual([0]);
    expect(h.cache.get('ns', 'a')).toBeUndefined();
    expect(
      h.cache
        .list()
        .map((p) => p.metadata?.name)
        .sort(),
    ).toEqual(['b', 'c', 'early']);
    await eventually(() => expect(b0?.stopped).toBe(true));
    b0!.add(pod('late'));
    expect(h.events).toEqual(['add a', 'add c', 'add early', 'add b']);
  });

  it('stops every bucket watch when it stops', async () => {
    const h = harness(true, [3]);
    await h.cache.waitForSync(new AbortController().signal);
    const b3 = h.bucket(3)!;
    abort!.abort();
    await h.running;
    expect(b3.stopped).toBe(true);
    expect(h.dropped).toEqual([]);
  });
});

describe('detectShardSelector', () => {
  /** An "API server" answering pod LISTs with `answer(query)`; records each query. */
  async function apiServer(answer: (q: URLSearchParams) => { status: number; body: unknown }) {
    const queries: URLSearchParams[] = [];
    const server = createHttpServer((req, res) => {
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      queries.push(q);
      const { status, body } = answer(q);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true },
      ],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return { kc, queries, close: () => new Promise<void>((r) => server.close(() => r())) };
  }
  const deps = (kc: KubeConfig, clock = new FakeClock()) => ({
    kc,
    namespaces: ['ns'],
    buckets: 4,
    clock,
    log: pino({ level: 'silent' }),
  });
  const sent = shardSelector([0], 4);

  it('is true when the list echoes the selector, false when it ignores it (the gate off)', async () => {
    let echo = true;
    const api = await apiServer((q) => ({
      status: 200,
      body: { items: [], metadata: echo ? { shardInfo: { selector: q.get('shardSelector') } } : {} },
    }));
    try {
      expect(await detectShardSelector(deps(api.kc), new AbortController().signal)).toBe(true);
      expect(api.queries[0]?.get('shardSelector')).toBe(sent);
      expect(api.queries[0]?.get('limit')).toBe('1');
      echo = false;
      expect(await detectShardSelector(deps(api.kc), new AbortController().signal)).toBe(false);
    } finally {
      await api.close();
    }
  });

  it('retries errors, then settles for the full watch', async () => {
    const api = await apiServer(() => ({ status: 500, body: { kind: 'Status' } }));
    const clock = new FakeClock();
    try {
      const detected = detectShardSelector(deps(api.kc, clock), new AbortController().signal);
      for (let i = 0; i < 50 && api.queries.length < 4; i++) {
        await new Promise((r) => setImmediate(r));
        await clock.tick(1_000);
      }
      expect(await detected).toBe(false);
      expect(api.queries).toHaveLength(4);
    } finally {
      await api.close();
    }
  });
});
