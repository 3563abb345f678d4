// Step 3 of docs/sharding.md: on an API server that honours shardSelector (KEP-5866, feature gate
// ShardedListAndWatch on, as in sharded-list.test.ts), each of three replicas lists and watches
// only the pods of the buckets it holds, one watch per bucket. Its pod cache then holds its share
// (readygate_informer_objects{informer="pods"}), and the status writer adds the peers' share
// counts (src/controllers/share-counts.ts) to its own: every policy's matchedPods and readyPods
// are still the totals. A killed replica's buckets are taken over and their pods listed by the
// survivors with no flip and no pods/status write, as the audit log shows; a replica joining
// makes the others drop buckets from their caches with no write or Event for those pods
// (sharding.test.ts is the same gate with the selector ignored).
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardLeaseId } from '../../src/cli/options.ts';
import { bucketLeaseName, SHARD_BUCKET_LABEL } from '../../src/kube/shard-leases.ts';
import { bucketOf, fairShare } from '../../src/safety/sharding.ts';
import { auditPosition, podStatusPatches, writesBy } from '../support/audit.ts';
import { type ControlPlane, startControlPlane } from '../support/control-plane.ts';
import { installCrd } from '../support/crd.ts';
import { recordGateFlips } from '../support/gate-flips.ts';
import { adminKubeConfigFrom, createNamespace, probePoliciesApi } from '../support/kube-admin.ts';
import { APP_ANNOTATION, KubeletFixture } from '../support/kubelet-fixture.ts';
import {
  mintKubeconfig,
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  operatorKubeconfig,
  probesOf,
  startOperator,
} from '../support/operator.ts';
import { alive, metric, type Replica, testReplicas } from '../support/replicas.ts';
import { eventually } from '../support/wait.ts';

const LEASE = 'readygate';
const BUCKETS = 16;
const SET_ID = shardLeaseId({ leaderElectionId: LEASE, shardBuckets: BUCKETS });
const POLICIES = ['alpha', 'beta'] as const;
const PODS_PER_POLICY = 150;
const gateOf = (policy: string) => `readygate.dev/${policy}`;

let cp: ControlPlane;
let kc: KubeConfig;
let core: CoreV1Api;
let coordination: CoordinationV1Api;
let fixture: KubeletFixture;
let ns: string;
const uids = new Map<string, string>();
const bucketOfPod = (name: string) => bucketOf(uids.get(name) ?? '', BUCKETS);
const started: Replica[] = [];
let flipWatch: Awaited<ReturnType<typeof recordGateFlips>> | undefined;
type PolicyObject = KubernetesObject & { status?: { matchedPods?: number; readyPods?: number } };
/** Every policy status a watch saw, as `name matched/ready`: the counts as written, transients included. */
const statusesSeen: string[] = [];
let policyWatch: ReturnType<typeof makeInformer<PolicyObject>> | undefined;

const podName = (policy: string, i: number) => `${policy}-${String(i).padStart(3, '0')}`;
const policyOfPod = (name: string) => name.slice(0, name.lastIndexOf('-'));

beforeAll(async () => {
  cp = await startControlPlane({
    controllerManager: false,
    auditLeaseRequests: true,
    featureGates: { ShardedListAndWatch: true },
    log: (line) => console.log(`[sharded cache] ${line}`),
  });
  await installCrd(cp.kubeconfigPath);
  kc = adminKubeConfigFrom(cp.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  coordination = kc.makeApiClient(CoordinationV1Api);
  ns = await createNamespace(kc, 'sharded-cache');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.73.0.1' });
  await fixture.start();
  await operatorKubeconfig(kc, cp, ['sharding.enabled=true', 'replicaCount=3']);
  for (const policy of POLICIES) {
    await probePoliciesApi(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: policy },
      spec: {
        conditionType: gateOf(policy),
        selector: { matchLabels: { app: policy } },
        // As in sharding.test.ts: a 3 s timeout, since the pods answer from this loaded test process.
        probe: { httpGet: { port: 'http' }, periodSeconds: 4, timeoutSeconds: 3, failureThreshold: 2 },
        failsafe: { maxUnavailable: '100%' },
      },
    });
  }
  const names = POLICIES.flatMap((p) => Array.from({ length: PODS_PER_POLICY }, (_, i) => podName(p, i)));
  for (let i = 0; i < names.length; i += 25) await Promise.all(names.slice(i, i + 25).map(createPod));
  for (const p of (await core.listNamespacedPod({ namespace: ns })).items) {
    uids.set(p.metadata?.name ?? '', p.metadata?.uid ?? '');
  }
  expect(uids.size).toBe(POLICIES.length * PODS_PER_POLICY);
  flipWatch = await recordGateFlips(kc, ns, (type) => POLICIES.some((p) => gateOf(p) === type));
  const custom = kc.makeApiClient(CustomObjectsApi);
  const list = { group: 'readygate.dev', version: 'v1alpha1', plural: 'probepolicies', namespace: ns };
  policyWatch = makeInformer<PolicyObject>(
    kc,
    `/apis/readygate.dev/v1alpha1/namespaces/${ns}/probepolicies`,
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
    await flipWatch?.stop();
    await policyWatch?.stop();
    for (const r of started) await r.op.kill();
    await fixture?.stop();
  } finally {
    await cp?.stop();
  }
});

async function createPod(name: string) {
  const policy = policyOfPod(name);
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, labels: { app: policy }, annotations: { [APP_ANNOTATION]: 'healthy' } },
      spec: {
        readinessGates: [{ conditionType: gateOf(policy) }],
        containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
      },
    },
  });
}

async function startReplica(name: string, replicas: Replica[]): Promise<Replica> {
  const { path, jti } = await mintKubeconfig(kc, cp, name);
  const args = [
    ...['--namespaces', ns, '--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE],
    ...['--leader-election-id', LEASE, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'],
    ...['--shard-buckets', String(BUCKETS)],
  ];
  const op = await startOperator(path, cp.dir, args, { POD_NAME: name });
  const replica: Replica = { name, op, jti };
  replicas.push(replica);
  started.push(replica);
  return replica;
}

async function gatesNot(want: string, except: string[] = []): Promise<string[]> {
  const pods = (await core.listNamespacedPod({ namespace: ns })).items;
  return pods
    .filter((p) => !except.includes(p.metadata?.name ?? ''))
    .filter((p) => {
      const type = gateOf(policyOfPod(p.metadata?.name ?? ''));
      return p.status?.conditions?.find((c) => c.type === type)?.status !== want;
    })
    .map((p) => p.metadata?.name ?? '');
}

/** Bucket → the holder of its live Lease ('' for none). */
async function bucketHolders(): Promise<Map<number, string>> {
  const leases = (
    await coordination.listNamespacedLease({
      namespace: OPERATOR_NAMESPACE,
      labelSelector: `${SHARD_BUCKET_LABEL}=${SET_ID}`,
    })
  ).items;
  const held = new Map<number, string>();
  for (let b = 0; b < BUCKETS; b++) {
    const spec = leases.find((l) => l.metadata?.name === bucketLeaseName(SET_ID, b))?.spec;
    const renewed = spec?.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const live = Date.now() - renewed < (spec?.leaseDurationSeconds ?? 0) * 1000;
    held.set(b, live ? (spec?.holderIdentity ?? '') : '');
  }
  return held;
}

/** Every bucket held by one of `replicas`, at most `most` each. */
async function expectSplit(replicas: Replica[], most: number): Promise<Map<number, string>> {
  const held = await bucketHolders();
  const names = replicas.map((r) => r.name);
  for (const [b, holder] of held) expect(names, `bucket ${b} held by '${holder}'`).toContain(holder);
  for (const n of names) expect([...held.values()].filter((h) => h === n).length).toBeLessThanOrEqual(most);
  return held;
}

const podsIn = (buckets: number[]) => [...uids.keys()].filter((n) => buckets.includes(bucketOfPod(n))).length;
const holdersOf = (held: Map<number, string>, name: string) => [...held].filter(([, h]) => h === name).map(([b]) => b);
const cachedPods = (r: Replica) => metric(r, 'readygate_informer_objects', { informer: 'pods' });

/** Each replica's pod cache holds exactly the pods of the buckets it holds (and so the caches add up to every pod). */
async function expectCachesFollowBuckets(replicas: Replica[]): Promise<string> {
  const held = await expectSplit(replicas, fairShare(BUCKETS, replicas.length));
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
    const p = (await probePoliciesApi(kc).get(ns, policy)) as {
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

/** Waits until `rounds` probes per target of every policy were made, summed over `replicas`. */
async function roundsAcross(replicas: Replica[], rounds: number): Promise<void> {
  const made = async (policy: string) =>
    (await Promise.all(replicas.map((r) => probesOf(r.op.healthUrl, policy)))).reduce((a, b) => a + b, 0);
  const goals = await Promise.all(POLICIES.map(async (p) => (await made(p)) + PODS_PER_POLICY * rounds));
  await eventually(async () => {
    for (const [i, p] of POLICIES.entries()) expect(await made(p), p).toBeGreaterThanOrEqual(goals[i] as number);
  }, 60_000);
}

describe('sharded pod cache: three replicas, 300 pods, 16 buckets, shardSelector honoured', () => {
  it('caches each replica its share, keeps the policy totals, and takes a killed replica over without flips', async () => {
    const replicas = testReplicas();
    for (const name of ['cache-a', 'cache-b', 'cache-c']) await startReplica(name, replicas);

    // 1. Every gate True; each replica caches the pods of its buckets only; the totals are right.
    await eventually(async () => expect(await gatesNot('True')).toEqual([]), 120_000, 500);
    const split = await eventually(() => expectCachesFollowBuckets(replicas), 60_000, 250);
    console.log(`caches: ${split}`);
    await eventually(() => expectTotals(), 30_000, 250);
    const totalsSeenAt = statusesSeen.length;

    // 2. SIGKILL the leader: the survivors take its buckets over, list their pods, and write no
    // pod over 3 probe rounds of all 300 targets; the new leader's totals are still every pod.
    const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE });
    const victim = replicas.find((r) => r.name === lease.spec?.holderIdentity) as Replica;
    expect(victim, `leader ${lease.spec?.holderIdentity}`).toBeDefined();
    const orphans = holdersOf(await bucketHolders(), victim.name);
    const beforeKill = auditPosition(cp.dir);
    await victim.op.kill();
    const survivors = replicas.filter((r) => r !== victim);
    const after = await eventually(() => expectCachesFollowBuckets(survivors), 60_000, 250);
    console.log(`after the kill of ${victim.name} (${orphans.length} buckets): ${after}`);
    await roundsAcross(survivors, 3);
    expect(podStatusPatches(cp.dir, OPERATOR_USER, ns, beforeKill).map((e) => e.objectRef?.name)).toEqual([]);
    expect(await gatesNot('True')).toEqual([]);
    await eventually(() => expectTotals(), 30_000, 250);

    // 3. A failing pod in a taken-over bucket flips False, and the status writer counts it,
    // whichever replica caches it.
    const failing = [...uids.keys()].find((n) => policyOfPod(n) === 'alpha' && orphans.includes(bucketOfPod(n)));
    expect(failing, `no alpha pod in ${victim.name}'s buckets ${orphans}`).toBeDefined();
    fixture.setApp(ns, failing as string, 'failing');
    await eventually(async () => expect(await gatesNot('True')).toEqual([failing]), 30_000, 250);
    await eventually(() => expectTotals([failing as string]), 30_000, 250);

    // 4. A replica joins: the others release buckets down to the fair share, dropping those pods
    // from their caches with no delete seen by anything (no pod write, no Event), and the joiner
    // lists its buckets. Over 3 rounds of all 300 targets, nothing but policy status is written.
    const beforeJoin = auditPosition(cp.dir);
    const joiner = await startReplica('cache-d', replicas);
    const live = [...survivors, joiner];
    const joined = await eventually(() => expectCachesFollowBuckets(live), 60_000, 250);
    console.log(`after cache-d joined: ${joined}`);
    await roundsAcross(live, 3);
    await eventually(() => expectTotals([failing as string]), 30_000, 250);
    const joinWrites = writesBy(cp.dir, OPERATOR_USER, ns, beforeJoin);
    const policyWrites = joinWrites.filter((e) => e.objectRef?.resource === 'probepolicies');
    console.log(`writes in ${ns} since the join: ${joinWrites.length}, ${policyWrites.length} of them policy status`);
    expect(
      joinWrites
        .filter((e) => e.objectRef?.resource !== 'probepolicies')
        .map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.name}`),
    ).toEqual([]);
    expect(await gatesNot('True')).toEqual([failing]);

    // The status writer never wrote counts of a part of the pods: it writes only while the shares
    // cover every bucket once, so matchedPods was always 150, across the kill and the join; and
    // readyPods never went below 149 once every gate was True.
    console.log(`policy statuses seen: ${statusesSeen.length}, the last ${statusesSeen.slice(-6).join(', ')}`);
    expect(statusesSeen.filter((st) => !st.includes(` ${PODS_PER_POLICY}/`))).toEqual([]);
    expect(statusesSeen.slice(totalsSeenAt).filter((st) => Number(st.split('/')[1]) < PODS_PER_POLICY - 1)).toEqual([]);

    // No healthy pod's gate was ever False, as a watch saw them from before the first replica started.
    const flips = flipWatch?.flips ?? [];
    expect(flips.map((f) => f.pod)).toEqual([failing]);
    expect(live.every(alive)).toBe(true);
  }, 420_000);
});
