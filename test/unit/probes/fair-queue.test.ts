// The fair queue's decisions, without a scheduler or a clock: who starts next, and when nobody may.
import { describe, expect, it } from 'vitest';
import { FairQueue, type TenantHandle } from '../../../src/probes/fair-queue.ts';

const live = (): boolean => true;

/** Takes every item that may start now, in order. */
function drain<T>(q: FairQueue<T>, isLive: (item: T) => boolean = live): Array<{ item: T; handle: TenantHandle }> {
  const out: Array<{ item: T; handle: TenantHandle }> = [];
  for (let next = q.take(isLive); next; next = q.take(isLive)) out.push(next);
  return out;
}

describe('FairQueue', () => {
  it('is first in, first out for one tenant, up to capacity', () => {
    const q = new FairQueue<string>(3);
    const h = q.attach();
    for (const x of ['a', 'b', 'c', 'd', 'e']) q.push(h, x);
    expect(drain(q).map((t) => t.item)).toEqual(['a', 'b', 'c']);
    q.release(h);
    expect(drain(q).map((t) => t.item)).toEqual(['d']);
    expect(q.inFlight).toBe(3);
  });

  it("takes a tenant's urgent items before its others, first in first out within each", () => {
    const q = new FairQueue<string>(10);
    const h = q.attach({ namespace: 'a', policy: 'p' });
    q.push(h, 'steady-1');
    q.push(h, 'new-1', true);
    q.push(h, 'steady-2');
    q.push(h, 'new-2', true);
    expect(drain(q).map((t) => t.item)).toEqual(['new-1', 'new-2', 'steady-1', 'steady-2']);
  });

  it("urgent items do not jump another tenant's turn", () => {
    const q = new FairQueue<string>(2);
    const a = q.attach({ namespace: 'a', policy: 'p' });
    const b = q.attach({ namespace: 'b', policy: 'p' });
    q.push(a, 'a-steady');
    q.push(b, 'b-new-1', true);
    q.push(b, 'b-new-2', true);
    expect(drain(q).map((t) => t.item)).toEqual(['a-steady', 'b-new-1']);
  });

  it('takes turns between namespaces with equal runs in flight (round robin)', () => {
    const q = new FairQueue<string>(100);
    const a = q.attach({ namespace: 'a', policy: 'p' });
    const b = q.attach({ namespace: 'b', policy: 'p' });
    const c = q.attach({ namespace: 'c', policy: 'p' });
    for (let i = 0; i < 3; i++) q.push(a, `a${i}`);
    for (let i = 0; i < 3; i++) q.push(b, `b${i}`);
    q.push(c, 'c0');
    expect(drain(q).map((t) => t.item)).toEqual(['a0', 'b0', 'c0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('gives a freed slot to the waiting namespace with the fewest runs in flight', () => {
    const q = new FairQueue<string>(8);
    const a = q.attach({ namespace: 'a', policy: 'p' });
    const b = q.attach({ namespace: 'b', policy: 'p' });
    for (let i = 0; i < 20; i++) q.push(a, `a${i}`);
    // a takes what the cap leaves it (8 − a quarter = 6); b's first run is not held back.
    expect(drain(q).map((t) => t.item)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5']);
    for (let i = 0; i < 5; i++) q.push(b, `b${i}`);
    expect(drain(q).map((t) => t.item)).toEqual(['b0', 'b1']);
    // Each slot a frees goes to b while b has fewer in flight, then they take turns.
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      q.release(a);
      order.push(...drain(q).map((t) => t.item));
    }
    expect(order).toEqual(['b2', 'b3', 'a6']);
    expect([q.inFlightOf('a'), q.inFlightOf('b')]).toEqual([4, 4]);
    q.release(b);
    expect(drain(q).map((t) => t.item)).toEqual(['b4']);
  });

  it('keeps a quarter of the slots from one namespace while another has targets', () => {
    const q = new FairQueue<number>(256);
    const hog = q.attach({ namespace: 'hog', policy: 'tarpit' });
    for (let i = 0; i < 1000; i++) q.push(hog, i);
    expect(drain(q)).toHaveLength(256); // alone: work conserving
    for (let i = 0; i < 256; i++) q.release(hog);
    q.attach({ namespace: 'victim', policy: 'p' });
    expect(drain(q)).toHaveLength(192);
    expect(q.reserve).toBe(64);
  });

  it('keeps a slot for each namespace with nothing in flight, however many namespaces hang', () => {
    const q = new FairQueue<string>(16);
    const hogs = ['h1', 'h2', 'h3'].map((ns) => q.attach({ namespace: ns, policy: 'p' }));
    for (const h of hogs) for (let i = 0; i < 20; i++) q.push(h, 'hang');
    const victims = ['v1', 'v2'].map((ns) => q.attach({ namespace: ns, policy: 'p' }));
    expect(drain(q)).toHaveLength(14); // 16 − one each for v1 and v2
    q.push(victims[0]!, 'v1');
    q.push(victims[1]!, 'v2');
    expect(drain(q).map((t) => t.item)).toEqual(['v1', 'v2']);
    // The reservation is capped at a quarter of the slots (4 of 16): with more idle namespaces
    // than that, the hogs still get the rest.
    const r = new FairQueue<string>(16);
    const hog = r.attach({ namespace: 'hog', policy: 'p' });
    for (let i = 0; i < 40; i++) r.push(hog, 'hang');
    for (let i = 0; i < 10; i++) r.attach({ namespace: `idle-${i}`, policy: 'p' });
    expect(drain(r)).toHaveLength(12);
  });

  it('shares a namespace between its policies the same way', () => {
    const q = new FairQueue<string>(6);
    const slow = q.attach({ namespace: 'shop', policy: 'slow' });
    const fast = q.attach({ namespace: 'shop', policy: 'fast' });
    for (let i = 0; i < 8; i++) q.push(slow, `s${i}`);
    expect(drain(q)).toHaveLength(6); // one namespace alone: no cap, no reservation
    q.push(fast, 'f0');
    q.push(fast, 'f1');
    q.release(slow);
    q.release(slow);
    // slow has 4 in flight, fast none: fast goes first although slow's s6 and s7 queued first.
    expect(drain(q).map((t) => t.item)).toEqual(['f0', 'f1']);
    expect([q.inFlightOf('shop', 'slow'), q.inFlightOf('shop', 'fast')]).toEqual([4, 2]);
    q.release(fast);
    q.release(fast);
    q.push(fast, 'f2');
    q.release(slow);
    q.release(slow);
    expect(drain(q).map((t) => t.item)).toEqual(['f2', 's6', 's7']);
  });

  it('drops stale items without counting them and forgets tenants that are gone', () => {
    const q = new FairQueue<string>(4);
    const a = q.attach({ namespace: 'a', policy: 'p' });
    for (const x of ['x', 'stale', 'y']) q.push(a, x);
    expect(drain(q, (x) => x !== 'stale').map((t) => t.item)).toEqual(['x', 'y']);
    expect(q.inFlight).toBe(2);
    q.detach(a);
    expect(q.size()).toEqual({ namespaces: 1, policies: 1 }); // runs still in flight
    q.release(a);
    q.release(a);
    expect(q.size()).toEqual({ namespaces: 0, policies: 0 });
    const b = q.attach({ namespace: 'b', policy: 'p' });
    q.push(b, 'queued');
    q.detach(b);
    expect(q.size()).toEqual({ namespaces: 1, policies: 1 }); // until take reaches the item
    expect(drain(q, () => false)).toEqual([]);
    expect(q.size()).toEqual({ namespaces: 0, policies: 0 });
  });

  it('rejects a bad capacity and unmatched detach or release', () => {
    expect(() => new FairQueue(0)).toThrow(RangeError);
    const q = new FairQueue<string>(1);
    const a = q.attach({ namespace: 'a', policy: 'p' });
    expect(() => q.release(a)).toThrow('release of a/p with nothing in flight');
    q.detach(a);
    const b = q.attach({ namespace: 'b', policy: 'p' });
    q.detach(b);
    expect(() => q.detach(b)).toThrow('detach of b/p without a matching attach');
  });
});
