// npm run demo: readygate end to end on an embedded control plane, no cluster needed.
// Starts etcd + kube-apiserver + kube-controller-manager, the kubelet test fixture (pods get
// loopback IPs and a tiny app on their ports), the chart's gate injection (a MutatingAdmissionPolicy)
// and the operator under the chart's RBAC; then rolls out a healthy version, a broken one (the rollout halts, old pods keep serving), and the
// fix. It ends by itself and cleans up everything, also on Ctrl-C.
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { startControlPlane } from '../test/support/control-plane.ts';
import { installCrd } from '../test/support/crd.ts';
import { installGateInjection, waitForGates } from '../test/support/injection.ts';
import { adminKubeConfigFrom, probePoliciesApi } from '../test/support/kube-admin.ts';
import { APP_ANNOTATION, type AppBehaviour, KubeletFixture } from '../test/support/kubelet-fixture.ts';
import { operatorKubeconfig, startOperator } from '../test/support/operator.ts';

const NS = 'shop';
const GATE = 'readygate.dev/payments-ready';
const t0 = Date.now();
const say = (msg: string) => console.log(`\n\x1b[1m[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\x1b[0m`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => Promise<void>)[] = [];
let cleaning = false;
async function cleanup(code: number): Promise<never> {
  if (!cleaning) {
    cleaning = true;
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  }
  process.exit(code);
}
process.once('SIGINT', () => void cleanup(130));
process.once('SIGTERM', () => void cleanup(143));

const deployment = (image: string, behaviour: AppBehaviour): V1Deployment => ({
  metadata: { name: 'payments' },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'payments' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: { labels: { app: 'payments' }, annotations: { [APP_ANNOTATION]: behaviour } },
      spec: {
        // No readinessGates: the chart's gate injection adds the ProbePolicy's at pod creation.
        containers: [{ name: 'app', image, ports: [{ name: 'http', containerPort: 8080 }] }],
      },
    },
  },
});

function table(pods: V1Pod[]): string {
  const rows = pods
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => {
      const c = (t: string) => p.status?.conditions?.find((x) => x.type === t);
      const gate = c(GATE);
      return [
        (p.metadata?.name ?? '').padEnd(30),
        (p.spec?.containers[0]?.image ?? '').padEnd(14),
        (p.status?.podIP ?? '-').padEnd(13),
        `gate=${gate?.status ?? '-'}`.padEnd(11),
        `Ready=${c('Ready')?.status ?? '-'}`.padEnd(12),
        gate?.message ?? '',
      ].join(' ');
    });
  return rows.sort().join('\n');
}

async function main(): Promise<void> {
  say('Starting etcd, kube-apiserver and kube-controller-manager (built from Go modules, cached)');
  const cp = await startControlPlane({ log: (l) => console.log(`  ${l}`) });
  cleanups.push(() => cp.stop());
  await installCrd(cp.kubeconfigPath);
  const kc = adminKubeConfigFrom(cp.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });

  say('Starting the kubelet fixture (pods get 127.x addresses and a tiny app on their ports)');
  const fixture = new KubeletFixture(kc, { namespaces: [NS], firstIp: '127.40.0.1' });
  await fixture.start();
  cleanups.push(() => fixture.stop());

  say("Installing the chart's gate injection: a MutatingAdmissionPolicy, evaluated inside kube-apiserver");
  const injection = await installGateInjection(kc, cp.binDir, { set: [`watchNamespaces={${NS}}`] });
  cleanups.push(() => injection.uninstall());

  say('Starting readygate under the RBAC of its Helm chart');
  const operatorConfig = await operatorKubeconfig(kc, cp);
  const operator = await startOperator(operatorConfig, cp.dir, ['--namespaces', NS, '--log-level', 'info']);
  cleanups.push(() => operator.stop());

  say(`Applying a ProbePolicy: HTTP GET /ready on port "http" every 2 s, condition ${GATE}`);
  await probePoliciesApi(kc).create(NS, {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name: 'payments' },
    spec: {
      conditionType: GATE,
      selector: { matchLabels: { app: 'payments' } },
      probe: { httpGet: { port: 'http', path: '/ready' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
    },
  });

  say('Waiting for the API server to apply gate injection: a new payments pod gets the gate at creation');
  await waitForGates(kc, NS, { app: 'payments' }, [GATE]);

  let last = '';
  const watch = async (until: () => Promise<boolean>, maxMs: number) => {
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline) {
      const pods = (await core.listNamespacedPod({ namespace: NS })).items;
      const now = table(pods);
      if (now !== last) {
        console.log(`--- ${((Date.now() - t0) / 1000).toFixed(1)}s\n${now}`);
        last = now;
      }
      if (await until()) return true;
      await sleep(500);
    }
    return false;
  };
  const rollout = async () => {
    const d = await apps.readNamespacedDeployment({ name: 'payments', namespace: NS });
    return {
      updated: d.status?.updatedReplicas ?? 0,
      available: d.status?.availableReplicas ?? 0,
      total: d.status?.replicas ?? 0,
    };
  };

  say(
    'Deploying payments:v1 (3 replicas, healthy app, no readinessGates in its template): pods turn Ready only once the probe passes',
  );
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment('payments:v1', 'healthy') });
  if (!(await watch(async () => (await rollout()).available === 3, 60_000)))
    throw new Error('v1 never became available');
  const injected = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=payments' })).items.map((p) =>
    JSON.stringify(p.spec?.readinessGates ?? []),
  );
  if (!injected.every((g) => g.includes(GATE))) throw new Error(`a payments pod lacks the injected gate: ${injected}`);
  console.log(`spec.readinessGates of every payments pod, injected at creation: ${injected[0]}`);

  say('Rolling out payments:v2, whose /ready answers 503: the rollout must halt');
  await apps.replaceNamespacedDeployment({
    name: 'payments',
    namespace: NS,
    body: deployment('payments:v2', 'failing'),
  });
  await watch(async () => false, 12_000);
  const halted = await rollout();
  console.log(`rollout: ${halted.updated} of 3 updated, ${halted.available} available — v1 pods keep serving`);

  say('Fixing the app behind payments:v2: its pods pass the probe and the rollout completes');
  fixture.setImageApp('payments:v2', 'healthy');
  const done = await watch(async () => {
    const r = await rollout();
    return r.updated === 3 && r.available === 3 && r.total === 3;
  }, 90_000);
  if (!done) throw new Error('the fixed rollout did not complete');

  say('Done: pods were Ready only when the app was healthy; the broken rollout halted; the fix rolled out.');
}

main().then(
  () => cleanup(0),
  (err: unknown) => {
    console.error(err);
    return cleanup(1);
  },
);
