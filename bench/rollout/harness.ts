// Rollout overhead (docs/benchmarks.md): the wall time of a RollingUpdate of an
// N-replica Deployment whose pods carry a readygate readiness gate, against the same rollout
// without the gate, in the same run on the same control plane.
//
// One test control plane (etcd + kube-apiserver + kube-controller-manager with the deployment and
// replicaset controllers), one kubelet fixture watching two namespaces, and the real operator
// (under the chart's RBAC) watching only the gated one. Both Deployments are created at v1 and
// waited for; then gates-off and gates-on rollouts alternate, K of each, and each is timed from
// the pod-template patch until the Deployment reports N updated, N available, N replicas and has
// observed its generation (polled every 200 ms).
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { startControlPlane } from '../../test/support/control-plane.ts';
import { installCrd } from '../../test/support/crd.ts';
import { adminKubeConfigFrom, createNamespace, probePoliciesApi } from '../../test/support/kube-admin.ts';
import { KubeletFixture } from '../../test/support/kubelet-fixture.ts';
import { type OperatorProcess, operatorKubeconfig, probesMade, startOperator } from '../../test/support/operator.ts';

export interface RolloutBenchOptions {
  /** Replicas of each Deployment. */
  replicas: number;
  /** Rollouts of each kind (gates off, gates on), alternated. */
  repetitions: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
  /** Give up on one rollout (or the initial v1) after this long. */
  rolloutTimeoutSeconds: number;
  /** Status poll interval. */
  pollMs: number;
}

export const fullRolloutOptions: RolloutBenchOptions = {
  replicas: 100,
  repetitions: 3,
  periodSeconds: 2,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 2,
  rolloutTimeoutSeconds: 300,
  pollMs: 200,
};

export const quickRolloutOptions: RolloutBenchOptions = { ...fullRolloutOptions, replicas: 10, repetitions: 1 };

export type Gates = 'off' | 'on';

export interface RolloutRun {
  gates: Gates;
  /** 1-based order in the run. */
  order: number;
  /** The template revision rolled out (v2, v3, ...). */
  image: string;
  seconds: number;
  /** Status polls until done. */
  polls: number;
}

export interface RolloutBenchResult {
  options: RolloutBenchOptions;
  kubernetesVersion: string;
  /** Time for v1 to become fully available, per kind (not part of the figure). */
  initialSeconds: Record<Gates, number>;
  runs: RolloutRun[];
  medianSeconds: Record<Gates, number>;
  /** Median gates on ÷ median gates off. */
  ratio: number;
  /** Probes the operator made over the whole run (from its /metrics). */
  operatorProbes: number | null;
  seconds: number;
}

export const GATE = 'readygate.dev/rollout';
const APP = 'rollout';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function deployment(replicas: number, gates: Gates): V1Deployment {
  return {
    metadata: { name: APP },
    spec: {
      replicas,
      selector: { matchLabels: { app: APP } },
      // The Kubernetes defaults, spelled out.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { app: APP } },
        spec: {
          ...(gates === 'on' ? { readinessGates: [{ conditionType: GATE }] } : {}),
          containers: [{ name: 'app', image: `${APP}:v1`, ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      },
    },
  };
}

/** True once the Deployment has rolled out completely: the condition the benchmark times. */
function complete(d: V1Deployment, replicas: number): boolean {
  const s = d.status;
  return (
    (s?.updatedReplicas ?? 0) === replicas &&
    (s?.availableReplicas ?? 0) === replicas &&
    (s?.replicas ?? 0) === replicas &&
    (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1)
  );
}

function describe(d: V1Deployment): string {
  const s = d.status;
  return `gen ${d.metadata?.generation}/${s?.observedGeneration ?? '-'}, replicas ${s?.replicas ?? 0}, updated ${s?.updatedReplicas ?? 0}, available ${s?.availableReplicas ?? 0}`;
}

async function waitComplete(
  apps: AppsV1Api,
  namespace: string,
  o: RolloutBenchOptions,
): Promise<{ seconds: number; polls: number; end: number }> {
  const start = performance.now();
  const deadline = start + o.rolloutTimeoutSeconds * 1000;
  let polls = 0;
  let last: V1Deployment | undefined;
  while (performance.now() < deadline) {
    last = await apps.readNamespacedDeployment({ name: APP, namespace });
    polls++;
    if (complete(last, o.replicas)) {
      const end = performance.now();
      return { seconds: (end - start) / 1000, polls, end };
    }
    await sleep(o.pollMs);
  }
  throw new Error(
    `${namespace}/${APP} not rolled out after ${o.rolloutTimeoutSeconds} s (${last ? describe(last) : 'never read'})`,
  );
}

/** Waits until the namespace holds exactly the Deployment's pods, none terminating. */
async function waitSettled(core: CoreV1Api, namespace: string, replicas: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const pods = (await core.listNamespacedPod({ namespace })).items;
    if (pods.length === replicas && pods.every((p) => !p.metadata?.deletionTimestamp)) return;
    await sleep(200);
  }
  throw new Error(`${namespace}: old pods still there 60 s after the rollout`);
}

async function rollout(
  apps: AppsV1Api,
  namespace: string,
  image: string,
  o: RolloutBenchOptions,
): Promise<{ seconds: number; polls: number }> {
  const start = performance.now();
  await apps.patchNamespacedDeployment(
    {
      name: APP,
      namespace,
      body: {
        spec: {
          template: {
            metadata: { annotations: { 'bench.readygate.dev/revision': image } },
            spec: { containers: [{ name: 'app', image }] },
          },
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  const done = await waitComplete(apps, namespace, o);
  return { seconds: (done.end - start) / 1000, polls: done.polls };
}

async function createGatedPolicy(kc: KubeConfig, namespace: string, o: RolloutBenchOptions): Promise<void> {
  await probePoliciesApi(kc).create(namespace, {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name: APP },
    spec: {
      conditionType: GATE,
      selector: { matchLabels: { app: APP } },
      probe: {
        httpGet: { port: 'http', path: '/' },
        periodSeconds: o.periodSeconds,
        timeoutSeconds: o.timeoutSeconds,
        successThreshold: o.successThreshold,
        failureThreshold: o.failureThreshold,
      },
    },
  });
}

/** Runs the whole benchmark; everything it starts is stopped on every path. */
export async function runRolloutBench(o: RolloutBenchOptions, log: (m: string) => void): Promise<RolloutBenchResult> {
  const started = performance.now();
  const cp = await startControlPlane({ log });
  let fixture: KubeletFixture | undefined;
  let operator: OperatorProcess | undefined;
  try {
    await installCrd(cp.kubeconfigPath);
    const kc = adminKubeConfigFrom(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const ns: Record<Gates, string> = {
      off: await createNamespace(kc, 'rollout-off'),
      on: await createNamespace(kc, 'rollout-on'),
    };

    fixture = new KubeletFixture(kc, {
      namespaces: [ns.off, ns.on],
      firstIp: '127.80.0.1',
      log: (l) => log(`fixture: ${l}`),
    });
    await fixture.start();

    const operatorConfig = await operatorKubeconfig(kc, cp);
    operator = await startOperator(operatorConfig, cp.dir, ['--namespaces', ns.on, '--log-level', 'info']);
    log(`operator up, watching ${ns.on}`);
    await createGatedPolicy(kc, ns.on, o);

    // v1 of both, created together; timed only for the record.
    const initialSeconds = {} as Record<Gates, number>;
    await Promise.all(
      (['off', 'on'] as const).map(async (g) => {
        await apps.createNamespacedDeployment({ namespace: ns[g], body: deployment(o.replicas, g) });
        const done = await waitComplete(apps, ns[g], o);
        initialSeconds[g] = Math.round(done.seconds * 10) / 10;
        await waitSettled(core, ns[g], o.replicas);
        log(`v1 of ${o.replicas} replicas available with gates ${g} in ${initialSeconds[g]} s`);
      }),
    );

    const runs: RolloutRun[] = [];
    let version = 1;
    for (let rep = 0; rep < o.repetitions; rep++) {
      for (const g of ['off', 'on'] as const) {
        version++;
        const image = `${APP}:v${version}`;
        await sleep(1000); // let the other namespace's tail (and the operator) go quiet
        const r = await rollout(apps, ns[g], image, o);
        const run: RolloutRun = {
          gates: g,
          order: runs.length + 1,
          image,
          seconds: Math.round(r.seconds * 1000) / 1000,
          polls: r.polls,
        };
        runs.push(run);
        log(`rollout ${run.order}: gates ${g}, ${image}, ${run.seconds.toFixed(2)} s`);
        await waitSettled(core, ns[g], o.replicas);
      }
    }

    const medianSeconds: Record<Gates, number> = {
      off: median(runs.filter((r) => r.gates === 'off').map((r) => r.seconds)),
      on: median(runs.filter((r) => r.gates === 'on').map((r) => r.seconds)),
    };
    const operatorProbes = await probesMade(operator.healthUrl).catch(() => null);
    return {
      options: o,
      kubernetesVersion: cp.version,
      initialSeconds,
      runs,
      medianSeconds,
      ratio: Math.round((medianSeconds.on / medianSeconds.off) * 1000) / 1000,
      operatorProbes,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } catch (err) {
    if (operator) log(`operator log tail:\n${operator.log().slice(-3000)}`);
    throw err;
  } finally {
    await operator?.stop().catch((e: unknown) => log(`operator stop: ${String(e)}`));
    await fixture?.stop().catch((e: unknown) => log(`fixture stop: ${String(e)}`));
    await cp.stop().catch((e: unknown) => log(`control plane stop: ${String(e)}`));
  }
}
