import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, flushPromises } from '../../../src/runtime/clock.ts';
import {
  Controller,
  type ControllerHooks,
  keyOf,
  type ReconcileContext,
  type Reconciler,
  ReconcileTimeoutError,
  type Request,
  type Result,
  requestFromKey,
} from '../../../src/runtime/controller.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Event = Parameters<NonNullable<ControllerHooks['onReconcile']>>[0];

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function run(reconcile: Reconciler, opts: { workers?: number; timeoutMs?: number; logger?: pino.Logger } = {}) {
  const clock = new FakeClock(0);
  const events: Event[] = [];
  const controller = new Controller({
    name: 'test',
    reconcile,
    clock,
    workers: opts.workers ?? 1,
    reconcileTimeoutMs: opts.timeoutMs ?? 60_000,
    hooks: { onReconcile: (e) => events.push(e) },
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const ac = new AbortController();
  const done = controller.start(ac.signal);
  const stop = async (): Promise<void> => {
    ac.abort(new Error('test over'));
    await clock.tick(0);
    await done;
  };
  stops.push(stop);
  return { clock, controller, events, ac, done, stop };
}

const pod = (name: string): Request => ({ namespace: 'ns', name });

describe('keys', () => {
  it('round-trips namespaced and cluster-scoped requests', () => {
    expect(keyOf({ namespace: 'ns', name: 'a' })).toBe('ns/a');
    expect(keyOf({ namespace: '', name: 'node-1' })).toBe('node-1');
    expect(requestFromKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(requestFromKey('node-1')).toEqual({ namespace: '', name: 'node-1' });
  });
});

describe('Controller', () => {
  it('reconciles each enqueued request once and reports success', async () => {
    const seen: Request[] = [];
    const { controller, clock, events } = run(async (req) => {
      seen.push(req);
      return {};
    });
    controller.enqueue(pod('a'));
    controller.enqueue(pod('a'));
    controller.enqueue(pod('b'));
    await clock.runDue();
    expect(seen).toEqual([pod('a'), pod('b')]);
    expect(events.map((e) => e.outcome)).toEqual(['success', 'success']);
    expect(controller.queueDepth()).toBe(0);
  });

  it('requeueAfterMs schedules the next run without touching the error backoff', async () => {
    const times: number[] = [];
    const retries: number[] = [];
    const { controller, clock } = run(async (_req, ctx) => {
      times.push(clock.now());
      retries.push(ctx.retries);
      return { requeueAfterMs: 10_000 };
    });
    controller.enqueue(pod('a'));
    await clock.tick(30_000);
    expect(times).toEqual([0, 10_000, 20_000, 30_000]);
    expect(retries).toEqual([0, 0, 0, 0]);
    expect(controller.queue.numRequeues('ns/a')).toBe(0);
  });

  it('retries a failing reconcile with per-key exponential backoff, then forgets on success', async () => {
    const times: number[] = [];
    const retries: number[] = [];
    let failures = 3;
    const { controller, clock, events } = run(async (_req, ctx) => {
      times.push(clock.now());
      retries.push(ctx.retries);
      if (failures-- > 0) throw new Error('api down');
      return {};
    });
    controller.enqueue(pod('a'));
    await clock.tick(10_000);
    expect(times).toEqual([0, 100, 300, 700]);
    expect(retries).toEqual([0, 1, 2, 3]);
    expect(events.map((e) => e.outcome)).toEqual(['error', 'error', 'error', 'success']);
    expect(events[0]?.error).toEqual(new Error('api down'));
    expect(controller.queue.numRequeues('ns/a')).toBe(0);
  });

  it('contains a synchronous throw: the worker keeps serving other keys', async () => {
    const seen: string[] = [];
    const { controller, clock } = run(((req: Request) => {
      seen.push(req.name);
      if (req.name === 'bad') throw new TypeError('bug');
      return Promise.resolve({});
    }) as Reconciler);
    controller.enqueue(pod('bad'));
    controller.enqueue(pod('good'));
    await clock.runDue();
    expect(seen).toEqual(['bad', 'good']);
    await clock.tick(100);
    expect(seen).toEqual(['bad', 'good', 'bad']);
  });

  it('aborts a reconcile that exceeds its timeout and retries it with backoff', async () => {
    const reasons: unknown[] = [];
    let calls = 0;
    const { controller, clock, events } = run(
      (_req, ctx: ReconcileContext) => {
        calls++;
        if (calls > 1) return Promise.resolve({});
        return new Promise<Result>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            reasons.push(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        });
      },
      { timeoutMs: 5_000 },
    );
    controller.enqueue(pod('a'));
    await clock.tick(4_999);
    expect(reasons).toEqual([]);
    await clock.tick(1);
    expect(reasons[0]).toBeInstanceOf(ReconcileTimeoutError);
    expect(events.map((e) => e.outcome)).toEqual(['timeout']);
    await clock.tick(100);
    expect(calls).toBe(2);
    expect(events.map((e) => e.outcome)).toEqual(['timeout', 'success']);
  });

  it('a reconcile that ignores its timeout frees the worker but keeps its key', async () => {
    const hung = deferred<Result>();
    const seen: string[] = [];
    const { controller, clock, events } = run(
      (req) => {
        seen.push(req.name);
        return req.name === 'hung' && seen.filter((n) => n === 'hung').length === 1
          ? hung.promise
          : Promise.resolve({});
      },
      { timeoutMs: 1_000, workers: 1 },
    );
    controller.enqueue(pod('hung'));
    await clock.tick(1_000);
    // The only worker moved on: another key is served while 'hung' still runs.
    controller.enqueue(pod('other'));
    controller.enqueue(pod('hung'));
    await clock.tick(60_000);
    expect(seen).toEqual(['hung', 'other']);
    expect(events).toHaveLength(1);
    expect(events[0]?.request).toEqual(pod('other'));

    // Once it finally settles it counts as a timeout, and the re-added key runs again.
    hung.resolve({});
    await clock.tick(100);
    expect(events.map((e) => [e.request.name, e.outcome])).toEqual([
      ['other', 'success'],
      ['hung', 'timeout'],
      ['hung', 'success'],
    ]);
    expect(seen).toEqual(['hung', 'other', 'hung']);
  });

  it('runs different keys concurrently on N workers, but never one key twice at once', async () => {
    const gates = new Map<string, Deferred<Result>>();
    let running = 0;
    let maxRunning = 0;
    const active = new Set<string>();
    let overlap = false;
    const { controller, clock } = run(
      async (req) => {
        if (active.has(req.name)) overlap = true;
        active.add(req.name);
        running++;
        maxRunning = Math.max(maxRunning, running);
        const gate = deferred<Result>();
        gates.set(req.name, gate);
        try {
          return await gate.promise;
        } finally {
          running--;
          active.delete(req.name);
        }
      },
      { workers: 3 },
    );
    for (const name of ['a', 'b', 'c']) controller.enqueue(pod(name));
    await clock.runDue();
    expect(maxRunning).toBe(3);
    controller.enqueue(pod('a'));
    await clock.runDue();
    expect(running).toBe(3);
    gates.get('a')!.resolve({});
    await clock.runDue();
    expect(active.has('a')).toBe(true);
    for (const name of ['a', 'b', 'c']) gates.get(name)!.resolve({});
    await clock.runDue();
    expect(overlap).toBe(false);
    expect(running).toBe(0);
  });

  it('on stop aborts in-flight reconciles, starts no new ones, and resolves when they settled', async () => {
    const started: string[] = [];
    const { controller, clock, ac, done, events } = run((req, ctx) => {
      started.push(req.name);
      return new Promise<Result>((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
      });
    });
    controller.enqueue(pod('a'));
    controller.enqueue(pod('b'));
    await clock.runDue();
    ac.abort(new Error('shutdown'));
    await clock.runDue();
    await done;
    expect(started).toEqual(['a']);
    expect(events.map((e) => e.outcome)).toEqual(['error']);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a throwing hook does not kill the worker', async () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    const controller = new Controller({
      name: 'hooks',
      clock,
      reconcile: async (req) => {
        seen.push(req.name);
        return {};
      },
      hooks: {
        onReconcile: () => {
          throw new Error('metrics broke');
        },
      },
    });
    const ac = new AbortController();
    const done = controller.start(ac.signal);
    controller.enqueue(pod('a'));
    controller.enqueue(pod('b'));
    await clock.runDue();
    expect(seen).toEqual(['a', 'b']);
    ac.abort();
    await done;
  });

  it('logs through a child logger that carries controller, key and reconcileID', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        cb();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    const { controller, clock } = run(
      async (_req, ctx) => {
        ctx.log.info('hello');
        return {};
      },
      { logger },
    );
    controller.enqueue(pod('a'));
    await clock.runDue();
    await flushPromises();
    const hello = lines.find((l) => l.msg === 'hello');
    expect(hello).toMatchObject({ controller: 'test', key: 'ns/a' });
    expect(typeof hello?.reconcileID).toBe('string');
  });

  it('refuses to start twice', async () => {
    const { controller } = run(async () => ({}));
    await expect(controller.start(new AbortController().signal)).rejects.toThrow(/already started/);
  });
});
