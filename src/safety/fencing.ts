// Fencing: one writer at a time. Leader election alone does not stop a deposed leader from
// writing: a PATCH queued behind a frozen connection landed 19 s after a standby took over. So
// every write the leader makes goes through the fence:
// - A renew that succeeded makes the lease ours until (when that renew was *sent*) + renewDeadline.
//   A standby may take over only leaseDuration after it observed that renew, which it did after
//   we sent it, so the slack (leaseDuration − renewDeadline) plus the margin below covers a write
//   started just before the deadline.
// - No write starts unless the lease is held for at least `marginMs` more, and each write gets
//   an AbortSignal that fires at that deadline, or at once when leadership is revoked.
// - When the deadline passes with no newer renew, the fence expires on a timer (not when some
//   call returns) and tells its owner to step down.
// - A lease handed back on purpose (a shard rebalance) is closed first: no new write, but those in
//   flight keep their signal and are waited for (`idle`), since an aborted request may still land.
// Without leader election the fence always holds (a single replica has no one to fence against).
import type { Clock, TimerHandle } from '../runtime/clock.ts';

/** A write refused or aborted because this process does not hold the lease (with margin). */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

export interface FenceOptions {
  clock: Clock;
  renewDeadlineMs: number;
  /** A write must be able to finish this long before the deadline. */
  marginMs: number;
  /** The Lease it guards, as errors name it; default "the leader lease". */
  lease?: string;
}

/** Guards writes with the leader lease; see the module comment. */
export class Fence {
  readonly #opts: FenceOptions | undefined;
  /** Aborted when leadership ends; replaced when it begins again. */
  #epoch = new AbortController();
  #validUntil = Number.NEGATIVE_INFINITY;
  #timer: TimerHandle | undefined;
  readonly #onExpire = new Set<() => void>();
  /** Closed for a hand-back: no new write until a renew reopens it. */
  #closed = false;
  #inFlight = 0;
  /** Whether a write that settled since the last close() had its signal aborted: it may still land. */
  #aborted = false;
  #idleWaiters: Array<() => void> = [];

  /** A fence that always holds: no leader election. */
  static unconditional(): Fence {
    return new Fence(undefined);
  }

  constructor(opts: FenceOptions | undefined) {
    this.#opts = opts;
  }

  /** Calls listener each time the deadline passes without a renew (its owner steps down); returns an unsubscribe. */
  onExpire(listener: () => void): () => void {
    this.#onExpire.add(listener);
    return () => this.#onExpire.delete(listener);
  }

  /** A renew (or acquire) sent at `sentAt` succeeded; one that moves the deadline reopens a closed or revoked fence. */
  renewed(sentAt: number): void {
    const opts = this.#opts;
    if (!opts) return;
    const until = sentAt + opts.renewDeadlineMs;
    if (until <= this.#validUntil) return;
    if (this.#epoch.signal.aborted) this.#epoch = new AbortController();
    this.#closed = false;
    this.#validUntil = until;
    if (this.#timer !== undefined) opts.clock.clearTimeout(this.#timer);
    this.#timer = opts.clock.setTimeout(() => this.#expire(), Math.max(0, until - opts.clock.now()));
  }

  /** Leadership ended (lost, released or expired): abort every write in flight, allow no new one. */
  revoke(): void {
    const opts = this.#opts;
    if (!opts) return;
    this.#validUntil = Number.NEGATIVE_INFINITY;
    if (this.#timer !== undefined) opts.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#epoch.abort(new NotLeaderError(`${this.#lease()} revoked`));
  }

  /**
   * The lease is about to be handed back: no new write starts, but those in flight keep their
   * signal (the deadline and revoke still abort them). Without leader election, a no-op.
   */
  close(): void {
    if (!this.#opts) return;
    this.#closed = true;
    this.#aborted = false;
  }

  /**
   * Resolves when no write is in flight, with whether any write that settled since close() was
   * aborted: an aborted request may still reach the API server, so its owner waits a margin more.
   */
  idle(): Promise<{ aborted: boolean }> {
    if (this.#inFlight === 0) return Promise.resolve({ aborted: this.#aborted });
    return new Promise((resolve) => this.#idleWaiters.push(() => resolve({ aborted: this.#aborted })));
  }

  /** True when a write may start now: the fence is open and the lease held for at least the margin. */
  holds(): boolean {
    const opts = this.#opts;
    return !opts || (!this.#closed && opts.clock.now() + opts.marginMs < this.#validUntil);
  }

  /** When the lease, as far as this process knows, stops being ours (Infinity without election). */
  validUntil(): number {
    return this.#opts ? this.#validUntil : Number.POSITIVE_INFINITY;
  }

  /**
   * Runs one write under the fence: refuses with NotLeaderError unless the fence is open and the
   * lease held with margin, and aborts the write's signal at the deadline, on revoke, or when
   * `parent` aborts. It counts as in flight (see idle) until it settles.
   */
  async run<T>(parent: AbortSignal | undefined, write: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const opts = this.#opts;
    if (this.#closed) throw new NotLeaderError('not writing: this process is handing the lease back');
    if (!this.holds()) throw new NotLeaderError(`not writing: this process does not hold ${this.#lease()}`);
    const signals = parent ? [parent] : [];
    let timer: TimerHandle | undefined;
    if (opts) {
      const deadline = new AbortController();
      timer = opts.clock.setTimeout(
        () => deadline.abort(new NotLeaderError(`write aborted: ${this.#lease()} would expire before it finished`)),
        this.#validUntil - opts.marginMs - opts.clock.now(),
      );
      signals.push(deadline.signal, this.#epoch.signal);
    }
    const signal = signals.length > 1 ? AbortSignal.any(signals) : (signals[0] ?? new AbortController().signal);
    this.#inFlight++;
    try {
      return await write(signal);
    } finally {
      if (timer !== undefined) opts?.clock.clearTimeout(timer);
      this.#settled(signal.aborted);
    }
  }

  #settled(aborted: boolean): void {
    this.#inFlight--;
    if (aborted) this.#aborted = true;
    if (this.#inFlight > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #lease(): string {
    return this.#opts?.lease ?? 'the leader lease';
  }

  #expire(): void {
    this.#timer = undefined;
    const opts = this.#opts;
    if (!opts) return;
    // Node's timers keep the event loop's monotonic time: by Date.now() one can fire a
    // millisecond early. Wait out the rest, or the fence would never expire.
    const left = this.#validUntil - opts.clock.now();
    if (left > 0) {
      this.#timer = opts.clock.setTimeout(() => this.#expire(), left);
      return;
    }
    this.revoke();
    for (const listener of [...this.#onExpire]) listener();
  }
}
