import type { KubernetesObject } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import {
  type ClientInformer,
  type InformerFactory,
  ResilientInformer,
  type ResilientInformerOptions,
  type RestartReason,
} from '../../../src/runtime/informer.ts';
import { normalizerFor } from '../../../src/runtime/normalize.ts';

type Pod = KubernetesObject & { status?: { startTime?: Date | string } };
type Verb = 'add' | 'update' | 'delete' | 'connect' | 'error';
type Mode = 'list' | 'hang' | 'fail' | 'reject';

// A stand-in for client-node's ListWatch with the same contract: start() emits 'connect', lists
// (emitting 'add' per item) and resolves; a failed list emits 'error' and resolves; stop() later
// reports its own abort as an 'error', as client-node 2.0.1 does.
class FakeInformer implements ClientInformer<Pod> {
  readonly callbacks: Record<Verb, Array<(arg?: unknown) => void>> = {
    add: [],
    update: [],
    delete: [],
    connect: [],
    error: [],
  };
  readonly objects = new Map<string, Pod>();
  started = false;
  stopped = false;
  readonly namespace: string | undefined;
  readonly #items: Pod[];
  readonly #mode: Mode;

  constructor(namespace: string | undefined, items: Pod[], mode: Mode) {
    this.namespace = namespace;
    this.#items = items;
    this.#mode = mode;
  }

  // biome-ignore lint/suspicious/noExplicitAny: matches client-node's overloaded on()/off() signatures
  on(verb: string, cb: (arg: any) => void): void {
    this.callbacks[verb as Verb].push(cb);
  }

  // biome-ignore lint/suspicious/noExplicitAny: see on()
  off(verb: string, cb: (arg: any) => void): void {
    const list = this.callbacks[verb as Verb];
    const i = list.indexOf(cb);
    if (i >= 0) list.splice(i, 1);
  }

  async start(): Promise<void> {
    this.started = true;
    this.fire('connect');
    if (this.#mode === 'hang') return new Promise(() => {});
    if (this.#mode === 'reject') throw new Error('no active cluster');
    if (this.#mode === 'fail') {
      this.fire('error', new Error('list failed: 403'));
      return;
    }
    for (const item of this.#items) this.emit('add', item);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    queueMicrotask(() => this.fire('error', new DOMException('aborted', 'AbortError')));
  }

  emit(verb: 'add' | 'update' | 'delete', obj: Pod): void {
    const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
    if (verb === 'delete') this.objects.delete(key);
    else this.objects.set(key, obj);
    this.fire(verb, obj);
  }

  fire(verb: Verb, arg?: unknown): void {
    for (const cb of [...this.callbacks[verb]]) cb(arg);
  }

  get(name: string, namespace?: string): Pod | undefined {
    return this.objects.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): readonly Pod[] {
    return [...this.objects.values()].filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }
}

// The "API server": objects per namespace, and how the next informer(s) will behave.
class World {
  readonly objects = new Map<string, Pod>();
  readonly created: FakeInformer[] = [];
  modes: Mode[] = [];

  put(ns: string, name: string, rv: string, extra: Partial<Pod> = {}): Pod {
    const pod: Pod = { metadata: { namespace: ns, name, resourceVersion: rv }, ...extra };
    this.objects.set(`${ns}/${name}`, pod);
    return pod;
  }

  remove(ns: string, name: string): void {
    this.objects.delete(`${ns}/${name}`);
  }

  factory: InformerFactory<Pod> = (namespace) => {
    const items = [...this.objects.values()].filter(
      (o) => namespace === undefined || o.metadata?.namespace === namespace,
    );
    const informer = new FakeInformer(namespace, items, this.modes.shift() ?? 'list');
    this.created.push(informer);
    return informer;
  };

  latest(namespace?: string): FakeInformer {
    const matching = this.created.filter((i) => i.namespace === namespace);
    return matching[matching.length - 1]!;
  }
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function setup(world: World, opts: Partial<ResilientInformerOptions<Pod>> = {}) {
  const clock = new FakeClock(0);
  const events: string[] = [];
  const restarts: Array<[RestartReason, string | undefined]> = [];
  const informer = new ResilientInformer<Pod>({
    name: 'pods',
    factory: world.factory,
    normalize: normalizerFor<Pod>({ apiVersion: 'v1', kind: 'Pod' }),
    clock,
    resyncMs: 0,
    stallTimeoutMs: 0,
    random: () => 0,
    onRestart: (reason, ns) => restarts.push([reason, ns]),
    ...opts,
  });
  informer.on({
    add: (o) => events.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    update: (o, old) =>
      events.push(`update ${o.metadata?.name}@${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`),
    delete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  const ac = new AbortController();
  const done = informer.start(ac.signal);
  const stop = async (): Promise<void> => {
    ac.abort();
    await done;
  };
  stops.push(stop);
  return { clock, informer, events, restarts, stop, ac };
}

describe('ResilientInformer', () => {
  it('lists, syncs, and serves normalised objects from its cache', async () => {
    const world = new World();
    world.put('ns', 'a', '1', { status: { startTime: new Date('2026-11-27T05:31:23Z') } });
    world.put('ns', 'b', '2');
    const { clock, informer, events } = setup(world);
    const synced = informer.waitForSync(new AbortController().signal);
    await clock.runDue();
    await synced;
    expect(informer.hasSynced()).toBe(true);
    expect(events).toEqual(['add a@1', 'add b@2']);
    expect(informer.get('ns', 'a')).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: 'ns', name: 'a', resourceVersion: '1' },
      status: { startTime: '2026-11-27T05:31:23Z' },
    });
    expect(informer.list('ns').map((o) => o.metadata?.name)).toEqual(['a', 'b']);
    expect(informer.list().length).toBe(2);
    expect(informer.list('other')).toEqual([]);
    expect(informer.get('ns', 'zzz')).toBeUndefined();
  });

  it('passes watch events through, ignoring replays of the same resourceVersion', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    const { clock, informer, events } = setup(world);
    await clock.runDue();
    const inf = world.latest();
    inf.emit('update', { metadata: { namespace: 'ns', name: 'a', resourceVersion: '1' } });
    inf.emit('update', { metadata: { namespace: 'ns', name: 'a', resourceVersion: '5' } });
    inf.emit('add', { metadata: { namespace: 'ns', name: 'c', resourceVersion: '6' } });
    inf.emit('delete', { metadata: { namespace: 'ns', name: 'a', resourceVersion: '7' } });
    expect(events).toEqual(['add a@1', 'update a@1->5', 'add c@6', 'delete a']);
    expect(informer.size()).toBe(1);
  });

  it('restarts after an error with capped exponential backoff, and syncs once the list works', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    world.modes = ['fail', 'fail', 'fail', 'reject', 'fail', 'fail'];
    const { clock, informer, restarts } = setup(world, { backoffBaseMs: 1_000, backoffMaxMs: 8_000 });
    await clock.runDue();
    const startTimes: number[] = [];
    for (let i = 0; i < 7; i++) {
      startTimes.push(clock.now());
      const next = clock.nextDue();
      if (next === undefined) break;
      await clock.tick(next - clock.now());
    }
    // Each failed informer is stopped; new ones start after 1, 2, 4, 8, 8, 8 s.
    expect(world.created).toHaveLength(7);
    expect(startTimes).toEqual([0, 1_000, 3_000, 7_000, 15_000, 23_000, 31_000]);
    expect(world.created.slice(0, 6).every((i) => i.stopped)).toBe(true);
    expect(restarts.every(([r]) => r === 'error')).toBe(true);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.get('ns', 'a')).toBeDefined();
  });

  it('ignores late callbacks of a replaced informer, including its abort error', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    const { clock, informer, events } = setup(world, { backoffBaseMs: 1_000 });
    await clock.runDue();
    const first = world.latest();
    first.fire('error', new Error('stream reset'));
    await clock.runDue();
    // The abort error that stop() reports must not schedule another restart.
    expect(clock.pendingTimers()).toBe(1);
    first.emit('add', { metadata: { namespace: 'ns', name: 'ghost', resourceVersion: '9' } });
    expect(informer.get('ns', 'ghost')).toBeUndefined();
    await clock.tick(1_000);
    expect(world.created).toHaveLength(2);
    expect(events).toEqual(['add a@1']);
  });

  it('diffs the relist after a restart: only changes, additions and missed deletions reach handlers', async () => {
    const world = new World();
    world.put('ns', 'same', '1');
    world.put('ns', 'changed', '2');
    world.put('ns', 'gone', '3');
    const { clock, informer, events } = setup(world, { backoffBaseMs: 1_000 });
    await clock.runDue();
    events.length = 0;
    world.latest().fire('error', new Error('watch 500'));
    // While the informer is down: one change, one deletion, one creation.
    world.put('ns', 'changed', '10');
    world.remove('ns', 'gone');
    world.put('ns', 'new', '11');
    await clock.tick(1_000);
    expect(events.sort()).toEqual(['add new@11', 'delete gone', 'update changed@2->10']);
    expect(
      informer
        .list('ns')
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['changed', 'new', 'same']);
  });

  it('restarts a watch that shows no activity for the stall timeout; activity postpones it', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    const { clock, restarts } = setup(world, { stallTimeoutMs: 60_000 });
    await clock.runDue();
    await clock.tick(50_000);
    world.latest().fire('connect');
    await clock.tick(50_000);
    expect(restarts).toEqual([]);
    await clock.tick(10_000);
    expect(restarts).toEqual([['stall', undefined]]);
    expect(world.created).toHaveLength(2);
    expect(world.created[0]?.stopped).toBe(true);
  });

  it('restarts an initial list that hangs', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    world.modes = ['hang'];
    const { clock, informer, restarts } = setup(world, { stallTimeoutMs: 30_000 });
    await clock.tick(29_999);
    expect(informer.hasSynced()).toBe(false);
    await clock.tick(1);
    expect(restarts).toEqual([['stall', undefined]]);
    expect(informer.hasSynced()).toBe(true);
  });

  it('relists periodically as a safety net and catches what the watch missed', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    const { clock, events, restarts } = setup(world, { resyncMs: 600_000 });
    await clock.runDue();
    world.remove('ns', 'a'); // a delete the watch never delivered
    await clock.tick(599_999);
    expect(events).toEqual(['add a@1']);
    await clock.tick(1);
    expect(restarts).toEqual([['resync', undefined]]);
    expect(events).toEqual(['add a@1', 'delete a']);
    await clock.tick(600_000);
    expect(restarts).toHaveLength(2);
  });

  it('resets the backoff after a healthy period', async () => {
    const world = new World();
    const { clock } = setup(world, { backoffBaseMs: 1_000, backoffMaxMs: 30_000 });
    await clock.runDue();
    world.modes = ['fail'];
    world.latest().fire('error', new Error('x'));
    await clock.tick(1_000); // fails again at once
    await clock.tick(2_000); // third informer lists fine
    expect(world.created).toHaveLength(3);
    await clock.tick(30_000);
    world.latest().fire('error', new Error('y'));
    expect(clock.nextDue()).toBe(clock.now() + 1_000);
  });

  it('runs one informer per namespace and syncs only when all have listed', async () => {
    const world = new World();
    world.put('a', 'p1', '1');
    world.put('b', 'p2', '2');
    world.put('c', 'p3', '3');
    world.modes = ['list', 'fail'];
    const { clock, informer, events } = setup(world, { namespaces: ['a', 'b', 'a'], backoffBaseMs: 1_000 });
    await clock.runDue();
    expect(world.created.map((i) => i.namespace)).toEqual(['a', 'b']);
    expect(informer.hasSynced()).toBe(false);
    await clock.tick(1_000);
    expect(informer.hasSynced()).toBe(true);
    expect(events).toEqual(['add p1@1', 'add p2@2']);

    // A restart of namespace b relists b only and never prunes a's objects.
    world.latest('b').fire('error', new Error('z'));
    await clock.tick(2_000);
    expect(
      informer
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['p1', 'p2']);
    expect(world.created.filter((i) => i.namespace === 'a')).toHaveLength(1);
  });

  it('contains a throwing handler', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    const clock = new FakeClock(0);
    const informer = new ResilientInformer<Pod>({
      name: 'pods',
      factory: world.factory,
      normalize: (o) => o,
      clock,
      resyncMs: 0,
      stallTimeoutMs: 0,
    });
    const seen: string[] = [];
    informer.on({
      add: () => {
        throw new Error('bad handler');
      },
    });
    informer.on({ add: (o) => seen.push(o.metadata?.name ?? '') });
    const ac = new AbortController();
    const done = informer.start(ac.signal);
    await clock.runDue();
    expect(seen).toEqual(['a']);
    ac.abort();
    await done;
  });

  it('on stop, stops its informers and clears every timer; the cache stays readable', async () => {
    const world = new World();
    world.put('ns', 'a', '1');
    const { clock, informer, stop } = setup(world, { resyncMs: 600_000, stallTimeoutMs: 60_000 });
    await clock.runDue();
    expect(clock.pendingTimers()).toBe(2);
    await stop();
    await clock.runDue();
    expect(world.latest().stopped).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    expect(informer.get('ns', 'a')).toBeDefined();
    await expect(informer.start(new AbortController().signal)).rejects.toThrow(/already started/);
  });

  it('stops cleanly while waiting out a backoff', async () => {
    const world = new World();
    world.modes = ['fail'];
    const { clock, stop } = setup(world, { backoffBaseMs: 5_000 });
    await clock.runDue();
    expect(clock.pendingTimers()).toBe(1);
    await stop();
    expect(clock.pendingTimers()).toBe(0);
    await clock.tick(10_000);
    expect(world.created).toHaveLength(1);
  });

  it('waitForSync rejects when its signal aborts first', async () => {
    const world = new World();
    world.modes = ['hang'];
    const { informer } = setup(world);
    const ac = new AbortController();
    const waiting = informer.waitForSync(ac.signal);
    ac.abort(new Error('give up'));
    await expect(waiting).rejects.toThrow('give up');
  });
});
