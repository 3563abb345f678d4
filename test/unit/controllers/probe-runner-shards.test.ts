// The probe runner on a share of the pods (docs/sharding.md): it probes only the pods it owns,
// forgets the ones it no longer owns, and counts the other replicas' flips against the failsafe's
// global budget. Real TCP probes on loopback: 127.0.0.1 listens, 127.0.0.2 refuses.
import { createServer, type Server } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { phaseOf } from '../../../src/probes/scheduler.ts';
import { testProbeRunner } from '../../support/probe-runner.ts';
import { eventually } from '../../support/wait.ts';

const GATE = 'readygate.dev/db';
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);

function pod(name: string, ip: string, gate?: { status: string; reason: string; at: number }): V1Pod {
  return {
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'db' } },
    spec: { containers: [{ name: 'db' }], readinessGates: [{ conditionType: GATE }] },
    status: {
      phase: 'Running',
      podIP: ip,
      conditions: gate
        ? [{ type: GATE, status: gate.status, reason: gate.reason, lastTransitionTime: new Date(gate.at) as never }]
        : [],
    },
  };
}

let server: Server | undefined;
let stop: (() => void) | undefined;
afterEach(async () => {
  stop?.();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function listen(): Promise<number> {
  server = createServer((s) => {
    s.on('error', () => {});
    s.end();
  });
  return new Promise((resolve) =>
    server!.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port)),
  );
}

function runner(pods: V1Pod[], owned: Set<string>) {
  const r = testProbeRunner(pods, { startAt: T0, owns: (uid) => owned.has(uid) });
  stop = () => r.probes.stop();
  return r;
}

const policyOf = (port: number, maxUnavailable: number | string = '50%'): ProbePolicy => ({
  metadata: { name: 'db', namespace: 'shop', uid: 'p1', generation: 1 },
  spec: {
    conditionType: GATE,
    selector: { matchLabels: { app: 'db' } },
    probe: { tcpSocket: { port }, periodSeconds: 10, failureThreshold: 1 },
    failsafe: { maxUnavailable },
  },
});

describe('probe runner on a share of the pods', () => {
  it('probes only the pods it owns and forgets those it releases', async () => {
    const port = await listen();
    const pods = ['a', 'b', 'c'].map((n) => pod(n, '127.0.0.1'));
    const owned = new Set(['uid-a', 'uid-b']);
    const { clock, probes } = runner(pods, owned);
    probes.syncPolicy(policyOf(port), pods, {});
    await clock.tick(0);
    await eventually(() => {
      expect(probes.desiredFor('uid-a')[0]?.status).toBe('True');
      expect(probes.desiredFor('uid-b')[0]?.status).toBe('True');
    }, 10_000);
    expect(probes.desiredFor('uid-c')).toEqual([]);

    owned.delete('uid-b');
    probes.releaseUnowned();
    expect(probes.desiredFor('uid-b')).toEqual([]);
    owned.add('uid-c'); // acquired: the next policy pass seeds and probes it
    probes.syncPolicy(policyOf(port), pods, {});
    await clock.tick(0);
    await eventually(() => expect(probes.desiredFor('uid-c')[0]?.status).toBe('True'), 10_000);
    await clock.tick(20_000);
    expect(probes.desiredFor('uid-b')).toEqual([]);
  });

  it("holds its own flip when another replica's recent flip used up the global budget", async () => {
    const port = await listen();
    const ok = { status: 'True', reason: 'ProbeSucceeded', at: T0 - 60_000 };
    // b is another replica's and was flipped by it 5 s ago; a is ours and now fails.
    const pods = [
      pod('a', '127.0.0.2', ok),
      pod('b', '127.0.0.1', { status: 'False', reason: 'ProbeFailed', at: T0 - 5_000 }),
    ];
    const { clock, probes } = runner(pods, new Set(['uid-a']));
    probes.syncPolicy(policyOf(port, 1), pods, {});
    await clock.tick(0);
    await clock.tick(10_000);
    await eventually(() => expect(probes.failsafe('shop/db')?.reason).toBe('Failsafe'), 10_000);
    expect(probes.desiredFor('uid-a')[0]?.status).not.toBe('False');
  });

  it('flips its own pod when the budget is free, and counts a foreign flip it sees later', async () => {
    const port = await listen();
    const ok = { status: 'True', reason: 'ProbeSucceeded', at: T0 - 60_000 };
    // Only a fails: alone it would fit the budget of 1 (the next test), with b's flip it does not.
    const pods = [pod('a', '127.0.0.2', ok), pod('b', '127.0.0.1', ok), pod('c', '127.0.0.1', ok)];
    const { clock, probes } = runner(pods, new Set(['uid-a', 'uid-c']));
    probes.syncPolicy(policyOf(port, 1), pods, {});
    // Another replica flips b now: seen in the cache as an update of a pod this one does not own.
    const flipped = pod('b', '127.0.0.1', { status: 'False', reason: 'ProbeFailed', at: T0 });
    probes.foreignFlip(flipped, pods[1]);
    await clock.tick(0);
    await clock.tick(10_000);
    await eventually(() => expect(probes.failsafe('shop/db')?.reason).toBe('Failsafe'), 10_000);
    expect(probes.desiredFor('uid-a')[0]?.status).not.toBe('False');
    expect(probes.desiredFor('uid-c')[0]?.status).toBe('True');
  });

  it("with a share-only cache, counts the peers' reported flips and targets against the global budget", async () => {
    const port = await listen();
    const ok = { status: 'True', reason: 'ProbeSucceeded', at: T0 - 60_000 };
    // The cache holds only this replica's pod a; a peer reports 3 targets, one flipped 5 s ago.
    const pods = [pod('a', '127.0.0.2', ok)];
    const { clock, probes } = runner(pods, new Set(['uid-a']));
    const elsewhere = { targets: 3, flips: [{ id: `peer#${T0 - 5_000}#0`, at: T0 - 5_000 }] };
    probes.syncPolicy(policyOf(port, 1), pods, { elsewhere });
    await clock.tick(0);
    await clock.tick(10_000);
    await eventually(() => expect(probes.failsafe('shop/db')?.reason).toBe('Failsafe'), 10_000);
    expect(probes.failsafe('shop/db')?.message).toContain('of 4 pods, across replicas');
    expect(probes.desiredFor('uid-a')[0]?.status).not.toBe('False');
  });

  it('without foreign flips, its own failing pod flips', async () => {
    const port = await listen();
    const ok = { status: 'True', reason: 'ProbeSucceeded', at: T0 - 60_000 };
    const pods = [pod('a', '127.0.0.2', ok), pod('b', '127.0.0.1', ok)];
    const { clock, probes } = runner(pods, new Set(['uid-a']));
    probes.syncPolicy(policyOf(port, 1), pods, {});
    await clock.tick(0);
    await clock.tick(10_000);
    await eventually(() => expect(probes.desiredFor('uid-a')[0]?.status).toBe('False'), 10_000);
    expect(probes.failsafe('shop/db')).toBeUndefined();
  });

  it('guards the first write of a target seeded from a condition, and seeds again only what disagrees', async () => {
    const port = await listen();
    const ok = { status: 'True', reason: 'ProbeSucceeded', at: T0 - 60_000 };
    const pods = [pod('a', '127.0.0.1', ok), pod('n', '127.0.0.1')];
    const { clock, probes } = runner(pods, new Set(['uid-a', 'uid-n']));
    probes.syncPolicy(policyOf(port), pods, {});
    // a carries a condition another replica may have just written; a new pod n carries none.
    expect(probes.writeGuarded('uid-a')).toBe(true);
    expect(probes.writeGuarded('uid-n')).toBe(false);
    await clock.tick(0);
    await clock.tick(10_000);
    await eventually(() => expect(probes.desiredFor('uid-a')[0]?.status).toBe('True'), 10_000);
    // The pod agrees with the debouncer: nothing is reseeded, the desired condition stays.
    probes.reseed(pods[0]!);
    expect(probes.desiredFor('uid-a')[0]?.status).toBe('True');
    // A newer view disagrees (the old owner flipped it): seeded again from it, no desire until probed.
    probes.reseed(pod('a', '127.0.0.1', { status: 'False', reason: 'ProbeFailed', at: T0 }));
    expect(probes.desiredFor('uid-a')).toEqual([]);
    await clock.tick(10_000);
    await eventually(() => expect(probes.desiredFor('uid-a')[0]?.status).toBe('True'), 10_000);
    probes.written('uid-a');
    expect(probes.writeGuarded('uid-a')).toBe(false);
  });

  it('probes a pod taken over at once when the handover spanned its slot, another at its slot', async () => {
    const ok = { status: 'True', reason: 'ProbeSucceeded', at: T0 - 60_000 };
    // Both seeded True and refusing: a probe of either turns its desired condition False.
    const pods = [pod('a', '127.0.0.2', ok), pod('b', '127.0.0.2', ok)];
    const since: Record<string, number> = { 'uid-a': T0 - 60_000, 'uid-b': T0 + 1 };
    const r = testProbeRunner(pods, { startAt: T0, owns: () => true, missedSince: (uid) => since[uid] });
    stop = () => r.probes.stop();
    const phaseB = phaseOf('shop/db#uid-b', 10_000);
    expect(phaseB).toBeGreaterThan(0); // T0 is on the 10 s grid: b's slot is not now
    r.probes.syncPolicy(policyOf(1, '100%'), pods, {});
    await r.clock.tick(0);
    await eventually(() => expect(r.probes.desiredFor('uid-a')[0]?.status).toBe('False'), 10_000);
    expect(r.probes.desiredFor('uid-b')[0]?.status).not.toBe('False');
    await r.clock.tick(phaseB);
    await eventually(() => expect(r.probes.desiredFor('uid-b')[0]?.status).toBe('False'), 10_000);
  });
});
