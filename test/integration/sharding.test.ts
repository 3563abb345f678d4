// Sharding across three operator replicas (docs/sharding.md, §4, the CI gate of issue 14): 300
// healthy pods under 2 policies, `--shard-buckets 16`. Every replica probes and writes pods/status
// only for the pods in the buckets it holds, each write fenced by its bucket's Lease; the leader
// Lease holder alone writes ProbePolicy status. The audit log proves who wrote what: this file
// runs its own control plane that logs Lease bodies (each renew's renewTime is when its holder
// sent it, the start of its renew deadline), and every replica has a token of its own, so the
// credential id (the token's JTI) tells whose each write was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketLeaseName } from '../../src/kube/shard-leases.ts';
import { fairShare } from '../../src/safety/sharding.ts';
import {
  type AuditEvent,
  auditPosition,
  lateWrites,
  madeBy,
  podStatusPatches,
  readAudit,
  receivedAt,
  writesOf,
} from '../support/audit.ts';
import { probePoliciesApi } from '../support/kube-admin.ts';
import { OPERATOR_NAMESPACE, OPERATOR_USER, probeRounds } from '../support/operator.ts';
import { alive, metric, type Replica, testReplicas } from '../support/replicas.ts';
import {
  BUCKETS,
  holdersOf,
  LEASE,
  LEASE_DURATION_MS,
  PODS_PER_POLICY,
  POLICIES,
  policyOfPod,
  RENEW_DEADLINE_MS,
  RETRY_PERIOD_MS,
  SET_ID,
  ShardTestbed,
} from '../support/shard-testbed.ts';
import { eventually } from '../support/wait.ts';

let bed: ShardTestbed;
const bucketOfPod = (name: string) => bed.bucketOfPod(name);

beforeAll(async () => {
  bed = await ShardTestbed.start({ name: 'sharding', firstIp: '127.72.0.1' });
}, 240_000);

afterAll(async () => {
  await bed?.stop();
});

/** The targets of each policy in the buckets `owned`. */
function targetsIn(owned: number[]): Record<string, number> {
  const targets: Record<string, number> = Object.fromEntries(POLICIES.map((p) => [p, 0]));
  for (const name of bed.uids.keys()) {
    if (owned.includes(bucketOfPod(name))) targets[policyOfPod(name)] = (targets[policyOfPod(name)] ?? 0) + 1;
  }
  return targets;
}

/** The one live replica whose readygate_leader is 1, checked against the leader Lease's holder. */
async function oneLeader(replicas: Replica[]): Promise<Replica> {
  return eventually(async () => {
    const live = replicas.filter(alive);
    const leading = [];
    for (const r of live) if ((await metric(r, 'readygate_leader')) === 1) leading.push(r);
    const lease = await bed.coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE });
    expect(leading.map((r) => r.name)).toEqual([lease.spec?.holderIdentity]);
    return leading[0] as Replica;
  }, 30_000);
}

const isPodStatus = (e: AuditEvent) => e.objectRef?.resource === 'pods' && e.objectRef.subresource === 'status';
const isPolicyStatus = (e: AuditEvent) =>
  e.objectRef?.resource === 'probepolicies' && e.objectRef.subresource === 'status';

/**
 * The single-writer rule, from the audit log after a position: each pods/status write within a
 * renew deadline of its writer's renew of the pod's bucket Lease, each ProbePolicy write within
 * one of its renews of the leader Lease, and before that Lease next changed hands (lateWrites).
 * Returns the writes outside, and how many were checked.
 */
function unfencedWrites(after: number): { late: string[]; podWrites: number; policyWrites: number } {
  const late = lateWrites(bed.cp.dir, bed.started, after, {
    namespace: OPERATOR_NAMESPACE,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    leaseOf: (e) => {
      if (isPodStatus(e)) return bucketLeaseName(SET_ID, bucketOfPod(e.objectRef?.name ?? ''));
      if (e.objectRef?.resource === 'probepolicies') return LEASE;
      return undefined; // Leases are the fences themselves; Events are not aborted in flight (docs/sharding.md)
    },
  });
  const writes = bed.started.flatMap((r) => writesOf(bed.cp.dir, r, after));
  return {
    late,
    podWrites: writes.filter(isPodStatus).length,
    policyWrites: writes.filter((e) => e.objectRef?.resource === 'probepolicies').length,
  };
}

/** A figure: the pods/status PATCHes so far, by response code, by writer, and how many pods got more than one. */
function startUpWrites(): string {
  const writes = bed.started.flatMap((r) => writesOf(bed.cp.dir, r, 0)).filter(isPodStatus);
  const count = (keys: string[]) =>
    Object.fromEntries(new Map(keys.map((k) => [k, keys.filter((x) => x === k).length])));
  const perPod = Object.values(count(writes.map((e) => e.objectRef?.name ?? '')));
  return (
    `${writes.length} pods/status PATCHes on ${perPod.length} pods, ${perPod.filter((n) => n > 1).length} ` +
    `of them written more than once; by response code ${JSON.stringify(count(writes.map((e) => String(e.responseStatus?.code))))}, ` +
    `by writer ${JSON.stringify(count(writes.map(writerOf)))}`
  );
}

/** The name of the replica whose token made the request. */
const writerOf = (e: AuditEvent) => bed.started.find((r) => madeBy(r)(e))?.name ?? '?';

describe('sharding: three replicas, 300 pods, 16 buckets', () => {
  it('splits the buckets, writes each pod from its bucket holder only, and survives a kill and a stop without flips', async () => {
    const replicas = testReplicas();
    const [a, b, c] = [
      await bed.startReplica('shard-a', replicas),
      await bed.startReplica('shard-b', replicas),
      await bed.startReplica('shard-c', replicas),
    ];
    const share = fairShare(BUCKETS, 3);

    // 1. Every gate True, every bucket held (at most the fair share each), every replica probes,
    // one leader.
    await eventually(async () => expect(await bed.gatesNot('True')).toEqual([]), 120_000, 500);
    const held = await eventually(() => bed.expectSplit(replicas, share), 60_000, 250);
    for (const r of replicas) {
      await eventually(async () => expect(await metric(r, 'readygate_probes_total'), r.name).toBeGreaterThan(0));
    }
    const leader = await oneLeader(replicas);
    const leaders = await Promise.all(replicas.map((r) => metric(r, 'readygate_leader')));
    expect(leaders.reduce((x, y) => x + y, 0)).toBe(1);
    console.log(
      `split: ${replicas.map((r) => `${r.name} ${holdersOf(held, r.name).length} buckets`).join(', ')}; leader ${leader.name}`,
    );

    // 2. Single writer: every write so far from the holder of the pod's bucket (or of the leader
    // Lease, for ProbePolicy status), within a renew deadline of one of its renews.
    const start = unfencedWrites(0);
    console.log(`start-up: ${startUpWrites()}`);
    expect(start.late).toEqual([]);
    expect(start.podWrites).toBeGreaterThanOrEqual(bed.uids.size); // each pod's first True, at least
    // Only the leader Lease's holder of the moment wrote policy status (checked in start.late): a
    // leader whose renews were late on a loaded machine may hand over without a fault.
    expect(start.policyWrites).toBeGreaterThan(0);

    // 3. Steady state: 3 probe rounds per replica, over the targets of its buckets, bring no write.
    const steady = auditPosition(bed.cp.dir);
    const split = await bed.expectSplit(replicas, share);
    for (const r of replicas) await probeRounds(r.op.healthUrl, targetsIn(holdersOf(split, r.name)), 3);
    expect(podStatusPatches(bed.cp.dir, OPERATOR_USER, bed.ns, steady)).toEqual([]);
    expect(await bed.bucketHolders()).toEqual(split); // the rounds counted were those of buckets held throughout

    // 4. SIGKILL the leader: its buckets are held again within a lease duration and two retry
    // periods, and no gate flips.
    const victim = leader;
    const survivors = replicas.filter((r) => r !== victim);
    const orphans = holdersOf(await bed.expectSplit(replicas, share), victim.name);
    const beforeKill = auditPosition(bed.cp.dir);
    const killedAt = Date.now();
    await victim.op.kill();
    const bound = LEASE_DURATION_MS + 2 * RETRY_PERIOD_MS;
    await eventually(() => bed.expectSplit(survivors, fairShare(BUCKETS, 2)), killedAt + bound - Date.now(), 50);
    const heldAgainMs = Date.now() - killedAt;
    const after = await bed.bucketHolders();
    await bed.roundsAcross(survivors, 3);
    const killWrites = podStatusPatches(bed.cp.dir, OPERATOR_USER, bed.ns, beforeKill);
    const newLeader = await oneLeader(survivors);
    console.log(
      `SIGKILL of ${victim.name} (leader, ${orphans.length} buckets): held again after ${heldAgainMs} ms ` +
        `(bound ${bound} ms; lease 6 s, renew 4 s, retry 1 s), now ` +
        `${survivors.map((r) => `${r.name} ${holdersOf(after, r.name).length}`).join(', ')}; ` +
        `new leader ${newLeader.name}; pods/status PATCHes since the kill over 3 rounds: ${killWrites.length}`,
    );
    expect(killWrites.map((e) => e.objectRef?.name)).toEqual([]);
    expect(await bed.gatesNot('True')).toEqual([]);

    // 5. A failing pod in a taken-over bucket: flipped False by its bucket's new holder, and the
    // leader counts it in its policy's readyPods (149 of the policy's 150; the doc's "299" would
    // be one policy over all 300 pods).
    const failing = [...bed.uids.keys()].find((n) => policyOfPod(n) === 'alpha' && orphans.includes(bucketOfPod(n)));
    expect(failing, `no alpha pod in ${victim.name}'s buckets ${orphans}`).toBeDefined();
    const failingPod = failing as string;
    const owner = survivors.find((r) => r.name === after.get(bucketOfPod(failingPod))) as Replica;
    const beforeFail = auditPosition(bed.cp.dir);
    bed.fixture.setApp(bed.ns, failingPod, 'failing');
    await eventually(async () => expect((await bed.gates()).get(failingPod)).toBe('False'), 30_000);
    await eventually(async () => {
      const policy = (await probePoliciesApi(bed.kc).get(bed.ns, 'alpha')) as {
        status?: { matchedPods?: number; readyPods?: number; failingPods?: string[] };
      };
      expect(policy.status).toMatchObject({ matchedPods: PODS_PER_POLICY, readyPods: PODS_PER_POLICY - 1 });
      expect(policy.status?.failingPods).toEqual([failingPod]);
    }, 30_000);
    const failWrites = podStatusPatches(bed.cp.dir, OPERATOR_USER, bed.ns, beforeFail);
    expect(failWrites.map((e) => `${writerOf(e)} ${e.objectRef?.name}`)).toEqual([`${owner.name} ${failingPod}`]);
    const failPolicyWrites = bed.started.flatMap((r) => writesOf(bed.cp.dir, r, beforeFail)).filter(isPolicyStatus);
    expect(failPolicyWrites.length).toBeGreaterThan(0);
    expect(unfencedWrites(beforeFail).late).toEqual([]);
    console.log(`readyPods ${PODS_PER_POLICY - 1} written by ${[...new Set(failPolicyWrites.map(writerOf))]}`);
    expect(await bed.gatesNot('True', [failingPod])).toEqual([]);

    // 6. A graceful stop of that owner: its buckets go to the last replica with no PATCH, and
    // nothing it writes lands after it handed the Lease back.
    const stopped = owner;
    const last = survivors.find((r) => r !== stopped) as Replica;
    const handedOver = holdersOf(await bed.bucketHolders(), stopped.name);
    const beforeStop = auditPosition(bed.cp.dir);
    await stopped.op.stop();
    expect(stopped.op.child.exitCode).toBe(0);
    await eventually(() => bed.expectSplit([last], BUCKETS), 30_000, 100);
    await probeRounds(last.op.healthUrl, Object.fromEntries(POLICIES.map((p) => [p, PODS_PER_POLICY])), 3);
    const stopWrites = podStatusPatches(bed.cp.dir, OPERATOR_USER, bed.ns, beforeStop);
    const own = writesOf(bed.cp.dir, stopped, beforeStop);
    const handBacks = new Map(
      own
        .filter((e) => e.objectRef?.resource === 'leases' && e.requestObject?.spec?.holderIdentity === '')
        .map((e) => [e.objectRef?.name ?? '', receivedAt(e)]),
    );
    const lastHandBack = Math.max(...handBacks.values());
    const afterHandBack = own
      .filter((e) => e.objectRef?.resource !== 'leases')
      .filter((e) => {
        const lease = isPodStatus(e) ? bucketLeaseName(SET_ID, bucketOfPod(e.objectRef?.name ?? '')) : undefined;
        return receivedAt(e) >= (lease === undefined ? lastHandBack : (handBacks.get(lease) ?? -Infinity));
      })
      .map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.name}`);
    console.log(
      `graceful stop of ${stopped.name} (${handedOver.length} buckets): handed back ${handBacks.size} Leases, ` +
        `${last.name} holds all ${BUCKETS}; pods/status PATCHes since over 3 rounds: ${stopWrites.length}; ` +
        `its writes after a hand-back: ${afterHandBack.length}`,
    );
    expect(stopWrites.map((e) => e.objectRef?.name)).toEqual([]);
    for (const bucket of handedOver) expect([...handBacks.keys()]).toContain(bucketLeaseName(SET_ID, bucket));
    expect(afterHandBack).toEqual([]);
    expect(await bed.gatesNot('True', [failingPod])).toEqual([]);
    expect((await bed.gates()).get(failingPod)).toBe('False');

    // Throughout: one writer per pod and per policy at any time, and one leader at the end.
    const all = unfencedWrites(0);
    console.log(
      `single writer over the whole test: ${all.podWrites} pods/status and ${all.policyWrites} ProbePolicy writes ` +
        `checked against their Leases, ${all.late.length} outside; audit events ${readAudit(bed.cp.dir).length}`,
    );
    expect(all.late).toEqual([]);
    // No healthy pod's gate was ever False, as a watch saw them from before the first replica
    // bed.started: not at start-up, not at the kill, not at the stop. Only the failing pod flipped.
    const flips = bed.flipWatch?.flips ?? [];
    console.log(`gate flips to False seen by a watch: ${JSON.stringify(flips.slice(0, 10))} (${flips.length} in all)`);
    expect(flips.filter((f) => f.pod !== failingPod)).toEqual([]);
    expect(flips.map((f) => f.pod)).toEqual([failingPod]);
    expect((await oneLeader([last])).name).toBe(last.name);
    expect([a, b, c].filter(alive).map((r) => r.name)).toEqual([last.name]);
  }, 420_000);
});
