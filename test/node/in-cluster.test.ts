// readygate as a cluster runs it: its image on the real node, installed by helm (two replicas,
// leader elected, the chart's own RBAC, exec on) into a namespace enforcing the restricted Pod
// Security Standard. Its pods reach kube-apiserver through the `kubernetes` Service (kube-proxy);
// they gate real app pods with HTTP, TCP, gRPC and exec probes (exec: operator pod →
// kube-apiserver → the real kubelet), halt a Deployment's broken rollout and let the fixed one
// complete, and the standby takes over from a deleted leader without a flip or a write. Then
// sharding is turned on over three replicas, and the sharded Deployment rolled: neither moves a
// gate or writes a pod's status.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches, readAudit } from '../support/audit.ts';
import { KUBERNETES_SERVICE_IP, SERVICE_CIDR } from '../support/control-plane.ts';
import { recordGateFlips } from '../support/gate-flips.ts';
import { adminKubeConfig, deleteNamespace, probePolicies } from '../support/kube.ts';
import { buildOperatorImage, helm, helmInstall, helmUpgrade, importImage } from '../support/node-operator.ts';
import { APP_PORTS, appPod, condition, runningPod, switchApp } from '../support/node-pods.ts';
import { probeRounds, probeRoundsAcross } from '../support/operator.ts';
import { bucketHolders } from '../support/shard-testbed.ts';
import { eventually } from '../support/wait.ts';

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const coordination = kc.makeApiClient(CoordinationV1Api);
const node = inject('realNode');
const cp = inject('controlPlane');
const suffix = randomBytes(3).toString('hex');
const opNs = `readygate-${suffix}`; // the release's namespace, restricted Pod Security
const appNs = `apps-${suffix}`; // the one namespace the operator watches
const release = 'readygate'; // fullname = release: the ServiceAccount, the Lease's Deployment
const OPERATOR_USER = `system:serviceaccount:${opNs}:${release}`;
const HEALTH_PORT = 8081; // the chart's healthPort
let installed = false;

const gateOf = (kind: string) => `readygate.dev/${kind}`;

const PROBES: Record<string, Record<string, unknown>> = {
  http: { httpGet: { port: 'http', path: '/healthz' } },
  tcp: { tcpSocket: { port: 'tcp' } },
  grpc: { grpc: { port: APP_PORTS.grpc } },
  exec: { exec: { command: ['/app', 'check'] } },
};

/**
 * An exec probe's command runs through kube-apiserver, the kubelet, containerd and `runc exec`;
 * on this 2-core machine at a load of 10 (other tests, image builds) that alone took over 1 s and
 * the gate went False with ProbeTimeout, as the kubelet's own exec probe would have. The timeout
 * a cluster would give such a probe (its period must exceed it).
 */
const EXEC_TIMEOUT = 4;

const policy = (name: string, kind: string, app: string) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name },
  spec: {
    conditionType: gateOf(name),
    selector: { matchLabels: { app } },
    injection: 'Disabled',
    probe: {
      ...PROBES[kind],
      periodSeconds: kind === 'exec' ? EXEC_TIMEOUT + 1 : 2,
      timeoutSeconds: kind === 'exec' ? EXEC_TIMEOUT : 1,
      failureThreshold: 2,
    },
  },
});

/** The operator's pods, as the chart labels them. */
const operatorPods = async () =>
  (
    await core.listNamespacedPod({
      namespace: opNs,
      labelSelector: `app.kubernetes.io/instance=${release},app.kubernetes.io/name=readygate`,
    })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);

const leaseHolder = async () =>
  (await coordination.readNamespacedLease({ name: 'readygate', namespace: opNs })).spec?.holderIdentity;

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const scaleOperator = (replicas: number) =>
  apps.patchNamespacedDeploymentScale({ namespace: opNs, name: release, body: { spec: { replicas } } }, mergePatch);

/**
 * Deletes the leader as a scale-down does: the ReplicaSet deletes the pod with the lowest
 * pod-deletion-cost and creates none in its place. A pod deleted on its own gets a replacement,
 * which races the standby for the Lease the leader releases once drained (client-go's election
 * has the same race; no Lease election names a successor), so which one leads would be chance.
 */
async function deleteLeaderWithoutReplacement(leader: string): Promise<void> {
  const annotations = { 'controller.kubernetes.io/pod-deletion-cost': '-1000' };
  await core.patchNamespacedPod({ namespace: opNs, name: leader, body: { metadata: { annotations } } }, mergePatch);
  await scaleOperator(1);
  await eventually(async () => {
    const names = (await operatorPods()).map((p) => p.metadata?.name);
    expect(names).not.toContain(leader);
    expect(names).toHaveLength(1);
  }, 60_000);
}

/** Waits until the Deployment has `replicas` pods, all Ready; returns them. */
const operatorReady = (replicas: number) =>
  eventually(async () => {
    const pods = await operatorPods();
    const ready = pods.filter((p) => condition(p, 'Ready') === 'True');
    if (pods.length !== replicas || ready.length !== replicas) {
      const seen = pods.map((p) => `${p.metadata?.name} ${p.status?.phase} Ready=${condition(p, 'Ready')}`);
      throw new Error(`operator pods: ${seen.join(', ') || 'none'}`);
    }
    return pods;
  }, 120_000);

const metricsUrl = (pod: V1Pod) => `http://${pod.status?.podIP}:${HEALTH_PORT}`;

const waitGate = (name: string, gate: string, status: string, timeoutMs = 60_000) =>
  eventually(async () => {
    const pod = await core.readNamespacedPodStatus({ namespace: appNs, name });
    expect(condition(pod, gate), `${name} ${gate}`).toBe(status);
    expect(condition(pod, 'Ready'), `${name} Ready`).toBe(status);
    return pod;
  }, timeoutMs);

beforeAll(async () => {
  const image = await buildOperatorImage();
  importImage(node.containerdSocket, image.archive);
  const restricted = { enforce: 'restricted', warn: 'restricted', audit: 'restricted' };
  const labels = Object.fromEntries(Object.entries(restricted).map(([m, l]) => [`pod-security.kubernetes.io/${m}`, l]));
  await core.createNamespace({ body: { metadata: { name: opNs, labels } } });
  await core.createNamespace({ body: { metadata: { name: appNs } } });
  helmInstall(cp, release, opNs, image, ['exec.enabled=true', `watchNamespaces={${appNs}}`]);
  installed = true;
}, 900_000);

afterAll(async () => {
  if (installed) helm(cp, ['uninstall', release, '--namespace', opNs]);
  for (const ns of [appNs, opNs]) await deleteNamespace(kc, ns).catch(() => {});
});

describe('readygate installed by helm on the real node', () => {
  it('runs two replicas, both Ready by the kubelet probing /readyz and /healthz, one holding the Lease, in-cluster through the kubernetes Service', async () => {
    const pods = await operatorReady(2);
    for (const pod of pods) {
      const c = pod.spec?.containers[0];
      expect(c?.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(c?.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(c?.env?.some((e) => e.name.startsWith('KUBERNETES_SERVICE'))).toBe(false);
      expect(pod.status?.containerStatuses?.[0]?.ready).toBe(true);
    }
    const names = pods.map((p) => p.metadata?.name);
    const holder = await eventually(async () => {
      const h = await leaseHolder();
      expect(names).toContain(h);
      return h;
    });
    // The `kubernetes` Service's endpoint is kube-apiserver on the node IP; the leader's Lease
    // renewals arrive from its pod IP (DNAT, no masquerade): the pod dialled the ClusterIP.
    const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
      namespace: 'default',
      labelSelector: 'kubernetes.io/service-name=kubernetes',
    });
    expect(slices.items.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses))).toEqual([node.nodeIP]);
    const leaderIP = pods.find((p) => p.metadata?.name === holder)?.status?.podIP ?? '';
    await eventually(() => {
      const leases = readAudit(cp.dir).filter(
        (e) => e.user.username === OPERATOR_USER && e.objectRef?.resource === 'leases' && e.verb === 'update',
      );
      expect(leases.some((e) => e.sourceIPs?.[0] === leaderIP)).toBe(true);
    });
  });

  it('gives a pod routes to the Service CIDR and the node IP only; the host drops what a pod sends off the bridge', async () => {
    const [pod] = await operatorReady(2);
    const netns = podNetns(pod?.status?.podIP ?? '');
    const gateway = node.podSubnet.replace(/0\/24$/, '1');
    const routes = inNetns(netns, ['ip', '-4', 'route', 'show']).trim().split('\n');
    expect(routes.map((r) => r.trim().replace(/\s+/g, ' ')).sort()).toEqual(
      [
        `${node.nodeIP} via ${gateway} dev eth0`,
        `${SERVICE_CIDR} via ${gateway} dev eth0`,
        `${node.podSubnet} dev eth0 proto kernel scope link src ${pod?.status?.podIP}`,
      ].sort(),
    );
    // The kubernetes Service answers (kube-proxy's DNAT to kube-apiserver on the node IP)...
    expect(() => inNetns(netns, ['bash', '-c', `exec 3<>/dev/tcp/${KUBERNETES_SERVICE_IP}/443`])).not.toThrow();
    // ...and whatever a pod sends off the bridge (an address of the CIDR no Service has, say) is
    // dropped on the host, never forwarded. Checked on the rules, not with a packet: were a rule
    // missing, that packet would leave the machine.
    const forward = iptablesRules('FORWARD');
    const hook = forward.find((l) => l.includes('READYGATE-FWD-')) ?? '';
    expect(forward.indexOf(hook), forward.join('\n')).toBe(1); // right after the policy line
    const [, bridge, , chain] = /^-A FORWARD -i (\S+) ! -o (\S+) -j (READYGATE-FWD-\S+)$/.exec(hook) ?? [];
    expect(bridge).toBeDefined();
    expect(hook).toBe(`-A FORWARD -i ${bridge} ! -o ${bridge} -j ${chain}`);
    expect(iptablesRules(chain ?? '')).toEqual([`-N ${chain}`, `-A ${chain} -j DROP`]);
  });

  it('gates app pods with HTTP, TCP, gRPC and exec probes: True and Ready, a failing app False and not Ready, and back', async () => {
    // All four at once; allSettled, so that no kind runs on after another failed.
    const results = await Promise.allSettled(
      Object.keys(PROBES).map(async (kind) => {
        await probePolicies(kc).create(appNs, policy(kind, kind, kind));
        await core.createNamespacedPod({ namespace: appNs, body: appPod(kind, node.appImage, [gateOf(kind)]) });
        const ip = (await runningPod(core, appNs, kind)).status?.podIP ?? '';
        const passed = await waitGate(kind, gateOf(kind), 'True');
        expect(passed.status?.conditions?.find((c) => c.type === gateOf(kind))?.reason).toBe('ProbeSucceeded');
        await switchApp(ip, '/fail?code=4');
        const failed = await waitGate(kind, gateOf(kind), 'False');
        const gate = failed.status?.conditions?.find((c) => c.type === gateOf(kind));
        expect(gate?.reason).toBe('ProbeFailed');
        expect(condition(failed, 'ContainersReady')).toBe('True');
        if (kind === 'exec') expect(gate?.message).toMatch(/: exit code 4 /);
        await switchApp(ip, '/recover');
        await waitGate(kind, gateOf(kind), 'True');
      }),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  });

  it('halts a Deployment rollout whose new version fails, with the old pods serving, and completes the fixed one', async () => {
    await probePolicies(kc).create(appNs, policy('web', 'http', 'web'));
    await apps.createNamespacedDeployment({ namespace: appNs, body: webDeployment('v1', false) });
    await rolledOut('v1');

    await apps.replaceNamespacedDeployment({ namespace: appNs, name: 'web', body: webDeployment('v2', true) });
    // The new pod runs (ContainersReady) but its gate is False: it never becomes Ready, so with
    // maxUnavailable 0 no old pod goes.
    const broken = await eventually(async () => {
      const [pod] = (await webPods()).filter((p) => p.metadata?.labels?.version === 'v2');
      expect(pod && condition(pod, 'ContainersReady')).toBe('True');
      expect(pod && condition(pod, gateOf('web'))).toBe('False');
      return pod as V1Pod;
    }, 90_000);
    expect(broken.status?.conditions?.find((c) => c.type === gateOf('web'))?.reason).toBe('ProbeFailed');
    const pods = await webPods();
    const old = pods.filter((p) => p.metadata?.labels?.version === 'v1');
    expect(old.map((p) => condition(p, 'Ready'))).toEqual(['True', 'True']);
    expect(pods.filter((p) => p.metadata?.labels?.version === 'v2')).toHaveLength(1);
    const status = (await apps.readNamespacedDeploymentStatus({ namespace: appNs, name: 'web' })).status;
    expect(status?.availableReplicas).toBe(2);
    expect(status?.updatedReplicas).toBe(1);
    for (const pod of old)
      expect((await fetch(`http://${pod.status?.podIP}:${APP_PORTS.http}/healthz`)).status).toBe(200);

    await apps.replaceNamespacedDeployment({ namespace: appNs, name: 'web', body: webDeployment('v3', false) });
    await rolledOut('v3');
  });

  it('the standby takes over from a deleted leader: 0 gate flips and 0 pod status writes on the healthy pods', async () => {
    const pods = await operatorReady(2);
    const leader = await leaseHolder();
    const standby = pods.find((p) => p.metadata?.name !== leader) as V1Pod;
    const leaderIP = pods.find((p) => p.metadata?.name === leader)?.status?.podIP;
    const appPods = (await core.listNamespacedPod({ namespace: appNs })).items.filter(
      (p) => !p.metadata?.deletionTimestamp,
    );
    for (const pod of appPods) expect(condition(pod, 'Ready'), pod.metadata?.name).toBe('True');
    const flips = await recordGateFlips(kc, appNs, (t) => t.startsWith('readygate.dev/'));
    try {
      const before = auditPosition(cp.dir);
      await deleteLeaderWithoutReplacement(leader ?? '');
      await eventually(async () => expect(await leaseHolder(), `after ${leader}`).toBe(standby.metadata?.name), 60_000);
      // Three rounds of the new leader's probes of every app pod after it took over.
      await probeRounds(
        metricsUrl(standby),
        { ...Object.fromEntries(Object.keys(PROBES).map((k) => [k, 1])), web: 2 },
        3,
      );
      const patches = podStatusPatches(cp.dir, OPERATOR_USER, appNs, before);
      console.log(`leader ${leader} deleted, ${standby.metadata?.name} leads; pod status writes: ${patches.length}`);
      // Both at once, so that a failure shows whether the writes were flips, and (by the source
      // address) which replica wrote them.
      const writes = patches.map((p) => `${p.objectRef?.name} by ${p.sourceIPs?.[0]} at ${p.requestReceivedTimestamp}`);
      const ips = `leader ${leaderIP}, standby ${standby.status?.podIP}`;
      expect({ writes, flips: flips.flips }, ips).toEqual({ writes: [], flips: [] });
    } finally {
      await flips.stop();
    }
    await scaleOperator(2);
    await operatorReady(2);
  });

  it('shards the pods over three replicas, then rolls the sharded Deployment: 0 gate flips and 0 pod status writes', async () => {
    await operatorReady(2);
    const targets = { ...Object.fromEntries(Object.keys(PROBES).map((k) => [k, 1])), web: 2 };
    const flips = await recordGateFlips(kc, appNs, (t) => t.startsWith('readygate.dev/'));
    try {
      // Sharding on, 3 replicas: a configuration rollout. The new pods acquire buckets only once
      // the leader is one of theirs (docs/sharding.md decision 6), and seed from the conditions.
      const beforeOn = auditPosition(cp.dir);
      helmUpgrade(cp, release, opNs, ['sharding.enabled=true', 'replicaCount=3']);
      const sharded = await shardedAndProbing(targets);
      const onWrites = podStatusPatches(cp.dir, OPERATOR_USER, appNs, beforeOn);
      console.log(`sharding on: ${sharded}; pod status writes since: ${onWrites.length}`);

      // A rolling update of the sharded Deployment (maxSurge 1, maxUnavailable 0): each old
      // replica's buckets move to the others or to a new one as it stops.
      const beforeRoll = auditPosition(cp.dir);
      helmUpgrade(cp, release, opNs, ['podAnnotations.readygate-test/rollout=r2']);
      const rolled = await shardedAndProbing(targets, 'r2');
      const rollWrites = podStatusPatches(cp.dir, OPERATOR_USER, appNs, beforeRoll);
      console.log(`rolled: ${rolled}; pod status writes since: ${rollWrites.length}`);
      const writes = [...onWrites, ...rollWrites].map((p) => `${p.objectRef?.name} by ${p.sourceIPs?.[0]}`);
      expect({ writes, flips: flips.flips }).toEqual({ writes: [], flips: [] });
    } finally {
      await flips.stop();
    }
  });
});

/**
 * Waits until the Deployment has rolled out 3 replicas (with the rollout annotation, if given),
 * every bucket Lease is held by one of them, and they made 3 more probe rounds of every target
 * between them; returns who holds how many buckets.
 */
async function shardedAndProbing(targets: Record<string, number>, rollout?: string): Promise<string> {
  const pods = await eventually(async () => {
    const d = await apps.readNamespacedDeploymentStatus({ namespace: opNs, name: release });
    expect(d.status?.observedGeneration).toBe(d.metadata?.generation);
    expect([d.status?.updatedReplicas, d.status?.availableReplicas, d.status?.replicas]).toEqual([3, 3, 3]);
    const pods = await operatorPods();
    expect(pods.map((p) => p.metadata?.annotations?.['readygate-test/rollout'])).toEqual(Array(3).fill(rollout));
    return pods;
  }, 240_000);
  const names = pods.map((p) => p.metadata?.name ?? '');
  const held = await eventually(async () => {
    // Every bucket's Lease live and held by one of the rolled-out pods ('' is none).
    const holders = [...(await bucketHolders(coordination, opNs)).values()];
    for (const h of holders) expect(names).toContain(h);
    return names.map((n) => `${n} ${holders.filter((h) => h === n).length}`).join(', ');
  }, 60_000);
  await probeRoundsAcross(pods.map(metricsUrl), targets, 3, 120_000);
  return held;
}

/** The network namespace (/run/netns/…) holding a pod's address. */
function podNetns(ip: string): string {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
  const found = names.find((n) =>
    execFileSync('ip', ['-n', n, '-4', 'addr'], { encoding: 'utf8' }).includes(`inet ${ip}/`),
  );
  if (!found) throw new Error(`no network namespace holds ${ip}`);
  return found;
}

const inNetns = (netns: string, cmd: string[]) =>
  execFileSync('ip', ['netns', 'exec', netns, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The rules of one iptables chain, as `iptables -S` prints them. */
function iptablesRules(chain: string): string[] {
  return execFileSync('iptables', ['-w', '5', '-S', chain], { encoding: 'utf8' }).trim().split('\n');
}

/** The test app as a Deployment behind the `web` gate; a broken version starts failing (its init container). */
function webDeployment(version: string, broken: boolean): V1Deployment {
  const pod = appPod('web', node.appImage, [gateOf('web')]);
  const spec = pod.spec as NonNullable<V1Pod['spec']>;
  if (broken) {
    const container = spec.containers[0] as NonNullable<typeof spec.containers>[number];
    const env = [{ name: 'APP_STATE_DIR', value: '/state' }];
    const volumeMounts = [{ name: 'state', mountPath: '/state' }];
    container.env = env;
    container.volumeMounts = volumeMounts;
    spec.volumes = [{ name: 'state', emptyDir: {} }];
    spec.initContainers = [
      { name: 'break', image: node.appImage, imagePullPolicy: 'Never', args: ['fail', '3'], env, volumeMounts },
    ];
  }
  return {
    metadata: { name: 'web' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: { metadata: { labels: { app: 'web', version } }, spec },
    },
  };
}

const webPods = async () =>
  (await core.listNamespacedPod({ namespace: appNs, labelSelector: 'app=web' })).items.filter(
    (p) => !p.metadata?.deletionTimestamp,
  );

/** Waits until the Deployment runs `version` only: 2 updated, available pods, each gated True and Ready. */
const rolledOut = (version: string) =>
  eventually(async () => {
    const d = await apps.readNamespacedDeploymentStatus({ namespace: appNs, name: 'web' });
    expect(d.status?.observedGeneration).toBe(d.metadata?.generation);
    expect([d.status?.updatedReplicas, d.status?.availableReplicas, d.status?.replicas]).toEqual([2, 2, 2]);
    const pods = await webPods();
    expect(pods.map((p) => p.metadata?.labels?.version)).toEqual([version, version]);
    for (const p of pods) expect([condition(p, gateOf('web')), condition(p, 'Ready')]).toEqual(['True', 'True']);
  }, 120_000);
