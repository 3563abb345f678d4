// Which fence guards each write (src/controllers/shards.ts): unsharded, the leader's for all;
// sharded, each pod's bucket fence, the leader's for policy status, PolicyDeleted and PodsNotGated.
import { describe, expect, it } from 'vitest';
import { handoverTimes, type Sharding, writeGuards } from '../../../src/controllers/shards.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { Fence } from '../../../src/safety/fencing.ts';
import { HANDOVER_HORIZON_MS } from '../../../src/safety/sharding.ts';

const clock = new FakeClock();
const fence = () => new Fence({ clock, renewDeadlineMs: 4_000, marginMs: 500 });
const held = () => {
  const f = fence();
  f.renewed(clock.now());
  return f;
};

function sharding(bucketFences: Map<string, Fence>, any: boolean): Sharding {
  return {
    owns: (uid) => bucketFences.get(uid)?.holds() ?? false,
    fenceFor: (uid) => bucketFences.get(uid) ?? fence(),
    holdsAny: () => any,
  } as Sharding;
}

describe('writeGuards', () => {
  it('unsharded: every write goes through the leader fence, and the leader always writes status', () => {
    const leader = fence();
    const g = writeGuards(leader, undefined);
    expect(g.podFence('any')).toBe(leader);
    expect(g.statusFence).toBe(leader);
    expect(g.writesStatus()).toBe(true);
    expect(g.shards).toBeUndefined();
    expect(g.eventAllowed({ kind: 'Pod', uid: 'u' }, 'NoProbePolicy')).toBe(false);
    leader.renewed(clock.now());
    expect(g.eventAllowed({ kind: 'Pod', uid: 'u' }, 'NoProbePolicy')).toBe(true);
  });

  it("sharded: a pod's writes and Events go through its bucket fence, status through the leader's", () => {
    const leader = fence();
    const mine = held();
    const g = writeGuards(leader, sharding(new Map([['mine', mine]]), true));
    expect(g.podFence('mine')).toBe(mine);
    expect(g.podFence('theirs')).not.toBe(leader);
    expect(g.writesStatus()).toBe(false);
    expect(g.shards?.owns('mine')).toBe(true);
    expect(g.shards?.owns('theirs')).toBe(false);
    expect(g.eventAllowed({ kind: 'Pod', uid: 'mine' }, 'NoProbePolicy')).toBe(true);
    expect(g.eventAllowed({ kind: 'Pod', uid: 'theirs' }, 'NoProbePolicy')).toBe(false);
    // A replica probing a share speaks for it; a deletion, and the ungated pods of the whole
    // policy, are said once, by the status writer.
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'FailsafeTripped')).toBe(true);
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PolicyDeleted')).toBe(false);
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PodsNotGated')).toBe(false);
    leader.renewed(clock.now());
    expect(g.writesStatus()).toBe(true);
    expect(g.shards?.isStatusWriter()).toBe(true);
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PolicyDeleted')).toBe(true);
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PodsNotGated')).toBe(true);
  });

  it('sharded with a share-only cache: each replica holding buckets speaks for its ungated pods', () => {
    const leader = fence();
    let share = true;
    const g = writeGuards(leader, sharding(new Map(), true), () => share);
    expect(g.shards?.countsShare()).toBe(true);
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PodsNotGated')).toBe(true);
    // A deletion is still said once, by the status writer.
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PolicyDeleted')).toBe(false);
    expect(
      writeGuards(leader, sharding(new Map(), false), () => true).eventAllowed({ kind: 'ProbePolicy' }, 'PodsNotGated'),
    ).toBe(false);
    share = false;
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'PodsNotGated')).toBe(false);
  });

  it('sharded: a replica holding no bucket records no policy Event unless it writes status', () => {
    const g = writeGuards(fence(), sharding(new Map(), false));
    expect(g.eventAllowed({ kind: 'ProbePolicy' }, 'ProbesOverloaded')).toBe(false);
  });
});

describe('handoverTimes', () => {
  it('dates a held bucket from its acquisition, less the takeover bound, and forgets it when lost', async () => {
    const c = new FakeClock(1_000_000);
    const h = handoverTimes(c, 15_000, 2_000);
    expect(h.since(3)).toBeUndefined();
    h.acquired(3);
    await c.tick(5_000);
    expect(h.since(3)).toBe(1_000_000 - 19_000);
    h.lost(3);
    expect(h.since(3)).toBeUndefined();
    h.acquired(3); // taken again later: dated from then
    expect(h.since(3)).toBe(1_005_000 - 19_000);
    // A target set up long after (a policy created since) is not the takeover's.
    await c.tick(HANDOVER_HORIZON_MS);
    expect(h.since(3)).toBe(1_005_000 - 19_000);
    await c.tick(1);
    expect(h.since(3)).toBeUndefined();
  });
});
