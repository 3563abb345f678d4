// Leader election with two real operator processes under the chart's RBAC: only the leader
// probes and writes; when it is killed, the standby takes over without flipping a healthy gate.
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches } from '../support/audit.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_ANNOTATION, KubeletFixture } from '../support/kubelet-fixture.ts';
import {
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  probeRounds,
  probesMade as probesMadeBy,
  startOperator,
} from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const GATE = 'readygate.dev/le';
const LEASE = 'readygate'; // the chart's leaderElection.id: its Role allows this Lease only
let kc: KubeConfig;
let core: CoreV1Api;
let coordination: CoordinationV1Api;
let ns: string;
let fixture: KubeletFixture;
let config: string;
const running: OperatorProcess[] = [];
const cp = () => inject('controlPlane');

// Short lease timings keep the test quick; the defaults (15 s / 10 s / 2 s) behave the same.
const electionArgs = () => [
  '--namespaces',
  ns,
  '--leader-elect',
  '--leader-election-namespace',
  OPERATOR_NAMESPACE,
  '--leader-election-id',
  LEASE,
  '--lease-duration',
  '6s',
  '--renew-deadline',
  '4s',
  '--retry-period',
  '1s',
];

const start = async (name: string) => {
  const op = await startOperator(config, cp().dir, electionArgs(), { POD_NAME: name });
  running.push(op);
  await eventually(async () => expect((await fetch(`${op.healthUrl}/readyz`)).status).toBe(200));
  return op;
};

const holder = async () =>
  (
    await coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE }).catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    })
  )?.spec?.holderIdentity;

const probesMade = (op: OperatorProcess) => probesMadeBy(op.healthUrl);

/** client-go's leader_election_master_status of the Lease, from op's /metrics. */
const masterStatus = async (op: OperatorProcess) => {
  const series = `leader_election_master_status{name="${LEASE}"} `;
  const text = await (await fetch(`${op.healthUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? undefined : Number(line.slice(series.length));
};

/** Whether op's log says its elector has read the lease and seen `identity` hold it. */
const observedLeader = (op: OperatorProcess, identity: string) =>
  op
    .log()
    .split('\n')
    .some((line) => {
      if (!line.startsWith('{')) return false;
      const entry = JSON.parse(line) as { msg?: string; leader?: string };
      return entry.msg === 'leader observed' && entry.leader === identity;
    });

const gate = async (name: string) =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === GATE);

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  coordination = kc.makeApiClient(CoordinationV1Api);
  ns = await createNamespace(kc, 'le');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.60.0.1' });
  await fixture.start();
  config = await operatorKubeconfig(kc, cp());
});

afterAll(async () => {
  for (const op of running) await op.kill();
  await fixture?.stop();
  await deleteNamespace(kc, ns);
});

describe('leader election', () => {
  it('lets only the leader probe; a killed leader is replaced without flipping a healthy gate', async () => {
    await probePolicies(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: 'le' },
      spec: {
        conditionType: GATE,
        selector: { matchLabels: { app: 'le' } },
        probe: { httpGet: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
      },
    });
    for (let i = 0; i < 5; i++) {
      const pod: V1Pod = {
        metadata: { name: `le-${i}`, labels: { app: 'le' }, annotations: { [APP_ANNOTATION]: 'healthy' } },
        spec: {
          readinessGates: [{ conditionType: GATE }],
          containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      };
      await core.createNamespacedPod({ namespace: ns, body: pod });
    }

    const a = await start('operator-a');
    await eventually(async () => expect(await holder()).toBe('operator-a')).catch((err: unknown) => {
      throw new Error(`no leader: ${String(err)}\noperator log:\n${a.log().slice(-4000)}`);
    });
    for (let i = 0; i < 5; i++) await eventually(async () => expect((await gate(`le-${i}`))?.status).toBe('True'));

    // The standby syncs its caches (so it is Ready for the Deployment's rollout) but does not probe.
    const b = await start('operator-b');
    // b's elector has read the lease and seen a hold it; then three rounds of a's probes of the five
    // pods go by, periods in which b would have probed them had it started its probes anyway.
    await eventually(() => expect(observedLeader(b, 'operator-a')).toBe(true));
    await probeRounds(a.healthUrl, { le: 5 }, 3);
    expect(await holder()).toBe('operator-a');
    expect(await probesMade(b)).toBe(0);
    expect(await probesMade(a)).toBeGreaterThan(0);
    expect(await masterStatus(a)).toBe(1);
    expect(await masterStatus(b)).toBe(0);

    const before = auditPosition(cp().dir);
    const killedAt = Date.now();
    await a.kill();
    await eventually(async () => expect(await holder()).toBe('operator-b'), 30_000);
    const takeoverMs = Date.now() - killedAt;
    console.log(`leader killed → standby holds the lease after ${takeoverMs} ms (lease 6 s, retry 1 s)`);
    await eventually(async () => expect(await probesMade(b)).toBeGreaterThan(10));
    expect(await masterStatus(b)).toBe(1);

    // Zero flips: no write to any pod's status during the takeover and three rounds of b's probes after it.
    await probeRounds(b.healthUrl, { le: 5 }, 3);
    const patches = podStatusPatches(cp().dir, OPERATOR_USER, ns, before);
    console.log(`pod status writes across the takeover: ${patches.length}`);
    expect(patches.map((p) => p.objectRef?.name)).toEqual([]);
    for (let i = 0; i < 5; i++) expect((await gate(`le-${i}`))?.status).toBe('True');

    // The new leader acts: a failing app is flipped.
    fixture.setApp(ns, 'le-0', 'failing');
    await eventually(async () => expect((await gate('le-0'))?.status).toBe('False'));

    // A graceful stop hands the lease back at once (ReleaseOnCancel).
    await b.stop();
    expect(b.child.exitCode).toBe(0);
    expect(await holder()).toBeFalsy();
  });
});
