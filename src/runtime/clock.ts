// Time is injected everywhere so that backoff, requeueAfter, resync and stall detection can be
// tested by advancing a fake clock instead of sleeping (kube-rs tests use paused time the same way).

/** An opaque handle returned by `Clock.setTimeout`, only meaningful to the clock that issued it. */
export type TimerHandle = { readonly __timer: unique symbol };

/** The source of time and timers for runtime code. */
export interface Clock {
  /** Milliseconds since the epoch, like `Date.now()`. */
  now(): number;
  /**
   * Calls `fn` once after `ms` milliseconds (negative or NaN means as soon as possible). With
   * `unref`, the timer alone does not keep the process alive (a deadline that must never delay an exit).
   */
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle;
  /** Cancels a timer; a no-op for a timer that already fired or was cleared. */
  clearTimeout(handle: TimerHandle): void;
  /** Resolves after `ms` milliseconds, or rejects with `signal.reason` as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface TimerOptions {
  unref?: boolean;
}

// Node clamps delays above 2^31-1 ms to 1 ms; callers that need longer delays re-arm.
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

function clampDelay(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  return Math.min(ms, MAX_TIMER_DELAY_MS);
}

function sleepWith(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The real clock: `Date.now()` and Node's timers. */
export class RealClock implements Clock {
  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle {
    const timer = setTimeout(fn, clampDelay(ms));
    if (opts?.unref) timer.unref();
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
}

/** The process-wide real clock, for production wiring. */
export const realClock: Clock = new RealClock();

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void;
}

/**
 * A manual clock for tests: time only moves when `advance`/`tick` is called, and due timers fire
 * in deadline order (ties in creation order), each seeing `now()` equal to its own deadline.
 */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  // Few timers are alive in a test, so a sorted scan is simpler than a heap and just as correct.
  readonly #timers = new Map<number, FakeTimer>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    const delay = Number.isNaN(ms) || ms < 0 ? 0 : ms;
    this.#timers.set(id, { id, due: this.#now + delay, fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as number);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }

  /** Number of timers that have not fired nor been cleared (tests use it to check cleanup). */
  pendingTimers(): number {
    return this.#timers.size;
  }

  /** Deadline of the earliest pending timer, or undefined if none. */
  nextDue(): number | undefined {
    return this.#earliest()?.due;
  }

  /** Moves time forward by `ms`, synchronously firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#now + Math.max(0, ms);
    for (let t = this.#earliest(); t !== undefined && t.due <= target; t = this.#earliest()) {
      this.#fire(t);
    }
    this.#now = target;
  }

  /**
   * Like `advance`, but lets promise chains settle after each timer (and before returning), so
   * async code that schedules its next timer after an `await` behaves as it would in real time.
   */
  async tick(ms: number): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    await flushPromises();
    for (let t = this.#earliest(); t !== undefined && t.due <= target; t = this.#earliest()) {
      this.#fire(t);
      await flushPromises();
    }
    this.#now = target;
    await flushPromises();
  }

  /** Fires every timer due now (zero-delay timers) and lets promise chains settle. */
  async runDue(): Promise<void> {
    await this.tick(0);
  }

  #fire(t: FakeTimer): void {
    this.#timers.delete(t.id);
    this.#now = Math.max(this.#now, t.due);
    t.fn();
  }

  #earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.#timers.values()) {
      if (best === undefined || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    }
    return best;
  }
}

/**
 * Resolves after all currently queued promise reactions (and those they queue) have run; it uses
 * a real macrotask turn, which does not depend on time.
 */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
