import { describe, expect, it } from 'vitest';
import { LeaderElector, type Lease, type LeaseClient } from '../../../src/kube/lease.ts';
import { FakeClock, flushPromises } from '../../../src/runtime/clock.ts';
import { Fence } from '../../../src/safety/fencing.ts';

/**
 * An in-memory Lease store whose calls can be frozen: they then settle when aborted, or go
 * through when thawed, as requests to a paused (SIGSTOP) and resumed API server do.
 */
class FakeLeases implements LeaseClient {
  lease: Lease | undefined;
  frozen = false;
  calls = 0;
  #rv = 0;
  readonly #waiting = new Set<() => void>();

  thaw(): void {
    this.frozen = false;
    for (const go of this.#waiting) go();
    this.#waiting.clear();
  }

  async get(signal: AbortSignal) {
    await this.#maybeFreeze(signal);
    return this.lease ? structuredClone(this.lease) : undefined;
  }

  async create(lease: Lease, signal: AbortSignal) {
    await this.#maybeFreeze(signal);
    if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
    this.lease = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++this.#rv) } };
  }

  async update(lease: Lease, signal: AbortSignal) {
    await this.#maybeFreeze(signal);
    if (lease.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
      throw Object.assign(new Error('conflict'), { code: 409 });
    }
    this.lease = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++this.#rv) } };
  }

  #maybeFreeze(signal: AbortSignal): Promise<void> {
    this.calls++;
    if (!this.frozen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const go = () => resolve();
      this.#waiting.add(go);
      signal.addEventListener(
        'abort',
        () => {
          this.#waiting.delete(go);
          reject(new Error('aborted'));
        },
        { once: true },
      );
    });
  }
}

/** A view of the store whose own calls can hang, and whose next GET can be held and answered later. */
class Freezable implements LeaseClient {
  frozen = false;
  holdNextGet = false;
  #answer: (() => void) | undefined;
  readonly #store: FakeLeases;
  constructor(store: FakeLeases) {
    this.#store = store;
  }

  answerHeldGet(): void {
    this.#answer?.();
  }

  async get(signal: AbortSignal) {
    if (this.holdNextGet) {
      this.holdNextGet = false;
      // Read when answered, not when sent: what a slow API server hands back.
      await new Promise<void>((resolve) => {
        this.#answer = resolve;
      });
    }
    await this.#hang(signal);
    return this.#store.get(signal);
  }

  async create(lease: Lease, signal: AbortSignal) {
    await this.#hang(signal);
    return this.#store.create(lease, signal);
  }

  async update(lease: Lease, signal: AbortSignal) {
    await this.#hang(signal);
    return this.#store.update(lease, signal);
  }

  #hang(signal: AbortSignal): Promise<void> {
    if (!this.frozen) return Promise.resolve();
    return new Promise((_resolve, reject) =>
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
    );
  }
}

const TIMINGS = { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_000 };

function elector(clock: FakeClock, client: FakeLeases, identity: string) {
  const fence = new Fence({ clock, renewDeadlineMs: TIMINGS.renewDeadlineMs, marginMs: 1_000 });
  const events: string[] = [];
  const e = new LeaderElector({ client, namespace: 'ns', name: 'lease', identity, clock, fence, ...TIMINGS });
  const ac = new AbortController();
  const done = e.run(ac.signal, {
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
  return { fence, events, ac, done };
}

describe('LeaderElector', () => {
  it('acquires a missing lease, renews it, and releases it when asked to stop', async () => {
    const clock = new FakeClock();
    const store = new FakeLeases();
    const a = elector(clock, store, 'a');
    await clock.tick(0);
    expect(a.events).toEqual(['a started']);
    expect(store.lease?.spec?.holderIdentity).toBe('a');
    await clock.tick(10_000);
    expect(a.fence.holds()).toBe(true);
    a.ac.abort();
    await a.done;
    expect(a.events).toEqual(['a started', 'a stopped']);
    expect(store.lease?.spec?.holderIdentity).toBe('');
    expect(a.fence.holds()).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a standby takes over only a lease duration after it last saw the record change', async () => {
    const clock = new FakeClock();
    const store = new FakeLeases();
    const a = elector(clock, store, 'a');
    await clock.tick(0);
    const b = elector(clock, store, 'b');
    await clock.tick(5_000);
    expect(b.events).toEqual([]);
    a.ac.abort(new Error('gone')); // stops renewing (and releases: b may take over at once)
    await a.done;
    await clock.tick(1_000);
    expect(b.events).toEqual(['b started']);
    b.ac.abort();
    await b.done;
  });

  it('steps down on the fence timer while its renew hangs, before a standby can take over', async () => {
    const clock = new FakeClock();
    const store = new FakeLeases();
    const a = elector(clock, store, 'a');
    await clock.tick(0);
    const lastRenew = clock.now();
    store.frozen = true; // every call of a's from now on hangs, like a frozen connection
    await clock.tick(3_999);
    expect(a.events).toEqual(['a started']);
    await clock.tick(1);
    expect(a.events).toEqual(['a started', 'a stopped']); // at lastRenew + renewDeadline, no later
    expect(clock.now() - lastRenew).toBe(4_000);
    await a.done; // run() returned: the hanging call was aborted too
    expect(a.fence.holds()).toBe(false);

    store.frozen = false;
    const b = elector(clock, store, 'b');
    await clock.tick(0);
    expect(b.events).toEqual([]); // b just observed the record: it waits a whole lease duration
    await clock.tick(6_000);
    expect(b.events).toEqual(['b started']);
    b.ac.abort();
    await b.done;
  });

  it('judges a record from when its GET came back, not when it was sent (a slow read of a fresh renew)', async () => {
    // b's read is sent before a's last renew and answered after it. Stamped with the time it
    // was sent, that renew would look older than it is, and b would take over while a may
    // still write: here a lease duration after 10 s, at 16 s, against a's fence until 19 s.
    const clock = new FakeClock();
    const store = new FakeLeases();
    const timings = { leaseDurationMs: 6_000, renewDeadlineMs: 5_000, retryPeriodMs: 1_000 };
    const aFence = new Fence({ clock, renewDeadlineMs: timings.renewDeadlineMs, marginMs: 1_000 });
    const aClient = new Freezable(store);
    const a = new LeaderElector({
      client: aClient,
      namespace: 'ns',
      name: 'lease',
      identity: 'a',
      clock,
      fence: aFence,
      ...timings,
    });
    const aStop = new AbortController();
    const aDone = a.run(aStop.signal, { onStartedLeading: () => {}, onStoppedLeading: () => {} });
    await clock.tick(10_000);
    const bClient = new Freezable(store);
    bClient.holdNextGet = true;
    const bFence = new Fence({ clock, renewDeadlineMs: timings.renewDeadlineMs, marginMs: 1_000 });
    const b = new LeaderElector({
      client: bClient,
      namespace: 'ns',
      name: 'lease',
      identity: 'b',
      clock,
      fence: bFence,
      ...timings,
    });
    const bStop = new AbortController();
    let bStartedAt: number | undefined;
    const bDone = b.run(bStop.signal, {
      onStartedLeading: () => (bStartedAt = clock.now()),
      onStoppedLeading: () => {},
    });
    await clock.tick(4_000); // a renews at 11, 12, 13 and 14 s; b's GET, sent at 10 s, waits
    aClient.frozen = true; // a's next calls hang: its fence holds until 14 + 5 = 19 s
    const aLeaseEnds = aFence.validUntil();
    await clock.tick(500);
    bClient.answerHeldGet(); // b's GET is answered at 14.5 s with the renew of 14 s
    await clock.tick(12_000);
    expect(bStartedAt).toBeDefined();
    expect(bStartedAt!).toBeGreaterThanOrEqual(aLeaseEnds);
    bStop.abort();
    aStop.abort();
    await Promise.all([aDone, bDone]);
  });

  it('an acquire that lands with too little of its renew deadline left is renewed before it leads', async () => {
    // kube-apiserver paused (SIGSTOP) long enough for the leader to step down, then resumed
    // while the standby's acquire was in flight: it lands 100 ms before the deadline that
    // counts from when it was sent. Leading then would mean stepping down (and exiting) at once.
    const clock = new FakeClock();
    const store = new FakeLeases();
    const a = elector(clock, store, 'a');
    await clock.tick(0);
    const b = elector(clock, store, 'b');
    await clock.tick(0); // b saw a's record at 0
    store.frozen = true;
    await clock.tick(4_000);
    expect(a.events).toEqual(['a started', 'a stopped']);
    await a.done;
    // b's attempts: at 1 000 (abandoned at 5 000), at 6 000 (in flight until 10 000).
    await clock.tick(5_900);
    store.thaw();
    await flushPromises();
    expect(b.fence.holds()).toBe(true);
    expect(b.events).toEqual(['b started']);
    expect(store.lease?.spec?.holderIdentity).toBe('b');
    await clock.tick(10_000);
    expect(b.events).toEqual(['b started']);
    b.ac.abort();
    await b.done;
  });

  it('bounds each lease call while not leading too', async () => {
    const clock = new FakeClock();
    const store = new FakeLeases();
    store.frozen = true;
    const a = elector(clock, store, 'a');
    await clock.tick(TIMINGS.renewDeadlineMs + TIMINGS.retryPeriodMs);
    expect(store.calls).toBe(2); // the first call was abandoned at the deadline, and retried
    a.ac.abort();
    await a.done;
    await flushPromises();
    expect(a.events).toEqual([]);
    expect(clock.pendingTimers()).toBe(0);
  });
});
