// npm run bench:kubelet [-- --quick] [-- --pods N]
// Gate → Ready as the kubelet sets it: the time from a gate condition patched True (then False) on
// pods/status to the watch showing the pod's Ready condition follow, p50/p99 over N pods one at a
// time (bench/kubelet/measure.ts). Two kubelets in the same run: the real one (kubelet v1.37 with
// containerd and runc on this machine, real containers: test/support/node.ts) and the fixture that
// plays it in the integration tests and the 10,000-pod benchmarks (test/support/kubelet-fixture.ts).
// Writes bench/results/<date>-kubelet[-quick].json and prints the Markdown table for bench/RESULTS.md.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/control-plane.ts';
import { adminKubeConfigFrom } from '../test/support/kube-admin.ts';
import { KubeletFixture } from '../test/support/kubelet-fixture.ts';
import { startNode } from '../test/support/node.ts';
import { appPod } from '../test/support/node-pods.ts';
import { describeCommit } from './git.ts';
import { measureTransitions, type Transitions } from './kubelet/measure.ts';
import { quantile } from './stats.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const GATE = 'readygate.dev/bench';
const NAMESPACE = 'kubelet-bench';

/** Deadline for N pods to run with ready containers (a real node starts each pod's sandbox). */
const PODS_RUNNING_DEADLINE_MS = 10 * 60_000;

export interface KubeletUnderTest {
  label: string;
  kc: KubeConfig;
  /** The pod to create: its name, the gate listed, and whatever this kubelet needs to run it. */
  pod(name: string): V1Pod;
  stop(): Promise<void>;
}

const summary = (label: string, t: Transitions) => {
  const stat = (ms: number[]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    const r = (x: number) => Math.round(x * 10) / 10;
    return { p50: r(quantile(sorted, 0.5)), p99: r(quantile(sorted, 0.99)), max: r(sorted.at(-1) ?? 0) };
  };
  return { label, n: t.toReady.length, toReady: stat(t.toReady), toNotReady: stat(t.toNotReady) };
};

/** Creates the pods and waits until each runs with ready containers and Ready False (the gate). */
async function createPods(k: KubeletUnderTest, names: readonly string[]): Promise<void> {
  const core = k.kc.makeApiClient(CoreV1Api);
  for (const name of names) await core.createNamespacedPod({ namespace: NAMESPACE, body: k.pod(name) });
  const deadline = Date.now() + PODS_RUNNING_DEADLINE_MS;
  for (;;) {
    const pods = (await core.listNamespacedPod({ namespace: NAMESPACE })).items;
    const waiting = pods.filter((p) => !containersReady(p));
    if (waiting.length === 0 && pods.length === names.length) return;
    if (Date.now() > deadline) {
      throw new Error(`${waiting.length} of ${names.length} pods without ready containers after the deadline`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const containersReady = (p: V1Pod) =>
  p.status?.conditions?.some((c) => c.type === 'ContainersReady' && c.status === 'True') === true;

async function measure(k: KubeletUnderTest, count: number) {
  const core = k.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const names = Array.from({ length: count }, (_, i) => `bench-${i}`);
  await createPods(k, names);
  return summary(k.label, await measureTransitions(k.kc, NAMESPACE, names, GATE));
}

/** The fixture kubelet on its own control plane. */
async function fixtureKubelet(): Promise<KubeletUnderTest> {
  const cp = await startControlPlane({ log: (l) => console.error(l) });
  const kc = adminKubeConfigFrom(cp.kubeconfigPath);
  const fixture = new KubeletFixture(kc, { namespaces: [NAMESPACE] });
  await fixture.start();
  return {
    label: 'kubelet fixture (test/support/kubelet-fixture.ts)',
    kc,
    pod: (name) => ({
      metadata: { name },
      spec: { readinessGates: [{ conditionType: GATE }], containers: [{ name: 'app', image: 'example/app:1' }] },
    }),
    stop: async () => {
      await fixture.stop();
      await cp.stop();
    },
  };
}

/** The real kubelet (containerd, runc, CNI bridge) on a control plane started for it. */
async function realKubelet(): Promise<KubeletUnderTest> {
  const cp = await startControlPlane({ node: true, log: (l) => console.error(l) });
  try {
    const node = await startNode(cp, { log: (l) => console.error(l) });
    return {
      label: 'real kubelet v1.37.2 (containerd, runc; test/support/node.ts)',
      kc: adminKubeConfigFrom(cp.kubeconfigPath),
      pod: (name) => appPod(name, node.images.app.ref, [GATE]),
      stop: async () => {
        const left = await node.stop();
        await cp.stop();
        if (left.length > 0) throw new Error(`the node left behind: ${left.join(', ')}`);
      },
    };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, pods: { type: 'string' } } });
  const count = Number(values.pods ?? (values.quick ? 10 : 100));
  const t0 = performance.now();
  const rows = [];
  for (const start of [realKubelet, fixtureKubelet]) {
    const k = await start();
    try {
      rows.push(await measure(k, count));
    } finally {
      await k.stop();
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  const commit = describeCommit(root, ['bench/kubelet-ready.ts', 'bench/kubelet', 'test/support']);
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  const result = { date, commit, pods: count, seconds, rows };
  const dir = path.join(root, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${date}-kubelet${values.quick ? '-quick' : ''}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(markdown(result));
  console.error(`wrote ${path.relative(root, file)} in ${seconds} s`);
}

function markdown(r: { pods: number; rows: ReturnType<typeof summary>[] }): string {
  return [
    `Gate condition patched → Ready as the kubelet sets it, seen by a watch; ${r.pods} pods, one at a time:`,
    '',
    '| kubelet | pods | gate True → Ready p50 ms | p99 ms | gate False → not Ready p50 ms | p99 ms |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.rows.map(
      (x) =>
        `| ${x.label} | ${x.n} | ${x.toReady.p50} | ${x.toReady.p99} | ${x.toNotReady.p50} | ${x.toNotReady.p99} |`,
    ),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
