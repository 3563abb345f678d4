// Rate limiting of retries, as in client-go's workqueue/default_rate_limiters.go: a per-key
// limiter that spaces out *retries* of one failing key. The rate of API writes is capped by a
// token bucket shared fairly between namespaces, src/runtime/fair-limiter.ts.

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

/** Thrown by `FairTokenBucket.wait` (src/runtime/fair-limiter.ts) when too many callers of one tenant are already waiting. */
export class TooManyWaitersError extends Error {
  override readonly name = 'TooManyWaitersError';
}
