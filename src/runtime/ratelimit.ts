import { type Clock, realClock, type TimerHandle } from './clock.ts';

// Two kinds of rate limiting live here, as in client-go's workqueue/default_rate_limiters.go:
// a per-key limiter that spaces out *retries* of one failing key, and a token bucket that caps
// the *global* rate of API writes whatever key they belong to.

/** client-go's workqueue.RateLimiter: how long a key should wait before its next retry. */
export interface RateLimiter {
  /** Records one more failure of `key` and returns the delay (ms) before it may be retried. */
  when(key: string): number;
  /** Clears the failure history of `key` (call on success, or when the key is gone). */
  forget(key: string): void;
  /** How many failures of `key` have been recorded since the last `forget`. */
  numRequeues(key: string): number;
}

export interface ExponentialBackoffOptions {
  /** Delay after the first failure. Default 100 ms. */
  baseDelayMs?: number;
  /** Upper bound of the delay. Default 30 s: retries of an API call must stay frequent. */
  maxDelayMs?: number;
  /** At most this many keys keep a failure count; the oldest is evicted beyond it. Default 100,000. */
  maxKeys?: number;
}

/**
 * Per-key exponential backoff (client-go's ItemExponentialFailureRateLimiter): base * 2^failures,
 * capped at maxDelayMs.
 */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  readonly #base: number;
  readonly #max: number;
  readonly #maxKeys: number;
  // Insertion order doubles as age order, which makes eviction O(1). Evicting a key only resets
  // its backoff to the base delay, so the bound can never lose work.
  readonly #failures = new Map<string, number>();

  constructor(opts: ExponentialBackoffOptions = {}) {
    this.#base = Math.max(1, opts.baseDelayMs ?? 100);
    this.#max = Math.max(this.#base, opts.maxDelayMs ?? 30_000);
    this.#maxKeys = Math.max(1, opts.maxKeys ?? 100_000);
  }

  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    if (!this.#failures.has(key) && this.#failures.size >= this.#maxKeys) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
    this.#failures.set(key, failures + 1);
    // Cap the exponent so 2^n never overflows into Infinity for a key that fails forever.
    const delay = this.#base * 2 ** Math.min(failures, 52);
    return Math.min(delay, this.#max);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

export interface TokenBucketOptions {
  /** Sustained tokens per second. */
  qps: number;
  /** Bucket size: how many tokens may be taken at once after a quiet period. */
  burst: number;
  clock?: Clock;
  /** Waiters beyond this are rejected at once instead of queueing without bound. Default 10,000. */
  maxWaiters?: number;
}

/** Thrown by `TokenBucket.wait` when too many callers are already waiting. */
export class TooManyWaitersError extends Error {
  override readonly name = 'TooManyWaitersError';
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * A token bucket (client-go's flowcontrol token bucket) for the global API write rate: waiters are
 * served in FIFO order, each taking one token, with one timer for the head waiter.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  readonly #maxWaiters: number;
  #tokens: number;
  #last: number;
  readonly #waiters: Waiter[] = [];
  #timer: TimerHandle | undefined;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.qps > 0)) throw new RangeError(`qps must be > 0, got ${opts.qps}`);
    if (!(opts.burst >= 1)) throw new RangeError(`burst must be >= 1, got ${opts.burst}`);
    this.#qps = opts.qps;
    this.#burst = Math.floor(opts.burst);
    this.#clock = opts.clock ?? realClock;
    this.#maxWaiters = opts.maxWaiters ?? 10_000;
    this.#tokens = this.#burst;
    this.#last = this.#clock.now();
  }

  /** Takes a token if one is available now and nobody is queued ahead; never waits. */
  tryAccept(): boolean {
    this.#refill();
    if (this.#waiters.length > 0 || this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Resolves once a token has been taken for the caller; rejects with `signal.reason` if aborted first. */
  wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryAccept()) return Promise.resolve();
    if (this.#waiters.length >= this.#maxWaiters) {
      return Promise.reject(new TooManyWaitersError(`${this.#waiters.length} callers already waiting for a token`));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason);
          this.#schedule();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#schedule();
    });
  }

  /** Number of callers currently waiting for a token. */
  waiting(): number {
    return this.#waiters.length;
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000);
  }

  #serve(): void {
    this.#timer = undefined;
    this.#refill();
    while (this.#waiters.length > 0 && this.#tokens >= 1) {
      const waiter = this.#waiters.shift()!;
      this.#tokens -= 1;
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
    this.#schedule();
  }

  // One timer, armed for the moment the head waiter's token will exist.
  #schedule(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#waiters.length === 0) return;
    this.#refill();
    const missing = Math.max(0, 1 - this.#tokens);
    const delay = Math.ceil((missing * 1000) / this.#qps);
    this.#timer = this.#clock.setTimeout(() => this.#serve(), delay);
  }
}
