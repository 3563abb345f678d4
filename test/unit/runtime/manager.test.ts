import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { Controller } from '../../../src/runtime/controller.ts';
import {
  type CacheRunnable,
  CacheSyncTimeoutError,
  GracePeriodExpiredError,
  type LeaderElection,
  LeadershipLostError,
  Manager,
  type Runnable,
} from '../../../src/runtime/manager.ts';

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

class FakeCache implements CacheRunnable {
  started = false;
  stopped = false;
  #synced = false;
  #waiters: Array<() => void> = [];

  async start(signal: AbortSignal): Promise<void> {
    this.started = true;
    await untilAborted(signal);
    this.stopped = true;
  }

  markSynced(): void {
    this.#synced = true;
    for (const w of this.#waiters.splice(0)) w();
  }

  hasSynced(): boolean {
    return this.#synced;
  }

  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push(resolve);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}

class FakeRunnable implements Runnable {
  started = false;
  stopped = false;
  readonly behaviour: 'cooperative' | 'stuck' | 'fails';
  constructor(behaviour: 'cooperative' | 'stuck' | 'fails' = 'cooperative') {
    this.behaviour = behaviour;
  }

  async start(signal: AbortSignal): Promise<void> {
    this.started = true;
    if (this.behaviour === 'fails') throw new Error('boom');
    if (this.behaviour === 'stuck') await new Promise(() => {});
    await untilAborted(signal);
    this.stopped = true;
  }
}

describe('Manager', () => {
  it('starts caches first, other runnables only once every cache synced', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock });
    const a = new FakeCache();
    const b = new FakeCache();
    const r = new FakeRunnable();
    mgr.addCache(a, 'a');
    mgr.addCache(b, 'b');
    mgr.add(r, 'r');
    const running = mgr.start();
    await clock.runDue();
    expect([a.started, b.started, r.started]).toEqual([true, true, false]);
    expect(mgr.ready()).toBe(false);
    a.markSynced();
    await clock.runDue();
    expect(r.started).toBe(false);
    b.markSynced();
    await clock.runDue();
    expect(r.started).toBe(true);
    expect(mgr.ready()).toBe(true);

    await mgr.stop();
    await running;
    expect([a.stopped, b.stopped, r.stopped]).toEqual([true, true, true]);
    expect(mgr.ready()).toBe(false);
    expect(mgr.signal.aborted).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('gives up on a runnable that ignores the signal after the grace period, and names it', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock, gracePeriodMs: 10_000 });
    mgr.add(new FakeRunnable('stuck'), 'stuck');
    mgr.add(new FakeRunnable(), 'cooperative');
    const running = mgr.start();
    const outcome = running.then(
      () => undefined,
      (err: unknown) => err,
    );
    await clock.runDue();
    let stopped = false;
    const stopping = mgr.stop().then(() => {
      stopped = true;
    });
    await clock.tick(9_999);
    expect(stopped).toBe(false);
    expect(mgr.unfinished()).toEqual(['stuck']);
    await clock.tick(1);
    await stopping;
    expect(stopped).toBe(true);
    const err = await outcome;
    expect(err).toBeInstanceOf(GracePeriodExpiredError);
    expect((err as GracePeriodExpiredError).runnables).toEqual(['stuck']);
    expect((err as Error).message).toContain('10000 ms grace period: stuck');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('signals that stopping began, whatever the cause', async () => {
    for (const cause of ['stop', 'failure'] as const) {
      const clock = new FakeClock(0);
      const mgr = new Manager({ clock, gracePeriodMs: 10_000 });
      const r = new FakeRunnable();
      mgr.add(r, 'r');
      mgr.add({ start: () => new Promise(() => {}) }, 'stuck');
      let failNow: () => void = () => {};
      mgr.add({ start: () => new Promise((_, reject) => (failNow = () => reject(new Error('boom')))) }, 'failing');
      const running = mgr.start().catch(() => {});
      await clock.runDue();
      expect(mgr.stopping.aborted).toBe(false);
      if (cause === 'stop') {
        void mgr.stop();
        // At once: the grace period starts now, not once runnables are told to stop.
        expect(mgr.stopping.aborted).toBe(true);
        expect(r.stopped).toBe(false);
      } else failNow();
      await clock.runDue();
      expect(mgr.stopping.aborted).toBe(true);
      expect(mgr.unfinished()).toEqual(['stuck', ...(cause === 'stop' ? ['failing'] : [])]);
      await clock.tick(10_000);
      await running;
    }
  });

  it('stops everything and rejects start() when a runnable fails', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock });
    const ok = new FakeRunnable();
    mgr.add(ok, 'ok');
    mgr.add(new FakeRunnable('fails'), 'bad');
    await expect(mgr.start()).rejects.toThrow('boom');
    expect(ok.stopped).toBe(true);
  });

  it('fails when caches do not sync in time, without starting runnables', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock, cacheSyncTimeoutMs: 60_000 });
    const cache = new FakeCache();
    const r = new FakeRunnable();
    mgr.addCache(cache, 'pods');
    mgr.add(r);
    const running = mgr.start();
    const result = expect(running).rejects.toBeInstanceOf(CacheSyncTimeoutError);
    await clock.tick(60_000);
    await result;
    await expect(running).rejects.toThrow(/pods/);
    expect(r.started).toBe(false);
    expect(cache.stopped).toBe(true);
  });

  it('can be stopped before caches sync', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock });
    const cache = new FakeCache();
    const r = new FakeRunnable();
    mgr.addCache(cache);
    mgr.add(r);
    const running = mgr.start();
    await clock.runDue();
    await mgr.stop();
    await running;
    expect(r.started).toBe(false);
    expect(cache.stopped).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('stop() before start() resolves at once; adding after start is refused', async () => {
    const mgr = new Manager({ clock: new FakeClock(0) });
    await mgr.stop();
    const running = mgr.start();
    expect(() => mgr.add(new FakeRunnable())).toThrow(/after the manager started/);
    await running;
  });

  it('stops on SIGTERM, exits on a second signal, and uninstalls its handlers', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock });
    const r = new FakeRunnable();
    mgr.add(r);
    const proc = new EventEmitter();
    const exits: number[] = [];
    const uninstall = mgr.handleSignals(proc, (code) => exits.push(code));
    const running = mgr.start();
    await clock.runDue();
    proc.emit('SIGTERM');
    await running;
    expect(r.stopped).toBe(true);
    proc.emit('SIGINT');
    expect(exits).toEqual([1]);
    uninstall();
    expect(proc.listenerCount('SIGTERM') + proc.listenerCount('SIGINT')).toBe(0);
  });

  it('drives a controller: keys enqueued before sync are reconciled after it, drained on stop', async () => {
    const clock = new FakeClock(0);
    const mgr = new Manager({ clock });
    const cache = new FakeCache();
    const reconciled: string[] = [];
    const controller = new Controller({
      name: 'pods',
      clock,
      reconcile: async (req) => {
        reconciled.push(req.name);
        return {};
      },
    });
    mgr.addCache(cache);
    mgr.add(controller, 'pods');
    const running = mgr.start();
    controller.enqueue({ namespace: 'ns', name: 'a' });
    await clock.runDue();
    expect(reconciled).toEqual([]);
    cache.markSynced();
    await clock.runDue();
    expect(reconciled).toEqual(['a']);
    await mgr.stop();
    await running;
    expect(controller.queue.shuttingDown()).toBe(true);
  });
});

/** A LeaderElection driven by the test: lead() and lose() play the lease; it logs what happens. */
class FakeElection implements LeaderElection {
  readonly log: string[] = [];
  #hooks: { onStartedLeading(): void; onStoppedLeading(): void } | undefined;
  #leading = false;

  async run(signal: AbortSignal, hooks: { onStartedLeading(): void; onStoppedLeading(): void }): Promise<void> {
    this.#hooks = hooks;
    await untilAborted(signal);
    if (this.#leading) {
      this.log.push('released');
      this.#leading = false;
      hooks.onStoppedLeading();
    }
  }

  lead(): void {
    this.#leading = true;
    this.#hooks?.onStartedLeading();
  }

  lose(): void {
    this.#leading = false;
    this.#hooks?.onStoppedLeading();
  }
}

/** A leader-only Runnable that logs when it drained (after a slow, cooperative stop). */
class Draining implements Runnable {
  started = false;
  readonly log: string[];
  readonly clock: FakeClock;
  constructor(log: string[], clock: FakeClock) {
    this.log = log;
    this.clock = clock;
  }
  async start(signal: AbortSignal): Promise<void> {
    this.started = true;
    await untilAborted(signal);
    await this.clock.sleep(500);
    this.log.push('controllers drained');
  }
}

describe('Manager: leader election as runnable groups', () => {
  async function started() {
    const clock = new FakeClock();
    const election = new FakeElection();
    const manager = new Manager({ clock, leaderElection: election, gracePeriodMs: 5_000 });
    const cache = new FakeCache();
    const controllers = new Draining(election.log, clock);
    const server = new FakeRunnable();
    manager.addCache(cache);
    manager.add(controllers, 'controllers');
    manager.add(server, 'server', { needLeaderElection: false });
    const done = manager.start();
    cache.markSynced();
    await clock.runDue();
    return { clock, election, manager, cache, controllers, server, done };
  }

  it('starts leader-only runnables only once this process leads', async () => {
    const { election, manager, controllers, server, clock, done } = await started();
    expect(server.started).toBe(true);
    expect(controllers.started).toBe(false);
    election.lead();
    await clock.runDue();
    expect(controllers.started).toBe(true);
    const stopped = manager.stop();
    await clock.tick(1_000);
    await stopped;
    await done;
  });

  it('releases the lease only after leader-only runnables drained, and stops caches last', async () => {
    const { election, manager, cache, clock, done } = await started();
    election.lead();
    await clock.runDue();
    const stopped = manager.stop();
    await clock.tick(499);
    expect(election.log).toEqual([]);
    expect(cache.stopped).toBe(false);
    await clock.tick(1);
    expect(election.log).toEqual(['controllers drained', 'released']);
    await stopped;
    await done;
    expect(cache.stopped).toBe(true);
  });

  it('stops leader-only work at once and fails when leadership is lost', async () => {
    const { election, controllers, clock, done } = await started();
    election.lead();
    await clock.runDue();
    election.lose();
    const result = expect(done).rejects.toBeInstanceOf(LeadershipLostError);
    await clock.tick(1_000);
    await result;
    expect(controllers.log).toContain('controllers drained');
  });
});
