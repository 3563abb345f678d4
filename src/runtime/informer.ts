import {
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
} from '@kubernetes/client-node';
import { type Logger, pino } from 'pino';
import { type Clock, realClock, type TimerHandle } from './clock.ts';
import type { CacheRunnable } from './manager.ts';

// A resilient wrapper over client-node's informer (ListWatch). What client-node 2.0.1 already
// does: it re-watches from the last resourceVersion when a watch ends or is silent for 30 s (its
// inactivity timeout, which also means a healthy but quiet watch reconnects and emits 'connect'
// at least every ~30 s), and relists on 410 Gone. What it does not do, and this module adds:
// - after 'error' (a failed list, a non-200 watch, a reset stream) it stops for good, so we
//   restart it with capped exponential backoff;
// - a list or connect that hangs is never noticed, so no event nor connect for stallTimeoutMs
//   restarts it;
// - a periodic full relist (resync) as a safety net against any event lost in between;
// - objects are normalised at the boundary before the cache and the handlers see them.
//
// Every restart builds a fresh informer instead of calling stop()/start() on the old one: a
// stopped ListWatch reports its own abort as an 'error' later, and its late done-handler aborts
// whatever watch the instance holds by then, i.e. the new one. A fresh instance relists, and we
// diff that list against our cache so handlers only see real changes (and deletions missed
// while we were away). The old instance's late callbacks are ignored by generation number.
// client-node's stop() cannot abort a list in flight, and once that list returns the stopped
// ListWatch opens a watch anyway: so each instance's list gets a signal aborted at teardown, and
// an instance whose start() resolves after its teardown is stopped again (closing that watch).

/** A client-node informer with its cache, as returned by `makeInformer`. */
export type ClientInformer<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/**
 * Creates a fresh, not yet started informer for one namespace (undefined = cluster-wide); its
 * list should stop when `signal` aborts (the informer was torn down).
 */
export type InformerFactory<T extends KubernetesObject> = (
  namespace: string | undefined,
  signal: AbortSignal,
) => ClientInformer<T>;

/** Builds an InformerFactory on client-node's `makeInformer` from a path and a list call per namespace. */
export function clientNodeInformerFactory<T extends KubernetesObject>(
  kc: KubeConfig,
  opts: {
    /** e.g. ns => ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods' */
    path: (namespace: string | undefined) => string;
    /** The matching list call (with the same label selector), aborted by `signal`. */
    list: (namespace: string | undefined, signal: AbortSignal) => Promise<KubernetesListObject<T>>;
    labelSelector?: string;
  },
): InformerFactory<T> {
  return (namespace, signal) =>
    makeInformer<T>(kc, opts.path(namespace), () => opts.list(namespace, signal), opts.labelSelector);
}

/** Event handlers; each receives normalised objects, and a throwing handler is logged and ignored. */
export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(obj: T, old: T): void;
  delete?(obj: T): void;
}

/** Why an informer was restarted (for logs and metrics). */
export type RestartReason = 'error' | 'stall' | 'resync';

export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** Names the informer in logs, e.g. "pods". */
  name: string;
  factory: InformerFactory<T>;
  /** Brings list objects and watch objects to one shape (see normalize.ts). */
  normalize: (obj: T) => T;
  /** Namespaces to watch, one informer each; undefined or empty = cluster-wide. */
  namespaces?: readonly string[];
  clock?: Clock;
  logger?: Logger;
  /** Full relist period, jittered up to +10%. Default 10 min; 0 disables. */
  resyncMs?: number;
  /** Restart when neither an event nor a (re)connect was seen for this long. Default 5 min; 0 disables. */
  stallTimeoutMs?: number;
  /** Restart backoff after errors: base doubles per consecutive failure up to max. Defaults 1 s and 30 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  /** Called on every restart, e.g. to count restarts in metrics. */
  onRestart?: (reason: RestartReason, namespace: string | undefined) => void;
}

// One informer and its restart state, per watched namespace (or one for the whole cluster).
interface Scope<T extends KubernetesObject> {
  namespace: string | undefined;
  generation: number;
  informer: ClientInformer<T> | undefined;
  /** Aborts the current informer's list at teardown. */
  abort: AbortController | undefined;
  synced: boolean;
  failures: number;
  healthySince: number | undefined;
  lastActivity: number;
  stallTimer: TimerHandle | undefined;
  resyncTimer: TimerHandle | undefined;
  backoffTimer: TimerHandle | undefined;
}

/** A self-healing informer with a normalised cache, usable as a Manager cache. */
export class ResilientInformer<T extends KubernetesObject> implements CacheRunnable {
  readonly name: string;
  readonly #factory: InformerFactory<T>;
  readonly #normalize: (obj: T) => T;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #resyncMs: number;
  readonly #stallMs: number;
  readonly #backoffBase: number;
  readonly #backoffMax: number;
  readonly #random: () => number;
  readonly #onRestart: ((reason: RestartReason, namespace: string | undefined) => void) | undefined;
  readonly #scopes: Scope<T>[];
  // namespace ('' for cluster-scoped objects) -> name -> normalised object.
  readonly #cache = new Map<string, Map<string, T>>();
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #syncWaiters = new Set<() => void>();
  #running = false;
  #stopped = false;

  constructor(opts: ResilientInformerOptions<T>) {
    this.name = opts.name;
    this.#factory = opts.factory;
    this.#normalize = opts.normalize;
    this.#clock = opts.clock ?? realClock;
    this.#log = (opts.logger ?? pino({ level: 'silent' })).child({ informer: opts.name });
    this.#resyncMs = opts.resyncMs ?? 600_000;
    this.#stallMs = opts.stallTimeoutMs ?? 300_000;
    this.#backoffBase = Math.max(1, opts.backoffBaseMs ?? 1_000);
    this.#backoffMax = Math.max(this.#backoffBase, opts.backoffMaxMs ?? 30_000);
    this.#random = opts.random ?? Math.random;
    this.#onRestart = opts.onRestart;
    const namespaces = [...new Set(opts.namespaces ?? [])];
    const targets: Array<string | undefined> = namespaces.length > 0 ? namespaces : [undefined];
    this.#scopes = targets.map((namespace) => ({
      namespace,
      generation: 0,
      informer: undefined,
      abort: undefined,
      synced: false,
      failures: 0,
      healthySince: undefined,
      lastActivity: 0,
      stallTimer: undefined,
      resyncTimer: undefined,
      backoffTimer: undefined,
    }));
  }

  /** Registers handlers (may be called before start) and returns a function that removes them. */
  on(handlers: InformerHandlers<T>): () => void {
    this.#handlers.add(handlers);
    return () => this.#handlers.delete(handlers);
  }

  /** True once every watched namespace has been listed at least once. */
  hasSynced(): boolean {
    return this.#scopes.every((s) => s.synced);
  }

  /** Resolves once `hasSynced()`; rejects with `signal.reason` if the signal aborts first. */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.hasSynced()) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#syncWaiters.delete(done);
        reject(signal.reason);
      };
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#syncWaiters.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The cached objects of one namespace, or of all when `namespace` is undefined; never mutate them. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.#cache.get(namespace)?.values() ?? [])];
    const all: T[] = [];
    for (const byName of this.#cache.values()) all.push(...byName.values());
    return all;
  }

  /** One cached object ('' namespace for cluster-scoped), or undefined; never mutate it. */
  get(namespace: string, name: string): T | undefined {
    return this.#cache.get(namespace)?.get(name);
  }

  /** Number of cached objects. */
  size(): number {
    let n = 0;
    for (const byName of this.#cache.values()) n += byName.size;
    return n;
  }

  /** Runs the informers until `signal` aborts; the cache stays readable afterwards. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#running || this.#stopped) throw new Error(`informer ${this.name} already started`);
    if (signal.aborted) return;
    this.#running = true;
    for (const scope of this.#scopes) this.#launch(scope);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.#stopped = true;
    this.#running = false;
    await Promise.all(
      this.#scopes.map((scope) => {
        if (scope.backoffTimer !== undefined) this.#clock.clearTimeout(scope.backoffTimer);
        scope.backoffTimer = undefined;
        return this.#teardown(scope);
      }),
    );
    this.#log.info('informer stopped');
  }

  #launch(scope: Scope<T>): void {
    scope.backoffTimer = undefined;
    if (this.#stopped) return;
    const generation = ++scope.generation;
    const current = (): boolean => !this.#stopped && scope.generation === generation;
    const abort = new AbortController();
    const informer = this.#factory(scope.namespace, abort.signal);
    scope.informer = informer;
    scope.abort = abort;
    const activity = (): void => {
      if (current()) scope.lastActivity = this.#clock.now();
    };
    informer.on('add', (obj) => {
      activity();
      if (current()) this.#upsert(obj);
    });
    informer.on('update', (obj) => {
      activity();
      if (current()) this.#upsert(obj);
    });
    informer.on('delete', (obj) => {
      activity();
      if (current()) this.#remove(obj);
    });
    informer.on('connect', activity);
    informer.on('error', (err) => {
      if (current()) this.#onError(scope, err);
    });
    scope.lastActivity = this.#clock.now();
    this.#armStall(scope);
    // start() resolves once the list is in the informer's cache and the watch is open; a failed
    // list is reported through 'error' (which moved us to a new generation), not by rejecting.
    informer.start().then(
      () => {
        if (current()) this.#onListed(scope, informer);
        else void this.#stopQuietly(informer); // torn down meanwhile: close the watch it opened since
      },
      (err: unknown) => {
        if (current()) this.#onError(scope, err);
      },
    );
  }

  #onListed(scope: Scope<T>, informer: ClientInformer<T>): void {
    this.#prune(scope, informer);
    scope.healthySince = this.#clock.now();
    if (this.#resyncMs > 0) {
      const delay = this.#resyncMs * (1 + 0.1 * this.#random());
      scope.resyncTimer = this.#clock.setTimeout(() => this.#restart(scope, 'resync'), delay);
    }
    if (!scope.synced) {
      scope.synced = true;
      this.#log.info({ namespace: scope.namespace, objects: this.size() }, 'informer synced');
      if (this.hasSynced()) for (const done of [...this.#syncWaiters]) done();
      if (this.hasSynced()) this.#syncWaiters.clear();
    }
  }

  #onError(scope: Scope<T>, err: unknown): void {
    const now = this.#clock.now();
    // A watch that stayed healthy for a full max-backoff period earns a fresh start; one that
    // fails right after each relist keeps backing off instead of relisting in a tight loop.
    if (scope.healthySince !== undefined && now - scope.healthySince >= this.#backoffMax) scope.failures = 0;
    const delay = Math.min(this.#backoffBase * 2 ** Math.min(scope.failures, 30), this.#backoffMax);
    scope.failures++;
    this.#log.warn({ err, namespace: scope.namespace, delayMs: delay, failures: scope.failures }, 'informer failed');
    void this.#teardown(scope);
    this.#notifyRestart('error', scope);
    scope.backoffTimer = this.#clock.setTimeout(() => this.#launch(scope), delay);
  }

  #restart(scope: Scope<T>, reason: 'stall' | 'resync'): void {
    if (this.#stopped) return;
    const log = reason === 'stall' ? this.#log.warn.bind(this.#log) : this.#log.debug.bind(this.#log);
    log({ namespace: scope.namespace, reason }, 'restarting informer');
    void this.#teardown(scope);
    this.#notifyRestart(reason, scope);
    this.#launch(scope);
  }

  #notifyRestart(reason: RestartReason, scope: Scope<T>): void {
    try {
      this.#onRestart?.(reason, scope.namespace);
    } catch (err) {
      this.#log.warn({ err }, 'onRestart hook failed');
    }
  }

  // Invalidates the current generation and stops its informer.
  async #teardown(scope: Scope<T>): Promise<void> {
    scope.generation++;
    scope.healthySince = undefined;
    if (scope.stallTimer !== undefined) this.#clock.clearTimeout(scope.stallTimer);
    if (scope.resyncTimer !== undefined) this.#clock.clearTimeout(scope.resyncTimer);
    scope.stallTimer = undefined;
    scope.resyncTimer = undefined;
    const old = scope.informer;
    scope.informer = undefined;
    scope.abort?.abort(new Error(`informer ${this.name} torn down`));
    scope.abort = undefined;
    if (old !== undefined) await this.#stopQuietly(old);
  }

  async #stopQuietly(informer: ClientInformer<T>): Promise<void> {
    try {
      await informer.stop();
    } catch (err) {
      this.#log.debug({ err }, 'stopping old informer failed');
    }
  }

  // One timer per scope, re-armed lazily from lastActivity, so events never touch timers.
  #armStall(scope: Scope<T>): void {
    if (this.#stallMs <= 0) return;
    const due = scope.lastActivity + this.#stallMs;
    scope.stallTimer = this.#clock.setTimeout(
      () => {
        scope.stallTimer = undefined;
        if (this.#clock.now() - scope.lastActivity >= this.#stallMs) this.#restart(scope, 'stall');
        else this.#armStall(scope);
      },
      Math.max(0, due - this.#clock.now()),
    );
  }

  #upsert(raw: T): void {
    const obj = this.#normalize(raw);
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let byName = this.#cache.get(namespace);
    if (byName === undefined) {
      byName = new Map();
      this.#cache.set(namespace, byName);
    }
    const old = byName.get(name);
    if (old === undefined) {
      byName.set(name, obj);
      this.#emit((h) => h.add?.(obj));
      return;
    }
    // A relist after a restart replays every object; only real changes reach the handlers.
    const rv = obj.metadata?.resourceVersion;
    if (rv !== undefined && rv === old.metadata?.resourceVersion) return;
    byName.set(name, obj);
    this.#emit((h) => h.update?.(obj, old));
  }

  #remove(raw: T): void {
    const obj = this.#normalize(raw);
    const namespace = obj.metadata?.namespace ?? '';
    const byName = this.#cache.get(namespace);
    if (byName === undefined || !byName.delete(obj.metadata?.name ?? '')) return;
    if (byName.size === 0) this.#cache.delete(namespace);
    this.#emit((h) => h.delete?.(obj));
  }

  // After a (re)list, whatever we hold that the fresh informer does not was deleted meanwhile.
  #prune(scope: Scope<T>, informer: ClientInformer<T>): void {
    const namespaces = scope.namespace === undefined ? [...this.#cache.keys()] : [scope.namespace];
    for (const namespace of namespaces) {
      const byName = this.#cache.get(namespace);
      if (byName === undefined) continue;
      for (const [name, obj] of byName) {
        if (informer.get(name, namespace === '' ? undefined : namespace) !== undefined) continue;
        byName.delete(name);
        this.#emit((h) => h.delete?.(obj));
      }
      if (byName.size === 0) this.#cache.delete(namespace);
    }
  }

  #emit(call: (h: InformerHandlers<T>) => void): void {
    for (const handlers of this.#handlers) {
      try {
        call(handlers);
      } catch (err) {
        this.#log.error({ err }, 'informer handler failed');
      }
    }
  }
}
