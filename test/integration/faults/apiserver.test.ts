// Faults of kube-apiserver itself, with leader election on (lease 6 s, renew 4 s, retry 1 s):
// - paused (SIGSTOP) for 45 s: the leader steps down on its own timer and exits, the standby
//   takes over after SIGCONT, no gate flips and no process writes after its renew deadline;
// - killed (SIGKILL) and restarted on the same port and etcd: one leader again, informers
//   resume, healthy gates stay True with no write, and a pod that starts failing is flipped;
// - exec probes while it is down: "could not look", never a failure (issue 10, item 7).
// This file runs its own control plane (the shared one's processes are not the workers' to
// signal), and audits Lease writes with their bodies: each renew's renewTime is when its holder
// sent it, the start of its renew deadline. Every process has its own ServiceAccount token, so
// the audit log's credential id (the token's JTI) tells whose each write was.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createExecProber } from '../../../src/probes/exec.ts';
import {
  type AuditEvent,
  auditPosition,
  lateWrites as lateWritesIn,
  podStatusPatches,
  renews as renewsIn,
  writesOf as writesIn,
} from '../../support/audit.ts';
import { type ControlPlane, freePort, startControlPlane } from '../../support/control-plane.ts';
import { installCrd } from '../../support/crd.ts';
import { adminKubeConfigFrom, createNamespace, probePoliciesApi } from '../../support/kube-admin.ts';
import { KubeletExecServer } from '../../support/kubelet-exec.ts';
import { APP_ANNOTATION, KubeletFixture } from '../../support/kubelet-fixture.ts';
import {
  mintKubeconfig as mintKubeconfigFor,
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  operatorKubeconfig,
  startOperator,
} from '../../support/operator.ts';
import { alive, metric, type Replica, testReplicas } from '../../support/replicas.ts';
import { eventually } from '../../support/wait.ts';

/** The chart's RBAC allows one Lease name; the tests take turns on it, each with replicas of its own names. */
const LEASE = 'readygate';
const RENEW_DEADLINE_MS = 4_000;
const PAUSE_MS = 45_000;
/**
 * Shorter than the renew deadline (a leader can keep its lease, and its probe state, through it),
 * longer than a probe period plus timeout (every exec pod is probed while it lasts).
 */
const SHORT_PAUSE_MS = 2_500;

let cp: ControlPlane;
let kc: KubeConfig;
let core: CoreV1Api;
let coordination: CoordinationV1Api;
let fixture: KubeletFixture;
let kubelet: KubeletExecServer;
const ns = { pause: '', restart: '', exec: '' };
const running: Replica[] = [];

/** SIGSTOP and SIGCONT for this file's kube-apiserver; every pause is resumed in a finally, and by afterAll. */
const apiServer = {
  pause: () => process.kill(cp.apiServerPid(), 'SIGSTOP'),
  resume: () => process.kill(cp.apiServerPid(), 'SIGCONT'),
};

beforeAll(async () => {
  cp = await startControlPlane({
    controllerManager: false,
    auditLeaseRequests: true,
    log: (line) => console.log(`[apiserver faults] ${line}`),
  });
  await installCrd(cp.kubeconfigPath);
  kc = adminKubeConfigFrom(cp.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  coordination = kc.makeApiClient(CoordinationV1Api);
  ns.pause = await createNamespace(kc, 'paused');
  ns.restart = await createNamespace(kc, 'restarted');
  ns.exec = await createNamespace(kc, 'exec');
  fixture = new KubeletFixture(kc, { namespaces: Object.values(ns), firstIp: '127.66.0.1' });
  await fixture.start();
  // The chart's RBAC with exec allowed; each replica gets its own token below.
  await operatorKubeconfig(kc, cp, ['exec.enabled=true']);
  kubelet = new KubeletExecServer({
    cert: readFileSync(join(cp.dir, 'apiserver.crt'), 'utf8'),
    key: readFileSync(join(cp.dir, 'apiserver.key'), 'utf8'),
  });
  await kubelet.listen(await freePort());
});

afterAll(async () => {
  if (cp) {
    try {
      apiServer.resume();
    } catch {
      // already gone: stop() below removes what is left
    }
  }
  try {
    for (const r of running) await r.op.kill();
    await kubelet?.stop();
    await fixture?.stop();
  } finally {
    await cp?.stop();
  }
});

/** A kubeconfig with a token of its own, and that token's JTI, on this file's control plane. */
const mintKubeconfig = (name: string) => mintKubeconfigFor(kc, cp, name);

/** Starts a replica (identity = name) under the chart's ServiceAccount with a token of its own. */
async function startReplica(name: string, namespace: string, extra: string[] = []): Promise<Replica> {
  const { path, jti } = await mintKubeconfig(name);
  const args = [
    ...['--namespaces', namespace, '--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE],
    ...['--leader-election-id', LEASE, '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'],
    ...extra,
  ];
  const op = await startOperator(path, cp.dir, args, { POD_NAME: name });
  const replica: Replica = { name, op, jti };
  op.child.once('exit', () => {
    replica.exitedAt = Date.now();
  });
  running.push(replica);
  return replica;
}

/** Removes the Lease an earlier test's killed replicas left, so the next ones need not wait it out. */
const freshLease = () =>
  coordination.deleteNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE }).catch(() => {});

const holder = async () =>
  (await coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE }).catch(() => undefined))?.spec
    ?.holderIdentity;

const gate = async (namespace: string, name: string, type: string) =>
  (await core.readNamespacedPodStatus({ name, namespace })).status?.conditions?.find((c) => c.type === type)?.status;

async function createPolicy(namespace: string, name: string, conditionType: string, probe: Record<string, unknown>) {
  await probePoliciesApi(kc).create(namespace, {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name },
    // 100%: the failsafe admits every flip, so a wrong flip would show rather than be held.
    spec: { conditionType, selector: { matchLabels: { app: name } }, probe, failsafe: { maxUnavailable: '100%' } },
  });
}

async function createPod(namespace: string, name: string, app: string, conditionType: string) {
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app }, annotations: { [APP_ANNOTATION]: 'healthy' } },
      spec: {
        readinessGates: [{ conditionType }],
        containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
      },
    },
  });
}

/** Successful writes of the lease by its holders, each with the time the holder sent it. */
const renews = () => renewsIn(cp.dir, OPERATOR_NAMESPACE, LEASE);

/** Every write (not a read) the replica made, from the audit log after a position. */
const writesOf = (r: Replica, after: number) => writesIn(cp.dir, r, after);

/** Who renewed the lease since `t`, in order, each once per term. */
const holdersSince = (t: number) =>
  renews()
    .filter((x) => x.receivedAt >= t)
    .map((x) => x.holder)
    .filter((h, i, all) => h !== all[i - 1]);

const isPodStatus = (e: AuditEvent) => e.objectRef?.resource === 'pods' && e.objectRef.subresource === 'status';

/**
 * Writes other than the lease itself that the API server received outside every renew
 * deadline of their process: [renewTime, renewTime + renew deadline] of one of its renews.
 */
const lateWrites = (replicas: Replica[], after: number) =>
  lateWritesIn(cp.dir, replicas, after, {
    namespace: OPERATOR_NAMESPACE,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    leaseOf: (e) => (e.objectRef?.resource === 'leases' ? undefined : LEASE),
  });

/** The time the replica's log says it stopped leading. */
function stoppedLeadingAt(r: Replica): number | undefined {
  const line = r.op
    .log()
    .split('\n')
    .find((l) => l.includes('"stopped leading"'));
  return line ? new Date((JSON.parse(line) as { time: string }).time).getTime() : undefined;
}

/** Waits until exactly one live replica says it leads and holds the lease; returns it. */
async function oneLeader(replicas: Replica[], timeoutMs = 60_000): Promise<Replica> {
  return eventually(async () => {
    const live = replicas.filter(alive);
    const leading = [];
    for (const r of live) if ((await metric(r, 'readygate_leader')) === 1) leading.push(r);
    expect(leading.map((r) => r.name)).toEqual([await holder()]);
    return leading[0] as Replica;
  }, timeoutMs);
}

/** Lets a fault last `ms` from `since`: the fault's length is what is tested, not a wait for state. */
const faultLasts = (since: number, ms: number) =>
  eventually(() => expect(Date.now() - since).toBeGreaterThanOrEqual(ms), ms + 5_000, 50);

/** Creates the pods and their policy, starts a leader and a standby, and waits until every gate is True. */
async function gatedByLeaderAndStandby(o: {
  namespace: string;
  policy: string;
  gate: string;
  pods: string[];
  probe: Record<string, unknown>;
  args?: string[];
  replicas: Replica[];
}): Promise<[Replica, Replica]> {
  await freshLease();
  await createPolicy(o.namespace, o.policy, o.gate, o.probe);
  const leader = await startReplica(`${o.policy}-a`, o.namespace, o.args);
  o.replicas.push(leader);
  await eventually(async () => expect(await holder()).toBe(leader.name));
  for (const p of o.pods) await eventually(async () => expect(await gate(o.namespace, p, o.gate)).toBe('True'), 30_000);
  const standby = await startReplica(`${o.policy}-b`, o.namespace, o.args);
  o.replicas.push(standby);
  await eventually(async () => expect((await fetch(`${standby.op.healthUrl}/readyz`)).status).toBe(200));
  return [leader, standby];
}

interface ProbeCounts {
  success: number;
  failure: number;
  /** Could not look (ProbeResult.couldNotLook): never counted toward a threshold. */
  error: number;
}

async function probeCounts(r: Replica, namespace: string, policy: string): Promise<ProbeCounts> {
  const count = (result: string) => metric(r, 'readygate_probes_total', { namespace, policy, result });
  return { success: await count('success'), failure: await count('failure'), error: await count('error') };
}

/**
 * Samples the replicas' probe counters every 200 ms (their /metrics answer while the API server
 * is down) until stopped; returns how much each counter grew, per replica, from first to last.
 */
async function sampleProbes(replicas: Replica[], namespace: string, policy: string) {
  const first = new Map<string, ProbeCounts>();
  const last = new Map<string, ProbeCounts>();
  const sample = () =>
    Promise.all(
      replicas.filter(alive).map(async (r) => {
        const c = await probeCounts(r, namespace, policy).catch(() => undefined);
        if (!c) return; // it exited meanwhile: its last sample stands
        if (!first.has(r.name)) first.set(r.name, c);
        last.set(r.name, c);
      }),
    );
  await sample();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void sample().finally(() => {
      busy = false;
    });
  }, 200);
  onTestFinished(() => clearInterval(timer)); // also when the test fails before stop()
  return {
    stop: async (): Promise<Record<string, ProbeCounts>> => {
      clearInterval(timer);
      await sample();
      const grew: Record<string, ProbeCounts> = {};
      for (const [name, a] of first) {
        const b = last.get(name) ?? a;
        grew[name] = { success: b.success - a.success, failure: b.failure - a.failure, error: b.error - a.error };
      }
      return grew;
    },
  };
}

const total = (grew: Record<string, ProbeCounts>, key: keyof ProbeCounts) =>
  Object.values(grew).reduce((sum, c) => sum + c[key], 0);

describe('fault: kube-apiserver paused, killed, and down under exec probes', () => {
  it('paused 45 s: the leader steps down and exits, the standby takes over; no flip, no late write', async () => {
    const GATE = 'readygate.dev/paused';
    const PODS = ['p-0', 'p-1', 'p-2', 'p-3'];
    const replicas = testReplicas();
    for (const p of PODS) await createPod(ns.pause, p, 'paused', GATE);
    const [a, b] = await gatedByLeaderAndStandby({
      namespace: ns.pause,
      policy: 'paused',
      gate: GATE,
      pods: PODS,
      probe: { httpGet: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
      replicas,
    });

    const before = auditPosition(cp.dir);
    const pausedAt = Date.now();
    apiServer.pause();
    let resumedAt: number;
    try {
      // The leader cannot renew: it must step down on its own timer and exit while the API
      // server is still paused.
      await eventually(() => expect(a.exitedAt).toBeDefined(), PAUSE_MS);
      await faultLasts(pausedAt, PAUSE_MS);
    } finally {
      apiServer.resume();
      resumedAt = Date.now();
    }
    await eventually(async () => expect(await holder()).toBe(b.name), 30_000);
    await eventually(async () => expect(await metric(b, 'readygate_probes_total')).toBeGreaterThan(0), 30_000);
    const probingAt = Date.now();
    await oneLeader(replicas);
    // No gate moved, and nobody wrote a pod's status, from the pause until the new leader probes.
    const duringEpisode = podStatusPatches(cp.dir, OPERATOR_USER, ns.pause, before);
    for (const p of PODS) expect(await gate(ns.pause, p, GATE)).toBe('True');

    // The new leader acts: a pod that fails goes False, then True when it recovers.
    fixture.setApp(ns.pause, 'p-0', 'failing');
    await eventually(async () => expect(await gate(ns.pause, 'p-0', GATE)).toBe('False'), 30_000);
    fixture.setApp(ns.pause, 'p-0', 'healthy');
    await eventually(async () => expect(await gate(ns.pause, 'p-0', GATE)).toBe('True'), 30_000);

    const deadlineA =
      Math.max(
        ...renews()
          .filter((x) => x.holder === a.name)
          .map((x) => x.sentAt),
      ) + RENEW_DEADLINE_MS;
    const takeover = renews().find((x) => x.holder === b.name && x.receivedAt >= resumedAt);
    const podWritesA = writesOf(a, before).filter(isPodStatus);
    const podWritesB = writesOf(b, before).filter(isPodStatus);
    const late = lateWrites(replicas, before);
    // A renew sent just before the pause reaches the API server only after SIGCONT: it renews
    // with its (old) renewTime, so a standby waits a lease duration more; a figure, not a fault.
    const lateRenews = renews().filter(
      (x) => (x.holder === a.name || x.holder === b.name) && x.receivedAt - x.sentAt > RENEW_DEADLINE_MS,
    );
    const stepDown = stoppedLeadingAt(a);
    console.log(
      `kube-apiserver paused ${resumedAt - pausedAt} ms (lease 6/4/1 s): old leader stopped leading ` +
        `${stepDown === undefined ? '?' : stepDown - deadlineA} ms after its renew deadline ` +
        `(${deadlineA - pausedAt} ms into the pause) and exited (code ${a.op.child.exitCode}); ` +
        `after SIGCONT the standby took the lease in ${takeover ? takeover.receivedAt - resumedAt : '?'} ms ` +
        `(its first write) and probed again within ${probingAt - resumedAt} ms; ` +
        `pod status writes during the episode: ${duringEpisode.length}; writes after a renew deadline: ${late.length} ` +
        `(renews landing later than that after they were sent: ${lateRenews.length}); ` +
        `old leader pod writes: ${podWritesA.length}; new leader: ${podWritesB.length} (p-0 False, then True)`,
    );
    expect(duringEpisode).toEqual([]);
    expect(late).toEqual([]);
    expect(podWritesA).toEqual([]);
    expect(podWritesB.map((e) => e.objectRef?.name)).toEqual(['p-0', 'p-0']);
    expect(a.exitedAt).toBeLessThan(resumedAt);
    expect(a.op.log()).toContain('stopped leading');
    expect((await oneLeader(replicas)).name).toBe(b.name);
  }, 180_000);

  it('killed and restarted: one leader again, informers resume, healthy gates stay True, a failing pod flips', async () => {
    const GATE = 'readygate.dev/restarted';
    const PODS = ['r-0', 'r-1', 'r-2', 'r-3'];
    const replicas = testReplicas();
    for (const p of PODS) await createPod(ns.restart, p, 'restarted', GATE);
    const [a] = await gatedByLeaderAndStandby({
      namespace: ns.restart,
      policy: 'restarted',
      gate: GATE,
      pods: PODS,
      probe: { httpGet: { port: 'http' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
      replicas,
    });

    const before = auditPosition(cp.dir);
    const killedAt = Date.now();
    process.kill(cp.apiServerPid(), 'SIGKILL');
    await cp.restartApiServer();
    const restartedAt = Date.now();
    const leader = await oneLeader(replicas);
    const leaderAt = Date.now();
    // The informers resumed: a pod created now is seen, probed and gated.
    await createPod(ns.restart, 'r-new', 'restarted', GATE);
    await eventually(async () => expect(await gate(ns.restart, 'r-new', GATE)).toBe('True'), 30_000);
    const onHealthy = podStatusPatches(cp.dir, OPERATOR_USER, ns.restart, before).filter(
      (e) => e.objectRef?.name !== 'r-new',
    );
    for (const p of PODS) expect(await gate(ns.restart, p, GATE)).toBe('True');

    // It still acts on the pods it had before: one that starts failing goes False.
    fixture.setApp(ns.restart, 'r-0', 'failing');
    await eventually(async () => expect(await gate(ns.restart, 'r-0', GATE)).toBe('False'), 30_000);

    const writes = podStatusPatches(cp.dir, OPERATOR_USER, ns.restart, before).map((e) => e.objectRef?.name);
    const holders = holdersSince(killedAt);
    const late = lateWrites(replicas, before);
    console.log(
      `kube-apiserver killed and back in ${restartedAt - killedAt} ms: old leader ` +
        `${alive(a) ? 'kept its lease' : `stepped down and exited (code ${a.op.child.exitCode})`}; ` +
        `one leader (${leader.name}) ${leaderAt - restartedAt} ms after the restart, lease holders since the kill ` +
        `${JSON.stringify(holders)}; informer restarts on the leader ${await metric(leader, 'readygate_informer_restarts_total')}; ` +
        `pod status writes on healthy pods: ${onHealthy.length}; all writes ${JSON.stringify(writes)}; ` +
        `writes after a renew deadline: ${late.length}`,
    );
    expect(onHealthy).toEqual([]);
    expect(writes.filter((n) => n !== 'r-new')).toEqual(['r-0']);
    expect(late).toEqual([]);
    for (const p of PODS.slice(1)) expect(await gate(ns.restart, p, GATE)).toBe('True');
    // Still one leader once it is all over: a replica that lost its lease does not go on saying it leads.
    await oneLeader(replicas);
  }, 150_000);

  it('exec while the API server is paused or killed: could not look, never a failure; 0 flips', async () => {
    const GATE = 'readygate.dev/exec';
    const PODS = ['e-0', 'e-1', 'e-2', 'e-3'];
    const COMMAND = ['/bin/check'];
    const replicas = testReplicas();
    for (const p of PODS) await createPod(ns.exec, p, 'exec', GATE);
    for (const p of PODS) {
      await eventually(async () =>
        expect((await core.readNamespacedPodStatus({ name: p, namespace: ns.exec })).status?.phase).toBe('Running'),
      );
    }
    // No kubelet behind the fixture's Node yet: kube-apiserver answers the exec upgrade with 500
    // ("no preferred addresses found"), which exec.ts reads as could not look, never a failure.
    const prober = createExecProber(adminKubeConfigFrom((await mintKubeconfig('exec-prober')).path));
    const noKubelet = await prober.probe({
      namespace: ns.exec,
      pod: 'e-0',
      container: 'app',
      command: COMMAND,
      timeoutMs: 5_000,
    });
    expect(noKubelet).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(noKubelet.message).toContain('HTTP 500');
    await kubelet.attach(core);

    // failureThreshold 1: one outage counted as a failure would flip a gate. successThreshold 3:
    // the flip would not be undone by the next success before its write, held while the API
    // server was down, got through.
    const [a] = await gatedByLeaderAndStandby({
      namespace: ns.exec,
      policy: 'exec',
      gate: GATE,
      pods: PODS,
      probe: {
        exec: { command: COMMAND },
        periodSeconds: 2,
        timeoutSeconds: 1,
        successThreshold: 3,
        failureThreshold: 1,
      },
      args: ['--enable-exec'],
      replicas,
    });
    const before = auditPosition(cp.dir);

    // 1. Paused for less than the renew deadline, so that a leader keeps its lease and its
    // debouncers through it (else a new process starts with fresh counters and proves nothing).
    // The leader's renew may still miss on a loaded machine: then it steps down, and the next try
    // runs with the standby as leader. A try also counts only if the leader probed while paused.
    const paused: { leader: string; kept: boolean; grew: ProbeCounts }[] = [];
    const keptAndProbed = (p: (typeof paused)[number]) => p.kept && p.grew.error + p.grew.failure > 0;
    for (let attempt = 0; attempt < 4 && !paused.some(keptAndProbed); attempt++) {
      const leader = await oneLeader(replicas);
      const sampler = await sampleProbes([leader], ns.exec, 'exec');
      const pausedAt = Date.now();
      apiServer.pause();
      try {
        await faultLasts(pausedAt, SHORT_PAUSE_MS);
      } finally {
        apiServer.resume();
      }
      const resumedAt = Date.now();
      // It kept the lease if a renew it began after SIGCONT succeeded; else it exits.
      const kept = await eventually(() => {
        if (renews().some((x) => x.holder === leader.name && x.sentAt >= resumedAt)) return true;
        if (!alive(leader)) return false;
        throw new Error(`${leader.name} neither renewed after SIGCONT nor exited`);
      }, 30_000);
      // Every pod probed a few times since: any write an outage would have caused is out.
      if (kept) {
        const base = await probeCounts(leader, ns.exec, 'exec');
        await eventually(async () => {
          const now = await probeCounts(leader, ns.exec, 'exec');
          expect(now.success - base.success).toBeGreaterThanOrEqual(2 * PODS.length);
        }, 30_000);
      }
      paused.push({ leader: leader.name, kept, grew: (await sampler.stop())[leader.name] as ProbeCounts });
    }
    const keptThrough = paused.find(keptAndProbed);
    expect(keptThrough, `no leader kept its lease and probed through a ${SHORT_PAUSE_MS} ms pause`).toBeDefined();

    // 2. Killed and restarted: the leader steps down or keeps its lease; either way, no flip.
    const sampler = await sampleProbes(replicas.filter(alive), ns.exec, 'exec');
    // The test's own prober too, back to back through the outage: what each answer was, by message.
    const seen = new Map<string, number>();
    let probing = true;
    const direct = (async () => {
      for (let i = 0; probing && i < 2_000; i++) {
        const r = await prober.probe({
          namespace: ns.exec,
          pod: 'e-0',
          container: 'app',
          command: COMMAND,
          timeoutMs: 1_000,
        });
        const key = `${r.outcome}: ${r.message.replace(/^.*?: /, '')}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const killedAt = Date.now();
    process.kill(cp.apiServerPid(), 'SIGKILL');
    await cp.restartApiServer();
    const restartedAt = Date.now();
    const leader = await oneLeader(replicas);
    const base = await probeCounts(leader, ns.exec, 'exec');
    await eventually(async () => {
      const now = await probeCounts(leader, ns.exec, 'exec');
      expect(now.success - base.success).toBeGreaterThanOrEqual(2 * PODS.length);
    }, 30_000);
    const killed = await sampler.stop();
    probing = false;
    await direct;
    const outageWrites = podStatusPatches(cp.dir, OPERATOR_USER, ns.exec, before);
    for (const p of PODS) expect(await gate(ns.exec, p, GATE)).toBe('True');

    // 3. The command failing for real is still a failure: e-0 goes False.
    kubelet.setExitCode(ns.exec, 'e-0', 1);
    await eventually(async () => expect(await gate(ns.exec, 'e-0', GATE)).toBe('False'), 30_000);
    const afterFailing = await probeCounts(leader, ns.exec, 'exec');

    const late = lateWrites(replicas, before);
    const holders = holdersSince(killedAt);
    console.log(
      `exec without a kubelet: ${noKubelet.message} -> outcome ${noKubelet.outcome}, couldNotLook ${noKubelet.couldNotLook}; ` +
        `kube-apiserver paused ${SHORT_PAUSE_MS} ms: ${JSON.stringify(paused)}; ` +
        `killed and back in ${restartedAt - killedAt} ms, lease holders since ${JSON.stringify(holders)}, leader after: ${leader.name} ` +
        `(first leader ${alive(a) ? 'alive' : 'exited'}), probe counts grew ${JSON.stringify(killed)}; ` +
        `pod status writes during the outages: ${outageWrites.length}; writes after a renew deadline: ${late.length}; ` +
        `e-0 exit 1: False, ${afterFailing.failure - base.failure} failures counted; ` +
        `exec sessions the kubelet endpoint served: ${kubelet.sessions.length}; ` +
        `the test's own exec probes through the kill and restart: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    expect([...seen.keys()].filter((k) => k.startsWith('failure'))).toEqual([]);
    for (const p of paused) expect(p.grew.failure).toBe(0);
    expect(total(killed, 'failure')).toBe(0);
    expect(outageWrites).toEqual([]);
    expect(late).toEqual([]);
    expect(afterFailing.failure - base.failure).toBeGreaterThan(0);
    await oneLeader(replicas);
  }, 150_000);
});
