// npm run bench:admission [-- --quick] [-- --creates N]
// What gate injection costs a pod create (docs/gate-injection.md): the chart's MutatingAdmissionPolicy
// on a real kube-apiserver, create latency with it against without, same API server, same run.
// Creates alternate one at a time between namespaces the binding matches ("on") and namespaces it
// does not ("off"), so drift on this shared machine hits both alike. Each namespace pair holds the
// same ProbePolicies: 1, or 10 of which 1 selects the pods (the API server evaluates the policy once
// per ProbePolicy of the namespace). Before injection is installed and after it is removed, a block of
// creates in the "off" namespaces measures the API server with no policy at all. Writes
// bench/results/<date>-admission[-quick].json and prints the Markdown table for bench/RESULTS.md.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/control-plane.ts';
import { installCrd } from '../test/support/crd.ts';
import { installGateInjection, waitForGates } from '../test/support/injection.ts';
import { adminKubeConfigFrom, probePoliciesApi } from '../test/support/kube-admin.ts';
import { describeCommit } from './git.ts';
import { quantile } from './stats.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const GATE = 'readygate.dev/web';

interface Series {
  label: string;
  ms: number[];
}

const summary = (s: Series) => {
  const sorted = [...s.ms].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { label: s.label, n: s.ms.length, p50: r(quantile(sorted, 0.5)), p99: r(quantile(sorted, 0.99)) };
};

async function createPolicies(kc: KubeConfig, ns: string, count: number): Promise<void> {
  const api = probePoliciesApi(kc);
  for (let i = 0; i < count; i++) {
    // Policy 0 selects the bench's pods; the others select other apps, as in a busy namespace.
    const app = i === 0 ? 'web' : `other-${i}`;
    await api.create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: i === 0 ? 'web' : app },
      spec: {
        conditionType: i === 0 ? GATE : `readygate.dev/${app}`,
        selector: { matchLabels: { app } },
        probe: { tcpSocket: { port: 8080 } },
      },
    });
  }
}

/** One pod create, timed; returns its latency and the gates admission gave it. */
async function timedCreate(core: CoreV1Api, ns: string, i: number): Promise<{ ms: number; gates: number }> {
  const start = performance.now();
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: `web-${i}`, labels: { app: 'web' } },
      spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
    },
  });
  return { ms: performance.now() - start, gates: pod.spec?.readinessGates?.length ?? 0 };
}

/** `creates` creates alternating between the namespaces of `pairs` (on, off, on, off, ...). */
async function alternate(core: CoreV1Api, pairs: [Series, string, number][], creates: number, offset: number) {
  for (let i = 0; i < creates; i++) {
    for (const [series, ns, wantGates] of pairs) {
      const { ms, gates } = await timedCreate(core, ns, offset + i);
      if (gates !== wantGates) throw new Error(`a pod in ${ns} got ${gates} gates, expected ${wantGates}`);
      series.ms.push(ms);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, creates: { type: 'string' } },
  });
  const creates = Number(values.creates ?? (values.quick ? 100 : 1000));
  const warmup = Math.min(100, creates);
  const t0 = performance.now();
  const cp = await startControlPlane({ controllerManager: false, log: (l) => console.error(l) });
  try {
    await installCrd(cp.kubeconfigPath);
    const kc = adminKubeConfigFrom(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const names = ['on-1', 'off-1', 'on-10', 'off-10'];
    for (const name of names) await core.createNamespace({ body: { metadata: { name } } });
    for (const [ns, count] of [
      ['on-1', 1],
      ['off-1', 1],
      ['on-10', 10],
      ['off-10', 10],
    ] as const)
      await createPolicies(kc, ns, count);

    const none: Series = { label: 'no injection installed', ms: [] };
    const warm: Series = { label: 'warm-up', ms: [] };
    await alternate(core, [[warm, 'off-1', 0]], warmup, 0);
    await alternate(
      core,
      [
        [none, 'off-1', 0],
        [none, 'off-10', 0],
      ],
      Math.ceil(creates / 2),
      1_000_000,
    );

    const injection = await installGateInjection(kc, cp.binDir, { set: ['watchNamespaces={on-1,on-10}'] });
    await waitForGates(kc, 'on-1', { app: 'web' }, [GATE]);
    await waitForGates(kc, 'on-10', { app: 'web' }, [GATE]);
    const on1: Series = { label: 'injection, 1 ProbePolicy', ms: [] };
    const off1: Series = { label: 'binding not matching, 1 ProbePolicy', ms: [] };
    const on10: Series = { label: 'injection, 10 ProbePolicies', ms: [] };
    const off10: Series = { label: 'binding not matching, 10 ProbePolicies', ms: [] };
    await alternate(
      core,
      [
        [warm, 'on-1', 1],
        [warm, 'off-1', 0],
      ],
      warmup,
      2_000_000,
    );
    await alternate(
      core,
      [
        [on1, 'on-1', 1],
        [off1, 'off-1', 0],
        [on10, 'on-10', 1],
        [off10, 'off-10', 0],
      ],
      creates,
      4_000_000,
    );
    await injection.uninstall();
    await waitForGates(kc, 'on-1', { app: 'web' }, []);
    await alternate(
      core,
      [
        [none, 'off-1', 0],
        [none, 'off-10', 0],
      ],
      Math.ceil(creates / 2),
      3_000_000,
    );

    const rows = [on1, off1, on10, off10, none].map(summary);
    const [s1, o1, s10, o10, n] = rows as [
      ReturnType<typeof summary>,
      ReturnType<typeof summary>,
      ReturnType<typeof summary>,
      ReturnType<typeof summary>,
      ReturnType<typeof summary>,
    ];
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    const ratios = {
      p50: { policies1: ratio(s1.p50, o1.p50), policies10: ratio(s10.p50, o10.p50), vsNone1: ratio(s1.p50, n.p50) },
      p99: { policies1: ratio(s1.p99, o1.p99), policies10: ratio(s10.p99, o10.p99), vsNone1: ratio(s1.p99, n.p99) },
    };
    const date = new Date().toISOString().slice(0, 10);
    const commit = describeCommit(root, ['charts/readygate/templates/gate-injection.yaml', 'bench/admission.ts']);
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    const result = { date, commit, apiServer: cp.version, creates, warmup, seconds, rows, ratios };
    const dir = path.join(root, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${date}-admission${values.quick ? '-quick' : ''}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(markdown(result));
    console.error(`wrote ${path.relative(root, file)} in ${seconds} s`);
  } finally {
    await cp.stop();
  }
}

function markdown(r: {
  creates: number;
  apiServer: string;
  rows: ReturnType<typeof summary>[];
  ratios: Record<'p50' | 'p99', Record<string, number>>;
}): string {
  const lines = [
    `Pod create latency, kube-apiserver ${r.apiServer}, ${r.creates} creates per series, one at a time:`,
    '',
    '| series | creates | p50 ms | p99 ms |',
    '| --- | --- | --- | --- |',
    ...r.rows.map((x) => `| ${x.label} | ${x.n} | ${x.p50} | ${x.p99} |`),
    '',
    `Ratio with injection ÷ binding not matching: p50 ${r.ratios.p50.policies1} (1 policy), ${r.ratios.p50.policies10} (10); p99 ${r.ratios.p99.policies1} (1), ${r.ratios.p99.policies10} (10).`,
    `Ratio with injection (1 policy) ÷ no injection installed: p50 ${r.ratios.p50.vsNone1}, p99 ${r.ratios.p99.vsNone1}.`,
  ];
  return lines.join('\n');
}

await main();
