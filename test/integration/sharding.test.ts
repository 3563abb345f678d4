// Sharding across three operator replicas (docs/sharding.md, §4, the CI gate of issue 14): 300
// healthy pods under 2 policies, `--shard-buckets 16`. Every replica probes and writes pods/status
// only for the pods in the buckets it holds, each write fenced by its bucket's Lease; the leader
// Lease holder alone writes ProbePolicy status. The audit log proves who wrote what: this file
// runs its own control plane that logs Lease bodies (each renew's renewTime is when its holder
// sent it, the start of its renew deadline), and every replica has a token of its own, so the
// credential id (the token's JTI) tells whose each write was.
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardLeaseId } from '../../src/cli/options.ts';
import { bucketLeaseName, SHARD_BUCKET_LABEL } from '../../src/kube/shard-leases.ts';
import { bucketOf, fairShare } from '../../src/safety/sharding.ts';
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
  probeRounds,
  probesOf,
  startOperator,
} from '../support/operator.ts';
import { alive, metric, type Replica, testReplicas } from '../support/replicas.ts';
import { eventually } from '../support/wait.ts';

/** The chart's leaderElection.id: the leader Lease, and the prefix of the shard leases. */
const LEASE = 'readygate';
const BUCKETS = 16;
const SET_ID = shardLeaseId({ leaderElectionId: LEASE, shardBuckets: BUCKETS });
const LEASE_DURATION_MS = 6_000;
const RENEW_DEADLINE_MS = 4_000;
const RETRY_PERIOD_MS = 1_000;
const POLICIES = ['alpha', 'beta'] as const;
const PODS_PER_POLICY = 150;
const gateOf = (policy: string) => `readygate.dev/${policy}`;

let cp: ControlPlane;
let kc: KubeConfig;
let core: CoreV1Api;
let coordination: CoordinationV1Api;
let fixture: KubeletFixture;
let ns: string;
/** Pod name → its UID, and so its bucket. */
const uids = new Map<string, string>();
const bucketOfPod = (name: string) => bucketOf(uids.get(name) ?? '', BUCKETS);
/** Every replica this file started, for the audit checks (the dead ones' writes count too). */
const started: Replica[] = [];
let flipWatch: Awaited<ReturnType<typeof recordGateFlips>> | undefined;

beforeAll(async () => {
  cp = await startControlPlane({
    controllerManager: false,
    auditLeaseRequests: true,
    log: (line) => console.log(`[sharding] ${line}`),
  });
  await installCrd(cp.kubeconfigPath);
  kc = adminKubeConfigFrom(cp.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  coordination = kc.makeApiClient(CoordinationV1Api);
  ns = await createNamespace(kc, 'sharding');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.72.0.1' });
  await fixture.start();
  // The chart's RBAC for sharding (leases list/update without resourceNames); each replica gets
  // its own token below.
  await operatorKubeconfig(kc, cp, ['sharding.enabled=true', 'replicaCount=3']);
  for (const policy of POLICIES) {
    await probePoliciesApi(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: policy },
      // 100%: the failsafe admits every flip, so a wrong flip would show rather than be held.
      spec: {
        conditionType: gateOf(policy),
        selector: { matchLabels: { app: policy } },
        // A 3 s timeout: the fixture's pods answer from this test's own process, which also
        // watches, lists and parses the audit log on a loaded machine; with 1 s, its own pauses
        // flipped healthy pods (two timeouts in a row), which says nothing about readygate.
        probe: { httpGet: { port: 'http' }, periodSeconds: 4, timeoutSeconds: 3, failureThreshold: 2 },
        failsafe: { maxUnavailable: '100%' },
      },
    });
  }
  const names = POLICIES.flatMap((p) => Array.from({ length: PODS_PER_POLICY }, (_, i) => podName(p, i)));
  for (let i = 0; i < names.length; i += 25) await Promise.all(names.slice(i, i + 25).map(createPod));
  const pods = (await core.listNamespacedPod({ namespace: ns })).items;
  for (const p of pods) uids.set(p.metadata?.name ?? '', p.metadata?.uid ?? '');
  expect(uids.size).toBe(POLICIES.length * PODS_PER_POLICY);
  flipWatch = await recordGateFlips(kc, ns, (type) => POLICIES.some((p) => gateOf(p) === type));
}, 240_000);

afterAll(async () => {
  try {
    await flipWatch?.stop();
    for (const r of started) await r.op.kill();
    await fixture?.stop();
  } finally {
    await cp?.stop();
  }
});

const podName = (policy: string, i: number) => `${policy}-${String(i).padStart(3, '0')}`;
const policyOfPod = (name: string) => name.slice(0, name.lastIndexOf('-'));

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

/** Starts a replica (identity and POD_NAME = name) under the chart's ServiceAccount with a token of its own. */
async function startReplica(name: string, replicas: Replica[]): Promise<Replica> {
  const { path, jti } = await mintKubeconfig(kc, cp, name);
  const args = [
    ...['--namespaces', ns, '--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE],
    ...['--leader-election-id', LEASE, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'],
    ...['--shard-buckets', String(BUCKETS)],
  ];
  const op = await startOperator(path, cp.dir, args, { POD_NAME: name });
  const replica: Replica = { name, op, jti };
  op.child.once('exit', () => {
    replica.exitedAt = Date.now();
  });
  replicas.push(replica);
  started.push(replica);
  return replica;
}

/** Each pod's gate status ('True', 'False', or undefined when not written yet), by pod name. */
async function gates(): Promise<Map<string, string | undefined>> {
  const pods = (await core.listNamespacedPod({ namespace: ns })).items;
  return new Map(
    pods.map((p) => {
      const name = p.metadata?.name ?? '';
      const type = gateOf(policyOfPod(name));
      return [name, p.status?.conditions?.find((c) => c.type === type)?.status];
    }),
  );
}

/** Pod names whose gate is not `want`, except those in `except`. */
async function gatesNot(want: string, except: string[] = []): Promise<string[]> {
  return [...(await gates())].filter(([n, s]) => s !== want && !except.includes(n)).map(([n]) => n);
}

/** Bucket → the holder of its Lease, for the Leases renewed within a lease duration (live); '' for none. */
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

/** Every bucket held by one of `replicas`, at most `most` each; returns who holds what. */
async function expectSplit(replicas: Replica[], most: number): Promise<Map<number, string>> {
  const held = await bucketHolders();
  const names = replicas.map((r) => r.name);
  for (const [b, holder] of held) expect(names, `bucket ${b} held by '${holder}'`).toContain(holder);
  for (const n of names) expect([...held.values()].filter((h) => h === n).length).toBeLessThanOrEqual(most);
  return held;
}

const holdersOf = (held: Map<number, string>, name: string) => [...held].filter(([, h]) => h === name).map(([b]) => b);

/** The targets of each policy in the buckets `owned`. */
function targetsIn(owned: number[]): Record<string, number> {
  const targets: Record<string, number> = Object.fromEntries(POLICIES.map((p) => [p, 0]));
  for (const name of uids.keys()) {
    if (owned.includes(bucketOfPod(name))) targets[policyOfPod(name)] = (targets[policyOfPod(name)] ?? 0) + 1;
  }
  return targets;
}

/**
 * Waits until `rounds` probes per target of every policy have been made, summed over `replicas`:
 * the evidence that the replicas had the chance to act before asserting that they did not.
 */
async function roundsAcross(replicas: Replica[], rounds: number, timeoutMs = 60_000): Promise<void> {
  const made = async (policy: string) =>
    (await Promise.all(replicas.map((r) => probesOf(r.op.healthUrl, policy)))).reduce((a, b) => a + b, 0);
  const goals = await Promise.all(POLICIES.map(async (p) => (await made(p)) + PODS_PER_POLICY * rounds));
  await eventually(async () => {
    for (const [i, p] of POLICIES.entries()) expect(await made(p), p).toBeGreaterThanOrEqual(goals[i] as number);
  }, timeoutMs);
}

/** The one live replica whose readygate_leader is 1, checked against the leader Lease's holder. */
async function oneLeader(replicas: Replica[]): Promise<Replica> {
  return eventually(async () => {
    const live = replicas.filter(alive);
    const leading = [];
    for (const r of live) if ((await metric(r, 'readygate_leader')) === 1) leading.push(r);
    const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE });
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
  const late = lateWrites(cp.dir, started, after, {
    namespace: OPERATOR_NAMESPACE,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    leaseOf: (e) => {
      if (isPodStatus(e)) return bucketLeaseName(SET_ID, bucketOfPod(e.objectRef?.name ?? ''));
      if (e.objectRef?.resource === 'probepolicies') return LEASE;
      return undefined; // Leases are the fences themselves; Events are not aborted in flight (docs/sharding.md)
    },
  });
  const writes = started.flatMap((r) => writesOf(cp.dir, r, after));
  return {
    late,
    podWrites: writes.filter(isPodStatus).length,
    policyWrites: writes.filter((e) => e.objectRef?.resource === 'probepolicies').length,
  };
}

/** A figure: the pods/status PATCHes so far, by response code, by writer, and how many pods got more than one. */
function startUpWrites(): string {
  const writes = started.flatMap((r) => writesOf(cp.dir, r, 0)).filter(isPodStatus);
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
const writerOf = (e: AuditEvent) => started.find((r) => madeBy(r)(e))?.name ?? '?';

describe('sharding: three replicas, 300 pods, 16 buckets', () => {
  it('splits the buckets, writes each pod from its bucket holder only, and survives a kill and a stop without flips', async () => {
    const replicas = testReplicas();
    const [a, b, c] = [
      await startReplica('shard-a', replicas),
      await startReplica('shard-b', replicas),
      await startReplica('shard-c', replicas),
    ];
    const share = fairShare(BUCKETS, 3);

    // 1. Every gate True, every bucket held (at most the fair share each), every replica probes,
    // one leader.
    await eventually(async () => expect(await gatesNot('True')).toEqual([]), 120_000, 500);
    const held = await eventually(() => expectSplit(replicas, share), 60_000, 250);
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
    expect(start.podWrites).toBeGreaterThanOrEqual(uids.size); // each pod's first True, at least
    // Only the leader Lease's holder of the moment wrote policy status (checked in start.late): a
    // leader whose renews were late on a loaded machine may hand over without a fault.
    expect(start.policyWrites).toBeGreaterThan(0);

    // 3. Steady state: 3 probe rounds per replica, over the targets of its buckets, bring no write.
    const steady = auditPosition(cp.dir);
    const split = await expectSplit(replicas, share);
    for (const r of replicas) await probeRounds(r.op.healthUrl, targetsIn(holdersOf(split, r.name)), 3);
    expect(podStatusPatches(cp.dir, OPERATOR_USER, ns, steady)).toEqual([]);
    expect(await bucketHolders()).toEqual(split); // the rounds counted were those of buckets held throughout

    // 4. SIGKILL the leader: its buckets are held again within a lease duration and two retry
    // periods, and no gate flips.
    const victim = leader;
    const survivors = replicas.filter((r) => r !== victim);
    const orphans = holdersOf(await expectSplit(replicas, share), victim.name);
    const beforeKill = auditPosition(cp.dir);
    const killedAt = Date.now();
    await victim.op.kill();
    const bound = LEASE_DURATION_MS + 2 * RETRY_PERIOD_MS;
    await eventually(() => expectSplit(survivors, fairShare(BUCKETS, 2)), killedAt + bound - Date.now(), 50);
    const heldAgainMs = Date.now() - killedAt;
    const after = await bucketHolders();
    await roundsAcross(survivors, 3);
    const killWrites = podStatusPatches(cp.dir, OPERATOR_USER, ns, beforeKill);
    const newLeader = await oneLeader(survivors);
    console.log(
      `SIGKILL of ${victim.name} (leader, ${orphans.length} buckets): held again after ${heldAgainMs} ms ` +
        `(bound ${bound} ms; lease 6 s, renew 4 s, retry 1 s), now ` +
        `${survivors.map((r) => `${r.name} ${holdersOf(after, r.name).length}`).join(', ')}; ` +
        `new leader ${newLeader.name}; pods/status PATCHes since the kill over 3 rounds: ${killWrites.length}`,
    );
    expect(killWrites.map((e) => e.objectRef?.name)).toEqual([]);
    expect(await gatesNot('True')).toEqual([]);

    // 5. A failing pod in a taken-over bucket: flipped False by its bucket's new holder, and the
    // leader counts it in its policy's readyPods (149 of the policy's 150; the doc's "299" would
    // be one policy over all 300 pods).
    const failing = [...uids.keys()].find((n) => policyOfPod(n) === 'alpha' && orphans.includes(bucketOfPod(n)));
    expect(failing, `no alpha pod in ${victim.name}'s buckets ${orphans}`).toBeDefined();
    const failingPod = failing as string;
    const owner = survivors.find((r) => r.name === after.get(bucketOfPod(failingPod))) as Replica;
    const beforeFail = auditPosition(cp.dir);
    fixture.setApp(ns, failingPod, 'failing');
    await eventually(async () => expect((await gates()).get(failingPod)).toBe('False'), 30_000);
    await eventually(async () => {
      const policy = (await probePoliciesApi(kc).get(ns, 'alpha')) as {
        status?: { matchedPods?: number; readyPods?: number; failingPods?: string[] };
      };
      expect(policy.status).toMatchObject({ matchedPods: PODS_PER_POLICY, readyPods: PODS_PER_POLICY - 1 });
      expect(policy.status?.failingPods).toEqual([failingPod]);
    }, 30_000);
    const failWrites = podStatusPatches(cp.dir, OPERATOR_USER, ns, beforeFail);
    expect(failWrites.map((e) => `${writerOf(e)} ${e.objectRef?.name}`)).toEqual([`${owner.name} ${failingPod}`]);
    const failPolicyWrites = started.flatMap((r) => writesOf(cp.dir, r, beforeFail)).filter(isPolicyStatus);
    expect(failPolicyWrites.length).toBeGreaterThan(0);
    expect(unfencedWrites(beforeFail).late).toEqual([]);
    console.log(`readyPods ${PODS_PER_POLICY - 1} written by ${[...new Set(failPolicyWrites.map(writerOf))]}`);
    expect(await gatesNot('True', [failingPod])).toEqual([]);

    // 6. A graceful stop of that owner: its buckets go to the last replica with no PATCH, and
    // nothing it writes lands after it handed the Lease back.
    const stopped = owner;
    const last = survivors.find((r) => r !== stopped) as Replica;
    const handedOver = holdersOf(await bucketHolders(), stopped.name);
    const beforeStop = auditPosition(cp.dir);
    await stopped.op.stop();
    expect(stopped.op.child.exitCode).toBe(0);
    await eventually(() => expectSplit([last], BUCKETS), 30_000, 100);
    await probeRounds(last.op.healthUrl, Object.fromEntries(POLICIES.map((p) => [p, PODS_PER_POLICY])), 3);
    const stopWrites = podStatusPatches(cp.dir, OPERATOR_USER, ns, beforeStop);
    const own = writesOf(cp.dir, stopped, beforeStop);
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
    expect(await gatesNot('True', [failingPod])).toEqual([]);
    expect((await gates()).get(failingPod)).toBe('False');

    // Throughout: one writer per pod and per policy at any time, and one leader at the end.
    const all = unfencedWrites(0);
    console.log(
      `single writer over the whole test: ${all.podWrites} pods/status and ${all.policyWrites} ProbePolicy writes ` +
        `checked against their Leases, ${all.late.length} outside; audit events ${readAudit(cp.dir).length}`,
    );
    expect(all.late).toEqual([]);
    // No healthy pod's gate was ever False, as a watch saw them from before the first replica
    // started: not at start-up, not at the kill, not at the stop. Only the failing pod flipped.
    const flips = flipWatch?.flips ?? [];
    console.log(`gate flips to False seen by a watch: ${JSON.stringify(flips.slice(0, 10))} (${flips.length} in all)`);
    expect(flips.filter((f) => f.pod !== failingPod)).toEqual([]);
    expect(flips.map((f) => f.pod)).toEqual([failingPod]);
    expect((await oneLeader([last])).name).toBe(last.name);
    expect([a, b, c].filter(alive).map((r) => r.name)).toEqual([last.name]);
  }, 420_000);
});
