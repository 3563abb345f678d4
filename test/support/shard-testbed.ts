// The testbed of the sharding integration tests (test/integration/sharding.test.ts, with the API
// server ignoring shardSelector, and sharded-cache.test.ts, honouring it): a control plane of its
// own that audits Lease bodies, 300 healthy pods under 2 policies served by the kubelet fixture,
// the chart's sharding RBAC, a watch recording every gate flip from before the first replica, and
// replicas with a token each (so the audit log tells their writes apart).
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { shardLeaseId } from '../../src/cli/options.ts';
import { bucketLeaseName, SHARD_BUCKET_LABEL } from '../../src/kube/shard-leases.ts';
import { bucketOf } from '../../src/safety/sharding.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { installCrd } from './crd.ts';
import { recordGateFlips } from './gate-flips.ts';
import { adminKubeConfigFrom, createNamespace, probePoliciesApi } from './kube-admin.ts';
import { APP_ANNOTATION, KubeletFixture } from './kubelet-fixture.ts';
import {
  mintKubeconfig,
  OPERATOR_NAMESPACE,
  operatorKubeconfig,
  probeRoundsAcross,
  startOperator,
} from './operator.ts';
import type { Replica } from './replicas.ts';

/** The chart's leaderElection.id: the leader Lease, and the prefix of the shard leases. */
export const LEASE = 'readygate';
export const BUCKETS = 16;
export const SET_ID = shardLeaseId({ leaderElectionId: LEASE, shardBuckets: BUCKETS });
export const LEASE_DURATION_MS = 6_000;
export const RENEW_DEADLINE_MS = 4_000;
export const RETRY_PERIOD_MS = 1_000;
export const POLICIES = ['alpha', 'beta'] as const;
export const PODS_PER_POLICY = 150;

export const gateOf = (policy: string) => `readygate.dev/${policy}`;
export const podName = (policy: string, i: number) => `${policy}-${String(i).padStart(3, '0')}`;
export const policyOfPod = (name: string) => name.slice(0, name.lastIndexOf('-'));
/** The buckets `name` holds in `held` (bucket → holder). */
export const holdersOf = (held: Map<number, string>, name: string) =>
  [...held].filter(([, h]) => h === name).map(([b]) => b);

/**
 * Bucket → the holder of its Lease in `namespace`, for the Leases renewed within a lease duration
 * (live); '' for none. The chart's set: `readygate`, 16 buckets.
 */
export async function bucketHolders(coordination: CoordinationV1Api, namespace: string): Promise<Map<number, string>> {
  const leases = (
    await coordination.listNamespacedLease({ namespace, labelSelector: `${SHARD_BUCKET_LABEL}=${SET_ID}` })
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

export interface ShardTestbedOptions {
  /** Names the namespace and prefixes the control plane's log lines. */
  name: string;
  /** The kubelet fixture's first pod IP (a /16 of 127.0.0.0/8 no other test file uses). */
  firstIp: string;
  featureGates?: Record<string, boolean>;
}

export class ShardTestbed {
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  /** Pod name → its UID, and so its bucket. */
  readonly uids = new Map<string, string>();
  /** Every replica started, for the audit checks (the dead ones' writes count too). */
  readonly started: Replica[] = [];
  readonly fixture: KubeletFixture;
  flipWatch: Awaited<ReturnType<typeof recordGateFlips>> | undefined;

  readonly cp: ControlPlane;
  readonly kc: KubeConfig;
  readonly ns: string;

  private constructor(cp: ControlPlane, kc: KubeConfig, ns: string, firstIp: string) {
    this.cp = cp;
    this.kc = kc;
    this.ns = ns;
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp });
  }

  /** Starts the control plane and fills it; stops what it started if a step fails. */
  static async start(o: ShardTestbedOptions): Promise<ShardTestbed> {
    const cp = await startControlPlane({
      controllerManager: false,
      auditLeaseRequests: true,
      ...(o.featureGates ? { featureGates: o.featureGates } : {}),
      log: (line) => console.log(`[${o.name}] ${line}`),
    });
    let bed: ShardTestbed | undefined;
    try {
      await installCrd(cp.kubeconfigPath);
      const kc = adminKubeConfigFrom(cp.kubeconfigPath);
      bed = new ShardTestbed(cp, kc, await createNamespace(kc, o.name), o.firstIp);
      await bed.#fill();
      return bed;
    } catch (err) {
      if (bed) await bed.stop();
      else await cp.stop();
      throw err;
    }
  }

  async #fill(): Promise<void> {
    await this.fixture.start();
    // The chart's RBAC for sharding (leases list/update without resourceNames); each replica gets
    // its own token in startReplica.
    await operatorKubeconfig(this.kc, this.cp, ['sharding.enabled=true', 'replicaCount=3']);
    for (const policy of POLICIES) {
      await probePoliciesApi(this.kc).create(this.ns, {
        apiVersion: 'readygate.dev/v1alpha1',
        kind: 'ProbePolicy',
        metadata: { name: policy },
        // 100%: the failsafe admits every flip, so a wrong flip would show rather than be held.
        spec: {
          conditionType: gateOf(policy),
          selector: { matchLabels: { app: policy } },
          // A 3 s timeout: the fixture's pods answer from the test's own process, which also
          // watches, lists and parses the audit log on a loaded machine; with 1 s, its own pauses
          // flipped healthy pods (two timeouts in a row), which says nothing about readygate.
          probe: { httpGet: { port: 'http' }, periodSeconds: 4, timeoutSeconds: 3, failureThreshold: 2 },
          failsafe: { maxUnavailable: '100%' },
        },
      });
    }
    const names = POLICIES.flatMap((p) => Array.from({ length: PODS_PER_POLICY }, (_, i) => podName(p, i)));
    for (let i = 0; i < names.length; i += 25) await Promise.all(names.slice(i, i + 25).map((n) => this.#createPod(n)));
    for (const p of (await this.core.listNamespacedPod({ namespace: this.ns })).items) {
      this.uids.set(p.metadata?.name ?? '', p.metadata?.uid ?? '');
    }
    expect(this.uids.size).toBe(POLICIES.length * PODS_PER_POLICY);
    this.flipWatch = await recordGateFlips(this.kc, this.ns, (type) => POLICIES.some((p) => gateOf(p) === type));
  }

  async #createPod(name: string): Promise<void> {
    const policy = policyOfPod(name);
    await this.core.createNamespacedPod({
      namespace: this.ns,
      body: {
        metadata: { name, labels: { app: policy }, annotations: { [APP_ANNOTATION]: 'healthy' } },
        spec: {
          readinessGates: [{ conditionType: gateOf(policy) }],
          containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      },
    });
  }

  /** Stops the flip watch, every replica started, the fixture and the control plane. */
  async stop(): Promise<void> {
    try {
      await this.flipWatch?.stop();
      for (const r of this.started) await r.op.kill();
      await this.fixture.stop();
    } finally {
      await this.cp.stop();
    }
  }

  bucketOfPod(name: string): number {
    return bucketOf(this.uids.get(name) ?? '', BUCKETS);
  }

  /** Starts a replica (identity and POD_NAME = name) under the chart's ServiceAccount with a token of its own. */
  async startReplica(name: string, replicas: Replica[]): Promise<Replica> {
    const { path, jti } = await mintKubeconfig(this.kc, this.cp, name);
    const args = [
      ...['--namespaces', this.ns, '--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE],
      ...['--leader-election-id', LEASE, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'],
      ...['--shard-buckets', String(BUCKETS)],
    ];
    const op = await startOperator(path, this.cp.dir, args, { POD_NAME: name });
    const replica: Replica = { name, op, jti };
    op.child.once('exit', () => {
      replica.exitedAt = Date.now();
    });
    replicas.push(replica);
    this.started.push(replica);
    return replica;
  }

  /** Each pod's gate status ('True', 'False', or undefined when not written yet), by pod name. */
  async gates(): Promise<Map<string, string | undefined>> {
    const pods = (await this.core.listNamespacedPod({ namespace: this.ns })).items;
    return new Map(
      pods.map((p) => {
        const name = p.metadata?.name ?? '';
        const type = gateOf(policyOfPod(name));
        return [name, p.status?.conditions?.find((c) => c.type === type)?.status];
      }),
    );
  }

  /** Pod names whose gate is not `want`, except those in `except`. */
  async gatesNot(want: string, except: string[] = []): Promise<string[]> {
    return [...(await this.gates())].filter(([n, s]) => s !== want && !except.includes(n)).map(([n]) => n);
  }

  /** Bucket → the holder of its live Lease; '' for none (bucketHolders). */
  bucketHolders(): Promise<Map<number, string>> {
    return bucketHolders(this.coordination, OPERATOR_NAMESPACE);
  }

  /** Every bucket held by one of `replicas`, at most `most` each; returns who holds what. */
  async expectSplit(replicas: Replica[], most: number): Promise<Map<number, string>> {
    const held = await this.bucketHolders();
    const names = replicas.map((r) => r.name);
    for (const [b, holder] of held) expect(names, `bucket ${b} held by '${holder}'`).toContain(holder);
    for (const n of names) expect([...held.values()].filter((h) => h === n).length).toBeLessThanOrEqual(most);
    return held;
  }

  /**
   * Waits until `rounds` probes per target of every policy have been made, summed over `replicas`:
   * the evidence that the replicas had the chance to act before asserting that they did not.
   */
  roundsAcross(replicas: Replica[], rounds: number, timeoutMs = 60_000): Promise<void> {
    const targets = Object.fromEntries(POLICIES.map((p) => [p, PODS_PER_POLICY]));
    return probeRoundsAcross(
      replicas.map((r) => r.op.healthUrl),
      targets,
      rounds,
      timeoutMs,
    );
  }
}
