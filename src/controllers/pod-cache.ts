// The pod cache of a sharded replica (docs/sharding.md, step 3). When the API server honours
// `shardSelector` (KEP-5866), it runs one list/watch per held bucket, so its memory follows its
// share: a bucket acquired starts its own informer, a bucket released stops it and drops its pods
// without a delete event (they were not deleted: another replica writes them now), and neither
// re-lists the other buckets. Otherwise it is today's informer over every pod, and ownership is
// decided by bucketOf. The rule is src/safety/pod-watch.ts; this is the shell.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { listAll } from '../kube/list.ts';
import { rest } from '../kube/rest.ts';
import type { Clock } from '../runtime/clock.ts';
import { clientNodeInformerFactory, type InformerHandlers, type ResilientInformer } from '../runtime/informer.ts';
import type { CacheRunnable } from '../runtime/manager.ts';
import { podWatchChanges, podWatchPlan, type ShardedListMeta, shardSelectorHonoured } from '../safety/pod-watch.ts';
import { shardSelector } from '../safety/sharding.ts';

/** How often the start-up check of shardSelector is tried before the full watch is chosen. */
const DETECT_ATTEMPTS = 4;
/** Each try's deadline: an API server that does not answer must not hold the cache's sync. */
const DETECT_TIMEOUT_MS = 10_000;

/** What the cache needs of an informer (a ResilientInformer). */
export type PodSource = CacheRunnable &
  Pick<ResilientInformer<V1Pod>, 'on' | 'list' | 'get' | 'size' | 'waitForSync' | 'hasSynced'>;

export interface PodCacheOptions {
  buckets: number;
  /** The buckets held now. */
  held: () => ReadonlySet<number>;
  /** Whether the API server honours shardSelector (detectShardSelector); false keeps the full watch. */
  honoured: (signal: AbortSignal) => Promise<boolean>;
  /** The informer over every pod (today's), the one used when the selector is not honoured. */
  full: PodSource;
  /** A bucket informer over `selector`, not yet started. */
  bucketInformer: (selector: string) => PodSource;
  log: Logger;
  /** A bucket's pods are all listed: its targets may be seeded now. */
  onListed(bucket: number): void;
  /** A bucket's pods were dropped: the policies count their share again. */
  onDropped(bucket: number): void;
}

interface BucketWatch {
  informer: PodSource;
  abort: AbortController;
}

/** A pod cache over the full watch, or over one watch per held bucket when the API server honours shardSelector. */
export class ShardedPodCache implements CacheRunnable {
  readonly name = 'pods';
  readonly #o: PodCacheOptions;
  readonly #handlers = new Set<InformerHandlers<V1Pod>>();
  readonly #watches = new Map<number, BucketWatch>();
  #honoured: boolean | undefined;
  #detected?: () => void;
  readonly #detection = new Promise<void>((resolve) => {
    this.#detected = resolve;
  });

  constructor(o: PodCacheOptions) {
    this.#o = o;
    o.full.on(this.#forward(() => this.#honoured === false));
  }

  /** Whether the cache holds only the held buckets' pods (false until known, and with the gate off). */
  sharded(): boolean {
    return this.#honoured === true;
  }

  /** The buckets whose pods are listed in full (their watch synced): what list() and get() cover. */
  listedBuckets(): number[] {
    return [...this.#watches].filter(([, w]) => w.informer.hasSynced()).map(([b]) => b);
  }

  /** How many bucket watches run now. */
  bucketWatches(): number {
    return this.#watches.size;
  }

  on(handlers: InformerHandlers<V1Pod>): () => void {
    this.#handlers.add(handlers);
    return () => this.#handlers.delete(handlers);
  }

  hasSynced(): boolean {
    return this.#honoured === true || (this.#honoured === false && this.#o.full.hasSynced());
  }

  async waitForSync(signal: AbortSignal): Promise<void> {
    await Promise.race([
      this.#detection,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
    if (this.#honoured === false) await this.#o.full.waitForSync(signal);
  }

  list(namespace?: string): V1Pod[] {
    if (this.#honoured !== true) return this.#o.full.list(namespace);
    // Only buckets listed in full: a policy pass never sees half a bucket (its counts cover whole buckets).
    const out: V1Pod[] = [];
    for (const w of this.#watches.values()) if (w.informer.hasSynced()) out.push(...w.informer.list(namespace));
    return out;
  }

  get(namespace: string, name: string): V1Pod | undefined {
    if (this.#honoured !== true) return this.#o.full.get(namespace, name);
    for (const w of this.#watches.values()) {
      const pod = w.informer.hasSynced() ? w.informer.get(namespace, name) : undefined;
      if (pod) return pod;
    }
    return undefined;
  }

  size(): number {
    if (this.#honoured !== true) return this.#o.full.size();
    let n = 0;
    for (const w of this.#watches.values()) n += w.informer.size();
    return n;
  }

  async start(signal: AbortSignal): Promise<void> {
    this.#honoured = await this.#o.honoured(signal);
    this.#detected?.();
    this.#o.log.info(
      { sharded: this.#honoured },
      this.#honoured ? 'pod watch per held bucket' : 'pod watch over every pod',
    );
    if (!this.#honoured) {
      if (!signal.aborted) await this.#o.full.start(signal);
      return;
    }
    this.heldChanged();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    for (const b of [...this.#watches.keys()]) this.#stop(b, false);
  }

  /** The held buckets changed: start and stop bucket watches to match (no-op until sharded). */
  heldChanged(): void {
    if (this.#honoured !== true) return;
    const plan = podWatchPlan({ held: this.#o.held(), buckets: this.#o.buckets, honoured: true });
    const { start, stop } = podWatchChanges(new Set(this.#watches.keys()), plan);
    for (const b of stop) this.#stop(b, true);
    for (const [b, selector] of start) this.#start(b, selector);
  }

  #start(bucket: number, selector: string): void {
    const informer = this.#o.bucketInformer(selector);
    const watch: BucketWatch = { informer, abort: new AbortController() };
    this.#watches.set(bucket, watch);
    informer.on(this.#forward(() => this.#watches.get(bucket) === watch));
    informer.start(watch.abort.signal).catch((err: unknown) => {
      this.#o.log.warn({ err: String(err), bucket }, 'bucket pod watch failed');
    });
    informer.waitForSync(watch.abort.signal).then(
      () => {
        this.#o.log.info({ bucket, pods: informer.size() }, 'bucket pods listed');
        this.#o.onListed(bucket);
      },
      () => undefined, // released before its list came back
    );
  }

  #stop(bucket: number, notify: boolean): void {
    const watch = this.#watches.get(bucket);
    if (!watch) return;
    // Gone from list() and get() at once, with no delete event: the pods live on, another replica's.
    this.#watches.delete(bucket);
    watch.abort.abort(new Error(`bucket ${bucket} released`));
    this.#o.log.info({ bucket, pods: watch.informer.size() }, 'bucket pods dropped');
    if (notify) this.#o.onDropped(bucket);
  }

  /** Handlers forwarding a source's events while `live()` (a stopped bucket's late events are dropped). */
  #forward(live: () => boolean): InformerHandlers<V1Pod> {
    return {
      add: (obj) => live() && this.#emit((h) => h.add?.(obj)),
      update: (obj, old) => live() && this.#emit((h) => h.update?.(obj, old)),
      delete: (obj) => live() && this.#emit((h) => h.delete?.(obj)),
    };
  }

  #emit(call: (h: InformerHandlers<V1Pod>) => void): void {
    for (const h of this.#handlers) {
      try {
        call(h);
      } catch (err) {
        this.#o.log.warn({ err: String(err) }, 'pod handler failed');
      }
    }
  }
}

/** The pod list/watch calls of one bucket: the selector rides on both (list.ts's query, and the watch path). */
export function bucketPodSource(kc: KubeConfig, selector: string, transform: (pod: V1Pod) => V1Pod) {
  const base = (ns: string | undefined) => (ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods');
  // client-node's ListWatch sends only labelSelector and fieldSelector; its Watch keeps a query
  // already in the path and adds its own parameters to it.
  return clientNodeInformerFactory<V1Pod>(kc, {
    path: (ns) => `${base(ns)}?shardSelector=${encodeURIComponent(selector)}`,
    list: (ns, signal) => listAll<V1Pod>(kc, base(ns), { transform, signal, shardSelector: selector }),
  });
}

/**
 * Whether the API server honours shardSelector: one LIST of at most one pod with bucket 0's
 * selector, whose `metadata.shardInfo.selector` must echo it. Errors are retried a few times;
 * still unknown, the full watch is chosen: it is always correct, only larger.
 */
export async function detectShardSelector(
  deps: { kc: KubeConfig; namespaces: readonly string[]; buckets: number; clock: Clock; log: Logger },
  signal: AbortSignal,
): Promise<boolean> {
  const sent = shardSelector([0], deps.buckets);
  const ns = deps.namespaces[0];
  const path = ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods';
  for (let attempt = 1; attempt <= DETECT_ATTEMPTS && !signal.aborted; attempt++) {
    const attemptAbort = new AbortController();
    const onAbort = () => attemptAbort.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = deps.clock.setTimeout(() => attemptAbort.abort(new Error('timed out')), DETECT_TIMEOUT_MS, {
      unref: true,
    });
    try {
      const query = { limit: '1', shardSelector: sent };
      const text = await rest(deps.kc, { method: 'GET', path, query, signal: attemptAbort.signal });
      return shardSelectorHonoured(sent, JSON.parse(text) as ShardedListMeta);
    } catch (err) {
      deps.log.warn({ err: String(err), attempt }, 'could not check whether the API server honours shardSelector');
      if (attempt < DETECT_ATTEMPTS) await deps.clock.sleep(1000 * 2 ** (attempt - 1), signal).catch(() => undefined);
    } finally {
      deps.clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
  return false;
}
