import { type Clock, realClock, type TimerHandle } from './clock.ts';
import { TooManyWaitersError } from './ratelimit.ts';

// The API write budget shared fairly between tenants (namespaces). TokenBucket in ratelimit.ts
// serves its waiters first come, first served, so a namespace with 10,000 pending writes (a mass
// flip, or a pod whose answers force a write per probe) puts every other namespace's write behind
// them. Here waiters queue per tenant, and tokens go round robin between the tenants that wait:
// a newly waiting tenant joins the back of the round, so its first write waits for at most one
// token per other waiting tenant. Within a tenant, first come, first served. As in API Priority
// and Fairness' fair queuing, but with one seat per write, so plain round robin is exact.
//
// Cost: O(1) per wait, grant and abort (aborted waiters are skipped when reached, and a tenant's
// queue is compacted when most of it is aborted); one timer, armed for the next token.

export interface FairTokenBucketOptions {
  /** Sustained tokens per second. */
  qps: number;
  /** Bucket size: how many tokens may be taken at once after a quiet period. */
  burst: number;
  clock?: Clock;
  /**
   * Waiters of one tenant beyond this are rejected at once instead of queueing without bound.
   * Per tenant, so a tenant that fills its queue does not get another tenant's writes refused.
   * Default 10,000.
   */
  maxWaitersPerTenant?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  done: boolean;
}

interface TenantQueue {
  name: string;
  waiters: Array<Waiter | undefined>;
  head: number;
  /** Waiters not yet granted nor aborted. */
  live: number;
  /** In the round (the ring of tenants to serve). */
  inRound: boolean;
}

/** A token bucket whose waiters are served round robin between tenants; see the module comment. */
export class FairTokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  readonly #maxPerTenant: number;
  #tokens: number;
  #last: number;
  readonly #tenants = new Map<string, TenantQueue>();
  #round: Array<TenantQueue | undefined> = [];
  #roundHead = 0;
  #live = 0;
  #timer: TimerHandle | undefined;

  constructor(opts: FairTokenBucketOptions) {
    if (!(opts.qps > 0)) throw new RangeError(`qps must be > 0, got ${opts.qps}`);
    if (!(opts.burst >= 1)) throw new RangeError(`burst must be >= 1, got ${opts.burst}`);
    const max = opts.maxWaitersPerTenant ?? 10_000;
    if (!(max >= 1)) throw new RangeError(`maxWaitersPerTenant must be >= 1, got ${max}`);
    this.#qps = opts.qps;
    this.#burst = Math.floor(opts.burst);
    this.#clock = opts.clock ?? realClock;
    this.#maxPerTenant = max;
    this.#tokens = this.#burst;
    this.#last = this.#clock.now();
  }

  /** Takes a token if one is available now and nobody is waiting; never waits. */
  tryAccept(): boolean {
    this.#refill();
    if (this.#live > 0 || this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /**
   * Resolves once a token has been taken for the caller, a write of `tenant` (a namespace; ''
   * for writes that belong to no tenant); rejects with `signal.reason` if aborted first, or with
   * TooManyWaitersError if the tenant already has the maximum number of waiters.
   */
  wait(signal?: AbortSignal, tenant = ''): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryAccept()) return Promise.resolve();
    const queue = this.#queueOf(tenant);
    if (queue.live >= this.#maxPerTenant) {
      return Promise.reject(
        new TooManyWaitersError(`${queue.live} writes of ${tenant === '' ? 'no tenant' : tenant} already waiting`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined, done: false };
      if (signal) {
        waiter.onAbort = () => this.#abort(queue, waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      queue.waiters.push(waiter);
      queue.live++;
      this.#live++;
      if (!queue.inRound) this.#join(queue);
      this.#schedule();
    });
  }

  /** Callers waiting for a token: all, or those of one tenant. */
  waiting(tenant?: string): number {
    return tenant === undefined ? this.#live : (this.#tenants.get(tenant)?.live ?? 0);
  }

  /** Tenants with waiters or aborted waiters not yet skipped (for tests of cleanup). */
  tenantsTracked(): number {
    return this.#tenants.size;
  }

  #queueOf(tenant: string): TenantQueue {
    let queue = this.#tenants.get(tenant);
    if (!queue) {
      queue = { name: tenant, waiters: [], head: 0, live: 0, inRound: false };
      this.#tenants.set(tenant, queue);
    }
    return queue;
  }

  #join(queue: TenantQueue): void {
    queue.inRound = true;
    this.#round.push(queue);
  }

  #abort(queue: TenantQueue, waiter: Waiter): void {
    if (waiter.done) return;
    waiter.done = true;
    queue.live--;
    this.#live--;
    waiter.reject(waiter.signal?.reason);
    if (this.#live === 0) {
      this.#clearRound();
    } else {
      // Aborted waiters stay in place until reached; compact once they are most of the queue.
      const length = queue.waiters.length - queue.head;
      if (length > 64 && queue.live * 2 < length) {
        queue.waiters = queue.waiters.slice(queue.head).filter((w) => w !== undefined && !w.done);
        queue.head = 0;
      }
    }
    this.#schedule();
  }

  // Nobody waits any more: drop the round and the tenants left in it with aborted waiters only.
  #clearRound(): void {
    for (let i = this.#roundHead; i < this.#round.length; i++) {
      const queue = this.#round[i]!;
      queue.inRound = false;
      this.#tenants.delete(queue.name);
    }
    this.#round = [];
    this.#roundHead = 0;
  }

  // The next live waiter of the tenant, skipping aborted ones; undefined when it has none.
  #shift(queue: TenantQueue): Waiter | undefined {
    while (queue.head < queue.waiters.length) {
      const waiter = queue.waiters[queue.head];
      queue.waiters[queue.head++] = undefined;
      if (waiter && !waiter.done) return waiter;
    }
    return undefined;
  }

  // Grants one token to the tenant whose turn it is; false when nobody is waiting.
  #grantOne(): boolean {
    while (this.#roundHead < this.#round.length) {
      const queue = this.#round[this.#roundHead]!;
      this.#round[this.#roundHead++] = undefined;
      const waiter = this.#shift(queue);
      if (queue.live - (waiter ? 1 : 0) > 0) this.#round.push(queue);
      else {
        queue.inRound = false;
        queue.waiters = [];
        queue.head = 0;
      }
      if (!waiter) {
        this.#forgetIfEmpty(queue);
        continue;
      }
      waiter.done = true;
      queue.live--;
      this.#live--;
      this.#forgetIfEmpty(queue);
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
      return true;
    }
    return false;
  }

  #forgetIfEmpty(queue: TenantQueue): void {
    if (queue.live === 0 && !queue.inRound) this.#tenants.delete(queue.name);
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
    while (this.#live > 0 && this.#tokens >= 1) {
      if (!this.#grantOne()) break;
      this.#tokens -= 1;
    }
    if (this.#roundHead > 1024 && this.#roundHead * 2 > this.#round.length) {
      this.#round = this.#round.slice(this.#roundHead);
      this.#roundHead = 0;
    }
    this.#schedule();
  }

  // One timer, armed for the moment the next token will exist.
  #schedule(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#live === 0) return;
    this.#refill();
    const missing = Math.max(0, 1 - this.#tokens);
    const delay = Math.ceil((missing * 1000) / this.#qps);
    this.#timer = this.#clock.setTimeout(() => this.#serve(), delay);
  }
}
