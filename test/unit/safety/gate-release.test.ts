import { describe, expect, it } from 'vitest';
import {
  decideRelease,
  formatGrace,
  OrphanClock,
  PROBES_CATCH_UP_MS,
  RELEASE_REASON,
  type ReleaseDecision,
  type ReleaseInput,
  releasedCondition,
} from '../../../src/safety/gate-release.ts';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const GRACE = 60_000;
const A = 'readygate.dev/a';
const B = 'readygate.dev/b';

const decide = (over: Partial<ReleaseInput>): ReleaseDecision =>
  decideRelease({
    conditions: [],
    orphaned: [],
    probed: new Set(),
    since: undefined,
    now: T0,
    graceMs: GRACE,
    ...over,
  });

/** Runs the decisions a reconciler makes at each time, carrying `since` along as the shell does. */
function timeline(steps: { at: number; conditions: ReleaseInput['conditions']; orphaned: string[] }[]) {
  let since: ReadonlyMap<string, number> | undefined;
  return steps.map((s) => {
    const d = decide({ ...s, now: T0 + s.at, since });
    since = d.since;
    return d;
  });
}

describe('decideRelease', () => {
  it('starts the clock at the first look, waits the grace out, then releases a False gate', () => {
    const conditions = [{ type: A, status: 'False' }];
    const [first, early, due] = timeline([
      { at: 0, conditions, orphaned: [A] },
      { at: GRACE - 1, conditions, orphaned: [A] },
      { at: GRACE, conditions, orphaned: [A] },
    ]);
    expect(first).toEqual({ release: [], since: new Map([[A, T0]]), requeueAfterMs: GRACE });
    expect(early).toEqual({ release: [], since: new Map([[A, T0]]), requeueAfterMs: 1 });
    expect(due).toEqual({ release: [A], since: new Map([[A, T0]]) });
  });

  it('releases a gate of any status but True, never one without a condition, and never writes True', () => {
    const d = decide({
      conditions: [
        { type: A, status: 'Unknown' },
        { type: B, status: 'True' },
      ],
      orphaned: [A, B, 'readygate.dev/none'],
      since: new Map([
        [A, T0 - GRACE],
        [B, T0 - GRACE],
        ['readygate.dev/none', T0 - GRACE],
      ]),
    });
    expect(d.release).toEqual([A]);
    // Each is still timed: a True that later turns False is released at once.
    expect([...d.since.keys()]).toEqual([A, B, 'readygate.dev/none']);
    expect(d.requeueAfterMs).toBeUndefined();
  });

  it('releases an injected gate that never got a condition, and only an injected one', () => {
    const d = decide({
      orphaned: [A, B],
      injected: [A],
      since: new Map([
        [A, T0 - GRACE],
        [B, T0 - GRACE],
      ]),
    });
    // A was added by gate injection: it exists only because its policy did. B was written by the
    // pod's author (perhaps before the policy exists): it is not turned Ready unprobed.
    expect(d.release).toEqual([A]);
    const early = decide({ orphaned: [A], injected: [A], since: new Map([[A, T0 - GRACE + 5]]) });
    expect(early).toMatchObject({ release: [], requeueAfterMs: 5 });
  });

  it('releases a True gate that turned False after the grace, at once', () => {
    const [asTrue, asFalse] = timeline([
      { at: 0, conditions: [{ type: A, status: 'True' }], orphaned: [A] },
      { at: 2 * GRACE, conditions: [{ type: A, status: 'False' }], orphaned: [A] },
    ]);
    expect(asTrue?.requeueAfterMs).toBeUndefined();
    expect(asFalse?.release).toEqual([A]);
  });

  it('forgets a gate provided again: a policy deleted and re-created within the grace flips nothing', () => {
    const conditions = [{ type: A, status: 'False' }];
    const steps = timeline([
      { at: 0, conditions, orphaned: [A] },
      { at: GRACE / 2, conditions, orphaned: [] }, // provided again
      { at: GRACE + 1, conditions, orphaned: [] },
      { at: GRACE + 2, conditions, orphaned: [A] }, // orphaned again: a fresh grace
    ]);
    expect(steps.map((d) => d.release)).toEqual([[], [], [], []]);
    expect(steps[1]?.since.size).toBe(0);
    expect(steps[3]?.since.get(A)).toBe(T0 + GRACE + 2);
    expect(steps[3]?.requeueAfterMs).toBe(GRACE);
  });

  it('waits for the probe manager to drop a deleted policy before releasing its gate', () => {
    const d = decide({
      conditions: [{ type: A, status: 'False' }],
      orphaned: [A],
      probed: new Set([A]),
      since: new Map([[A, T0 - GRACE]]),
    });
    expect(d).toEqual({ release: [], since: new Map([[A, T0 - GRACE]]), requeueAfterMs: PROBES_CATCH_UP_MS });
  });

  it('asks to look again at the earliest gate due', () => {
    const d = decide({
      conditions: [
        { type: A, status: 'False' },
        { type: B, status: 'False' },
      ],
      orphaned: [A, B],
      since: new Map([[B, T0 - 50_000]]),
    });
    expect(d.release).toEqual([]);
    expect(d.requeueAfterMs).toBe(10_000);
  });

  it('with a grace of 0 releases nothing and times nothing (keep, operator-wide)', () => {
    const d = decide({
      conditions: [{ type: A, status: 'False' }],
      orphaned: [A],
      since: new Map([[A, T0 - 10 * GRACE]]),
      graceMs: 0,
    });
    expect(d).toEqual({ release: [], since: new Map() });
  });

  it('never counts a first sighting in the future (a clock stepped back) as time served', () => {
    const d = decide({
      conditions: [{ type: A, status: 'False' }],
      orphaned: [A],
      since: new Map([[A, T0 + 5 * GRACE]]),
    });
    expect(d.since.get(A)).toBe(T0);
    expect(d.requeueAfterMs).toBe(GRACE);
  });
});

describe('releasedCondition', () => {
  it('is True with reason GateReleased, and says why and after how long', () => {
    expect(releasedCondition('shop', A, GRACE)).toEqual({
      type: A,
      status: 'True',
      reason: RELEASE_REASON,
      message:
        'no ProbePolicy in namespace shop provides readygate.dev/a to this pod any more (deleted, or its selector no longer matches); released after 1m so the pod is not held NotReady',
    });
  });

  it('formats the grace as the flag takes it', () => {
    expect([1500, 2000, 90_000, 120_000, 7_200_000].map(formatGrace)).toEqual(['1500ms', '2s', '90s', '2m', '2h']);
  });
});

describe('OrphanClock', () => {
  it('keeps times per pod UID, drops empty entries and forgets gone pods', () => {
    const clock = new OrphanClock();
    clock.set('ns/p', 'u1', new Map([[A, T0]]));
    expect(clock.get('ns/p', 'u1')?.get(A)).toBe(T0);
    expect(clock.get('ns/p', 'u2')).toBeUndefined(); // re-created under the same name
    clock.set('ns/p', 'u1', new Map());
    expect(clock.size).toBe(0);
    clock.set('ns/p', 'u1', new Map([[A, T0]]));
    clock.forget('ns/p');
    expect(clock.get('ns/p', 'u1')).toBeUndefined();
  });

  it('is bounded: beyond its size the pod set longest ago is dropped', () => {
    const clock = new OrphanClock(2);
    clock.set('ns/a', 'a', new Map([[A, T0]]));
    clock.set('ns/b', 'b', new Map([[A, T0]]));
    clock.set('ns/a', 'a', new Map([[A, T0]])); // looked at again: now the most recent
    clock.set('ns/c', 'c', new Map([[A, T0]]));
    expect(clock.size).toBe(2);
    expect(clock.get('ns/b', 'b')).toBeUndefined();
    expect(clock.get('ns/a', 'a')).toBeDefined();
  });
});
