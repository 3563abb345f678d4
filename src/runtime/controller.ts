import { randomUUID } from 'node:crypto';
import { type Logger, pino } from 'pino';
import { type Clock, realClock } from './clock.ts';
import type { Runnable } from './manager.ts';
import type { WorkQueueMetricsProvider } from './queue-metrics.ts';
import type { RateLimiter } from './ratelimit.ts';
import { WorkQueue } from './workqueue.ts';

// The reconcile loop of controller-runtime: workers take keys from a WorkQueue and call the
// Reconciler. A Request names an object, never an event: the reconciler reads the whole current
// state from the cache, so it does not matter which event (or how many) caused the call.

/** Identifies the object to reconcile; `namespace` is '' for cluster-scoped objects. */
export interface Request {
  readonly namespace: string;
  readonly name: string;
}

/** What to do after a successful reconcile: `requeueAfterMs` schedules periodic work (not a retry). */
export interface Result {
  requeueAfterMs?: number;
}

/** Per-reconcile context handed to the reconciler. */
export interface ReconcileContext {
  /** Aborted when the reconcile times out or the controller stops; pass it to every API call. */
  readonly signal: AbortSignal;
  /** A child logger carrying controller, key and reconcileID. */
  readonly log: Logger;
  /** How many consecutive failed attempts preceded this one (0 after a success). */
  readonly retries: number;
}

/** The reconcile function: make the world match the desired state of `request`, idempotently. */
export type Reconciler = (request: Request, ctx: ReconcileContext) => Promise<Result>;

/** How one reconcile ended, as reported to metrics. */
export type ReconcileOutcome = 'success' | 'error' | 'timeout';

/** Metrics hooks: called once per reconcile; a throwing hook is logged and ignored. */
export interface ControllerHooks {
  onReconcile?(event: {
    controller: string;
    request: Request;
    outcome: ReconcileOutcome;
    durationSeconds: number;
    error?: unknown;
  }): void;
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics. */
  name: string;
  reconcile: Reconciler;
  /** Concurrent workers. Default 1. */
  workers?: number;
  /** A reconcile still running after this long is aborted and retried with backoff. Default 60 s. */
  reconcileTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
  hooks?: ControllerHooks;
  /** Per-key retry backoff; ignored when `queue` is given. */
  rateLimiter?: RateLimiter;
  /** A queue to use instead of a fresh one (e.g. shared with the code that enqueues). */
  queue?: WorkQueue;
  /** Records the fresh queue's workqueue_* metrics under `name`; ignored when `queue` is given. */
  metricsProvider?: WorkQueueMetricsProvider;
}

/** Thrown into a reconcile's signal when it exceeds the reconcile timeout. */
export class ReconcileTimeoutError extends Error {
  override readonly name = 'ReconcileTimeoutError';
}

/** Encodes a Request as a workqueue key: "namespace/name", or "name" when cluster-scoped. */
export function keyOf(request: Request): string {
  return request.namespace === '' ? request.name : `${request.namespace}/${request.name}`;
}

/** Decodes a workqueue key made by `keyOf` (names cannot contain '/'). */
export function requestFromKey(key: string): Request {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

type Settled = { ok: true; value: Result | undefined } | { ok: false; error: unknown };

/** Runs a Reconciler over a WorkQueue with N workers, per-reconcile timeouts and error containment. */
export class Controller implements Runnable {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly #reconcile: Reconciler;
  readonly #workers: number;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #hooks: ControllerHooks;
  // Reconciles that timed out but have not settled yet. Their keys stay in the queue's processing
  // set (so the same key never runs twice at once); bounded by the worker count so that hung
  // reconciles cannot pile up without end.
  #abandoned = 0;
  #started = false;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.#reconcile = opts.reconcile;
    this.#workers = Math.max(1, Math.floor(opts.workers ?? 1));
    this.#timeoutMs = opts.reconcileTimeoutMs ?? 60_000;
    this.#clock = opts.clock ?? realClock;
    this.#log = (opts.logger ?? pino({ level: 'silent' })).child({ controller: opts.name });
    this.#hooks = opts.hooks ?? {};
    this.queue =
      opts.queue ??
      new WorkQueue({
        clock: this.#clock,
        name: opts.name,
        ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
        ...(opts.metricsProvider ? { metricsProvider: opts.metricsProvider } : {}),
      });
  }

  /** Queues `request` for reconciliation (collapsed with any pending one for the same object). */
  enqueue(request: Request): void {
    this.queue.add(keyOf(request));
  }

  /** Queues `request` after `delayMs`, unless it is already due sooner. */
  enqueueAfter(request: Request, delayMs: number): void {
    this.queue.addAfter(keyOf(request), delayMs);
  }

  /** Keys ready to be reconciled (the workqueue depth metric). */
  queueDepth(): number {
    return this.queue.len();
  }

  /**
   * Runs the workers until `signal` aborts, then stops handing out keys and resolves once every
   * in-flight reconcile has settled (the Manager bounds that wait with its grace period).
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error(`controller ${this.name} already started`);
    this.#started = true;
    const drained = new Promise<void>((resolve) => {
      const stop = (): void => void this.queue.shutDownWithDrain().then(resolve);
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    });
    this.#log.info({ workers: this.#workers }, 'starting workers');
    const workers = Array.from({ length: this.#workers }, () => this.#worker(signal));
    await Promise.all(workers);
    await drained;
    this.#log.info('workers stopped');
  }

  async #worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      await this.#processOne(key, signal);
    }
  }

  async #processOne(key: string, root: AbortSignal): Promise<void> {
    const request = requestFromKey(key);
    const log = this.#log.child({ key, reconcileID: randomUUID() });
    const started = this.#clock.now();
    const ac = new AbortController();
    const onRootAbort = (): void => ac.abort(root.reason);
    root.addEventListener('abort', onRootAbort, { once: true });
    let timedOut = false;
    let onTimeout: () => void = () => {};
    const timeout = new Promise<void>((resolve) => {
      onTimeout = resolve;
    });
    const timer = this.#clock.setTimeout(() => {
      timedOut = true;
      ac.abort(new ReconcileTimeoutError(`reconcile of ${key} exceeded ${this.#timeoutMs} ms`));
      onTimeout();
    }, this.#timeoutMs);

    const ctx: ReconcileContext = { signal: ac.signal, log, retries: this.queue.numRequeues(key) };
    // The async wrapper turns a synchronous throw into a rejection: a bad reconcile never kills a worker.
    const run: Promise<Settled> = (async () => this.#reconcile(request, ctx))().then(
      (value) => ({ ok: true, value }),
      (error: unknown) => ({ ok: false, error }),
    );
    const finish = (settled: Settled): void => {
      this.#clock.clearTimeout(timer);
      root.removeEventListener('abort', onRootAbort);
      this.#handle(key, request, log, settled, timedOut, root.aborted, started);
      this.queue.done(key);
    };

    const first = await Promise.race([run, timeout.then(() => undefined)]);
    if (first !== undefined) {
      finish(first);
      return;
    }
    // Timed out: the reconcile ignored its signal. Free this worker if we can afford it, but keep
    // the key held until the reconcile really ends.
    log.warn({ timeoutMs: this.#timeoutMs }, 'reconcile timed out; it is still running and will be retried');
    if (this.#abandoned >= this.#workers) {
      finish(await run);
      return;
    }
    this.#abandoned++;
    void run.then((settled) => {
      this.#abandoned--;
      finish(settled);
    });
  }

  #handle(
    key: string,
    request: Request,
    log: Logger,
    settled: Settled,
    timedOut: boolean,
    stopping: boolean,
    started: number,
  ): void {
    const durationSeconds = Math.max(0, this.#clock.now() - started) / 1000;
    let outcome: ReconcileOutcome;
    let error: unknown;
    if (timedOut) {
      outcome = 'timeout';
      error = settled.ok ? new ReconcileTimeoutError(`reconcile of ${key} timed out`) : settled.error;
      this.queue.addRateLimited(key);
    } else if (!settled.ok) {
      outcome = 'error';
      error = settled.error;
      // A reconcile cut short by shutdown is expected, not an error worth paging on.
      if (stopping) log.info({ err: error }, 'reconcile aborted by shutdown');
      else log.error({ err: error, retries: this.queue.numRequeues(key) }, 'reconcile failed; retrying with backoff');
      this.queue.addRateLimited(key);
    } else {
      outcome = 'success';
      // Success resets the backoff; periodic work is a schedule, not a retry.
      this.queue.forget(key);
      const after = settled.value?.requeueAfterMs;
      if (typeof after === 'number' && Number.isFinite(after)) this.queue.addAfter(key, Math.max(0, after));
      log.debug({ durationSeconds, requeueAfterMs: after }, 'reconciled');
    }
    try {
      this.#hooks.onReconcile?.({
        controller: this.name,
        request,
        outcome,
        durationSeconds,
        ...(error !== undefined ? { error } : {}),
      });
    } catch (err) {
      log.warn({ err }, 'controller hook failed');
    }
  }
}
