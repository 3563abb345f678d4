// Step 3 of docs/sharding.md: on an API server that honours shardSelector (KEP-5866, feature gate
// ShardedListAndWatch on, as in sharded-list.test.ts), each of three replicas lists and watches
// only the pods of the buckets it holds, one watch per bucket. Its pod cache then holds its share
// (readygate_informer_objects{informer="pods"}), and the status writer adds the peers' share
// counts (src/controllers/share-counts.ts) to its own: every policy's matchedPods and readyPods
// are still the totals. A killed replica's buckets are taken over and their pods listed by the
// survivors with no flip and no pods/status write, as the audit log shows; a replica joining
// makes the others drop buckets from their caches with no write or Event for those pods
// (sharding.test.ts is the same gate with the selector ignored).
import { CustomObjectsApi, type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fairShare } from '../../src/safety/sharding.ts';
import { auditPosition, podStatusPatches, writesBy } from '../support/audit.ts';
import { probePoliciesApi } from '../support/kube-admin.ts';
import { OPERATOR_NAMESPACE, OPERATOR_USER } from '../support/operator.ts';
import { alive, metric, type Replica, testReplicas } from '../support/replicas.ts';
import {
  BUCKETS,
  holdersOf,
  LEASE,
  PODS_PER_POLICY,
  POLICIES,
  policyOfPod,
  ShardTestbed,
} from '../support/shard-testbed.ts';
import { eventually } from '../support/wait.ts';

let bed: ShardTestbed;
const bucketOfPod = (name: string) => bed.bucketOfPod(name);
type PolicyObject = KubernetesObject & { status?: { matchedPods?: number; readyPods?: number } };
/** Every policy status a watch saw, as `name matched/ready`: the counts as written, transients included. */
const statusesSeen: string[] = [];
let policyWatch: ReturnType<typeof makeInformer<PolicyObject>> | undefined;

beforeAll(async () => {
  bed = await ShardTestbed.start({
    name: 'sharded-cache',
    firstIp: '127.73.0.1',
    featureGates: { ShardedListAndWatch: true },
  });
  const custom = bed.kc.makeApiClient(CustomObjectsApi);
  const list = { group: 'readygate.dev', version: 'v1alpha1', plural: 'probepolicies', namespace: bed.ns };
  policyWatch = makeInformer<PolicyObject>(
    bed.kc,
    `/apis/readygate.dev/v1alpha1/namespaces/${bed.ns}/probepolicies`,
    () => custom.listNamespacedCustomObject(list) as never,
  );
  const see = (p: PolicyObject) => {
    const st = p.status;
    if (st?.matchedPods !== undefined) statusesSeen.push(`${p.metadata?.name} ${st.matchedPods}/${st.readyPods}`);
  };
  policyWatch.on('add', see);
  policyWatch.on('update', see);
  await policyWatch.start();
}, 240_000);

afterAll(async () => {
  try {
    await policyWatch?.stop();
  } finally {
    await bed?.stop();
  }
});

const podsIn = (buckets: number[]) => [...bed.uids.keys()].filter((n) => buckets.includes(bucketOfPod(n))).length;
const cachedPods = (r: Replica) => metric(r, 'readygate_informer_objects', { informer: 'pods' });

/** Each replica's pod cache holds exactly the pods of the buckets it holds (and so the caches add up to every pod). */
async function expectCachesFollowBuckets(replicas: Replica[]): Promise<string> {
  const held = await bed.expectSplit(replicas, fairShare(BUCKETS, replicas.length));
  const figures: string[] = [];
  for (const r of replicas) {
    const buckets = holdersOf(held, r.name);
    expect(await metric(r, 'readygate_pod_watch_sharded'), r.name).toBe(1);
    expect(await metric(r, 'readygate_pod_watch_buckets'), r.name).toBe(buckets.length);
    expect(await cachedPods(r), `${r.name} caches the pods of buckets ${buckets}`).toBe(podsIn(buckets));
    figures.push(`${r.name} ${buckets.length} buckets, ${podsIn(buckets)} pods cached`);
  }
  return figures.join('; ');
}

/** Every policy's status counts all its pods: matched, and ready but for `failing`. */
async function expectTotals(failing: string[] = []): Promise<void> {
  for (const policy of POLICIES) {
    const p = (await probePoliciesApi(bed.kc).get(bed.ns, policy)) as {
      status?: { matchedPods?: number; readyPods?: number; failingPods?: string[] };
    };
    const down = failing.filter((n) => policyOfPod(n) === policy);
    expect(p.status, policy).toMatchObject({
      matchedPods: PODS_PER_POLICY,
      readyPods: PODS_PER_POLICY - down.length,
      failingPods: down,
    });
  }
}

describe('sharded pod cache: three replicas, 300 pods, 16 buckets, shardSelector honoured', () => {
  it('caches each replica its share, keeps the policy totals, and takes a killed replica over without flips', async () => {
    const replicas = testReplicas();
    for (const name of ['cache-a', 'cache-b', 'cache-c']) await bed.startReplica(name, replicas);

    // 1. Every gate True; each replica caches the pods of its buckets only; the totals are right.
    await eventually(async () => expect(await bed.gatesNot('True')).toEqual([]), 120_000, 500);
    const split = await eventually(() => expectCachesFollowBuckets(replicas), 60_000, 250);
    console.log(`caches: ${split}`);
    await eventually(() => expectTotals(), 30_000, 250);
    const totalsSeenAt = statusesSeen.length;

    // 2. SIGKILL the leader: the survivors take its buckets over, list their pods, and write no
    // pod over 3 probe rounds of all 300 targets; the new leader's totals are still every pod.
    const lease = await bed.coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE });
    const victim = replicas.find((r) => r.name === lease.spec?.holderIdentity) as Replica;
    expect(victim, `leader ${lease.spec?.holderIdentity}`).toBeDefined();
    const orphans = holdersOf(await bed.bucketHolders(), victim.name);
    const beforeKill = auditPosition(bed.cp.dir);
    await victim.op.kill();
    const survivors = replicas.filter((r) => r !== victim);
    const after = await eventually(() => expectCachesFollowBuckets(survivors), 60_000, 250);
    console.log(`after the kill of ${victim.name} (${orphans.length} buckets): ${after}`);
    await bed.roundsAcross(survivors, 3);
    expect(podStatusPatches(bed.cp.dir, OPERATOR_USER, bed.ns, beforeKill).map((e) => e.objectRef?.name)).toEqual([]);
    expect(await bed.gatesNot('True')).toEqual([]);
    await eventually(() => expectTotals(), 30_000, 250);

    // 3. A failing pod in a taken-over bucket flips False, and the status writer counts it,
    // whichever replica caches it.
    const failing = [...bed.uids.keys()].find((n) => policyOfPod(n) === 'alpha' && orphans.includes(bucketOfPod(n)));
    expect(failing, `no alpha pod in ${victim.name}'s buckets ${orphans}`).toBeDefined();
    bed.fixture.setApp(bed.ns, failing as string, 'failing');
    await eventually(async () => expect(await bed.gatesNot('True')).toEqual([failing]), 30_000, 250);
    await eventually(() => expectTotals([failing as string]), 30_000, 250);

    // 4. A replica joins: the others release buckets down to the fair share, dropping those pods
    // from their caches with no delete seen by anything (no pod write, no Event), and the joiner
    // lists its buckets. Over 3 rounds of all 300 targets, nothing but policy status is written.
    const beforeJoin = auditPosition(bed.cp.dir);
    const joiner = await bed.startReplica('cache-d', replicas);
    const live = [...survivors, joiner];
    const joined = await eventually(() => expectCachesFollowBuckets(live), 60_000, 250);
    console.log(`after cache-d joined: ${joined}`);
    await bed.roundsAcross(live, 3);
    await eventually(() => expectTotals([failing as string]), 30_000, 250);
    const joinWrites = writesBy(bed.cp.dir, OPERATOR_USER, bed.ns, beforeJoin);
    const policyWrites = joinWrites.filter((e) => e.objectRef?.resource === 'probepolicies');
    console.log(
      `writes in ${bed.ns} since the join: ${joinWrites.length}, ${policyWrites.length} of them policy status`,
    );
    expect(
      joinWrites
        .filter((e) => e.objectRef?.resource !== 'probepolicies')
        .map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.name}`),
    ).toEqual([]);
    expect(await bed.gatesNot('True')).toEqual([failing]);

    // The status writer never wrote counts of a part of the pods: it writes only while the shares
    // cover every bucket once, so matchedPods was always 150, across the kill and the join; and
    // readyPods never went below 149 once every gate was True.
    console.log(`policy statuses seen: ${statusesSeen.length}, the last ${statusesSeen.slice(-6).join(', ')}`);
    expect(statusesSeen.filter((st) => !st.includes(` ${PODS_PER_POLICY}/`))).toEqual([]);
    expect(statusesSeen.slice(totalsSeenAt).filter((st) => Number(st.split('/')[1]) < PODS_PER_POLICY - 1)).toEqual([]);

    // No healthy pod's gate was ever False, as a watch saw them from before the first replica started.
    const flips = bed.flipWatch?.flips ?? [];
    expect(flips.map((f) => f.pod)).toEqual([failing]);
    expect(live.every(alive)).toBe(true);
  }, 420_000);
});
