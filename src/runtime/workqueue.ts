import { type Clock, MAX_TIMER_DELAY_MS, realClock, type TimerHandle } from './clock.ts';
import { QueueMetrics, type WorkQueueMetricsProvider } from './queue-metrics.ts';
import { ItemExponentialFailureRateLimiter, type RateLimiter } from './ratelimit.ts';

// A keyed work queue after client-go's workqueue (queue.go, delaying_queue.go,
// rate_limiting_queue.go) with kube-rs's "earliest scheduled time wins" for delayed adds.
// Keys are strings ("namespace/name"); events are collapsed into keys on purpose: reconcile is
// level-triggered, so ten updates of one pod must cost one reconcile, not ten.

export interface WorkQueueOptions {
  clock?: Clock;
  /** Per-key retry delays for `addRateLimited`. Default: exponential, 100 ms base, 30 s cap. */
  rateLimiter?: RateLimiter;
  /**
   * Upper bound on distinct keys held (ready + delayed). Adds of new keys beyond it are dropped and
   * counted in `dropped()`: it only guards memory against a runaway producer; a level-triggered
   * resync brings dropped keys back. Default 1,000,000.
   */
  maxKeys?: number;
  /** Names the queue in the workqueue_* metrics (client-go's QueueConfig.Name); needs `metricsProvider`. */
  name?: string;
  /** Where the client-go-compatible workqueue metrics go; none: not recorded. */
  metricsProvider?: WorkQueueMetricsProvider;
}

interface HeapEntry {
  due: number;
  key: string;
}

/** A FIFO of unique keys with no-concurrent-processing, earliest-wins delays and per-key backoff. */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #rateLimiter: RateLimiter;
  readonly #maxKeys: number;

  // queue: the order in which keys are handed out. Every key in it is also in `dirty`, and none is
  // in `processing`. An array with a moving head avoids O(n) shift() on 10,000+ keys.
  #queue: string[] = [];
  #head = 0;

  // dirty: keys that need processing. It exists so a key is never queued twice: adding a key that
  // is already dirty is a no-op, which is what collapses bursts of events into one reconcile.
  readonly #dirty = new Set<string>();

  // processing: keys a worker holds right now. It exists so a key is never processed by two
  // workers at once: a key re-added while processing is only marked dirty, and done() puts it
  // back in the queue, so the second reconcile starts after the first finished and sees its writes.
  readonly #processing = new Set<string>();

  // waiting: the deadline of each delayed key. One entry per key, because the earliest deadline
  // wins (kube-rs): "reconcile in 10 s" followed by "reconcile in 1 s" means in 1 s, and a later
  // deadline for a key already waiting is ignored.
  readonly #waiting = new Map<string, number>();

  // heap: a min-heap of (deadline, key) so that one timer serves all delayed keys; a timer per key
  // would mean 10,000+ live timers. Entries whose deadline no longer matches `waiting` are stale
  // and skipped lazily; the heap is compacted when stale entries dominate, keeping it bounded.
  #heap: HeapEntry[] = [];
  #timer: TimerHandle | undefined;
  #timerDue = Number.POSITIVE_INFINITY;

  // getters: pending get() calls, served in FIFO order as keys arrive.
  readonly #getters: Array<(key: string | undefined) => void> = [];
  #wakeScheduled = false;

  #shuttingDown = false;
  readonly #drainWaiters: Array<() => void> = [];
  #dropped = 0;
  readonly #metrics: QueueMetrics | undefined;

  constructor(opts: WorkQueueOptions = {}) {
    this.#clock = opts.clock ?? realClock;
    this.#rateLimiter = opts.rateLimiter ?? new ItemExponentialFailureRateLimiter();
    this.#maxKeys = opts.maxKeys ?? 1_000_000;
    if (opts.metricsProvider && !opts.name) throw new Error('a WorkQueue with a metricsProvider needs a name');
    if (opts.metricsProvider) this.#metrics = new QueueMetrics(opts.name ?? '', opts.metricsProvider, this.#clock);
  }

  /** Marks `key` as needing processing now; cancels any later delayed add of it (earliest wins). */
  add(key: string): void {
    if (this.#shuttingDown) return;
    if (this.#waiting.delete(key)) this.#maybeCompact();
    if (this.#dirty.has(key)) return;
    if (this.#dirty.size + this.#waiting.size >= this.#maxKeys) {
      this.#dropped++;
      return;
    }
    this.#metrics?.add(key);
    this.#dirty.add(key);
    // A key being processed waits in `dirty` until done() re-queues it.
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  /** Adds `key` after `delayMs`, unless it is already ready or due earlier. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    this.#metrics?.retry();
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    // Dirty means it runs now, or right after the current reconcile: sooner than any delay.
    if (this.#dirty.has(key)) return;
    const due = this.#clock.now() + delayMs;
    const current = this.#waiting.get(key);
    if (current !== undefined && current <= due) return;
    if (current === undefined && this.#dirty.size + this.#waiting.size >= this.#maxKeys) {
      this.#dropped++;
      return;
    }
    this.#waiting.set(key, due);
    this.#heapPush({ due, key });
    this.#maybeCompact();
    this.#arm();
  }

  /** Adds `key` after its per-key backoff delay (for retries after an error). */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    this.addAfter(key, this.#rateLimiter.when(key));
  }

  /** Clears the retry history of `key`, so its next failure starts from the base delay again. */
  forget(key: string): void {
    this.#rateLimiter.forget(key);
  }

  /** How many times `key` has been retried since the last `forget`. */
  numRequeues(key: string): number {
    return this.#rateLimiter.numRequeues(key);
  }

  /**
   * Resolves with the next key to process, which the caller must pass to `done()`; resolves with
   * undefined once the queue is shutting down.
   */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#pop();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /** Releases `key` after processing; if it was re-added meanwhile, it is queued again now. */
  done(key: string): void {
    if (!this.#processing.delete(key)) return;
    this.#metrics?.done(key);
    if (this.#shuttingDown) {
      this.#dirty.delete(key);
      if (this.#processing.size === 0) this.#releaseDrainWaiters();
      return;
    }
    if (this.#dirty.has(key)) this.#push(key);
  }

  /**
   * Stops handing out keys: pending and future `get()` calls resolve undefined, adds are ignored.
   * Unlike client-go, queued keys are not handed out after shutdown: on stop, the next leader or
   * process reconciles everything anyway, and starting new work only delays the exit.
   */
  shutDown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    this.#queue = [];
    this.#head = 0;
    this.#heap = [];
    this.#waiting.clear();
    for (const key of this.#dirty) this.#metrics?.discard(key);
    for (const key of this.#dirty) if (!this.#processing.has(key)) this.#dirty.delete(key);
    for (const resolve of this.#getters.splice(0)) resolve(undefined);
    if (this.#processing.size === 0) this.#releaseDrainWaiters();
  }

  /** Shuts down and resolves once every key handed out has been passed to `done()`. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** True once `shutDown` has been called. */
  shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Number of keys ready to be handed out (the workqueue depth metric). */
  len(): number {
    return this.#queue.length - this.#head;
  }

  /** Number of keys waiting for a delayed add. */
  lenDelayed(): number {
    return this.#waiting.size;
  }

  /** Number of keys currently held by workers. */
  lenProcessing(): number {
    return this.#processing.size;
  }

  /** Number of adds dropped because `maxKeys` was reached. */
  dropped(): number {
    return this.#dropped;
  }

  // Appends the key; idle getters are woken in a microtask rather than handed the key at once,
  // so that a burst of adds in one tick (e.g. a relist) still collapses into one reconcile.
  #push(key: string): void {
    this.#queue.push(key);
    if (this.#getters.length > 0 && !this.#wakeScheduled) {
      this.#wakeScheduled = true;
      queueMicrotask(() => this.#wakeGetters());
    }
  }

  #wakeGetters(): void {
    this.#wakeScheduled = false;
    while (this.#getters.length > 0 && !this.#shuttingDown) {
      const key = this.#pop();
      if (key === undefined) return;
      this.#getters.shift()!(key);
    }
  }

  #pop(): string | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const key = this.#queue[this.#head]!;
    this.#head++;
    // Compact the array once half of it is consumed, so memory follows the live length.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#dirty.delete(key);
    this.#processing.add(key);
    this.#metrics?.get(key);
    return key;
  }

  #releaseDrainWaiters(): void {
    this.#metrics?.close();
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  // Arms the single timer for the earliest live deadline.
  #arm(): void {
    const top = this.#peekLive();
    if (top === undefined) {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerDue = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.#timer !== undefined && this.#timerDue <= top.due) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerDue = top.due;
    const delay = Math.min(Math.max(0, top.due - this.#clock.now()), MAX_TIMER_DELAY_MS);
    this.#timer = this.#clock.setTimeout(() => this.#onTimer(), delay);
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    for (let top = this.#peekLive(); top !== undefined && top.due <= now; top = this.#peekLive()) {
      this.#heapPop();
      this.#waiting.delete(top.key);
      this.add(top.key);
    }
    this.#arm();
  }

  // Drops stale entries from the top and returns the earliest live one.
  #peekLive(): HeapEntry | undefined {
    for (let top = this.#heap[0]; top !== undefined; top = this.#heap[0]) {
      if (this.#waiting.get(top.key) === top.due) return top;
      this.#heapPop();
    }
    return undefined;
  }

  #maybeCompact(): void {
    if (this.#heap.length <= 64 || this.#heap.length <= 2 * this.#waiting.size) return;
    const live: HeapEntry[] = [];
    for (const [key, due] of this.#waiting) live.push({ due, key });
    live.sort((a, b) => a.due - b.due); // a sorted array is a valid min-heap
    this.#heap = live;
  }

  #heapPush(entry: HeapEntry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.due <= entry.due) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #heapPop(): HeapEntry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && heap[r]!.due < heap[l]!.due ? r : l;
      if (heap[child]!.due >= last.due) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
