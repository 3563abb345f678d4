// Overload: an operator whose probes cannot keep their periods still writes a failing pod's flip
// promptly (issue 16, src/safety/overload.ts). With --probe-concurrency 1 and 100 pods whose
// answers take 100 ms, one round of probes takes 10 s against a 2 s period: every due run waits in
// the queue. A pod that starts failing is mid-transition after its first failure, so its next
// probes queue before the re-probes of the 99 healthy pods, and the flip is written long before
// they have all been probed again. Asserted by order (probe answers and the audit log's time of
// the write), not by wall time.
import { createServer, type Server } from 'node:http';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches } from '../../support/audit.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../../support/kube.ts';
import { KubeletFixture } from '../../support/kubelet-fixture.ts';
import { OPERATOR_USER, type OperatorProcess, operatorKubeconfig, startOperator } from '../../support/operator.ts';
import { eventually } from '../../support/wait.ts';

const PORT = 9090;
const PODS = 100;
const ANSWER_MS = 100;
const GATE = 'readygate.dev/busy';
const cp = () => inject('controlPlane');
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;
let operator: OperatorProcess;
const servers: Server[] = [];
/** Every probe answer, in the order they were sent. */
const answers: { ip: string; at: number; code: number }[] = [];
const failing = new Set<string>();

const pod = (name: string): V1Pod => ({
  metadata: { name, labels: { app: 'busy' } },
  spec: {
    readinessGates: [{ conditionType: GATE }],
    containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
  },
});

/** A pod's app on PORT: answers after ANSWER_MS, 503 while the test says it is failing. */
async function serve(ip: string): Promise<void> {
  const server = createServer((_req, res) => {
    setTimeout(() => {
      const code = failing.has(ip) ? 503 : 200;
      answers.push({ ip, at: Date.now(), code });
      res.writeHead(code, { connection: 'close' }).end();
    }, ANSWER_MS);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, ip, () => resolve());
  });
  servers.push(server);
}

const gateOf = async (name: string) =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === GATE);

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'overload');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.68.0.1' });
  await fixture.start();
  operator = await startOperator(await operatorKubeconfig(kc, cp()), cp().dir, [
    '--namespaces',
    ns,
    '--probe-concurrency',
    '1',
  ]);
}, 120_000);

afterAll(async () => {
  // Each step says when it is done: a CI run once timed this hook out (180 s) and its log could
  // not tell which step hung.
  const step = async (what: string, run: () => Promise<void>) => {
    const started = Date.now();
    await run();
    console.log(`[overload] after all: ${what} took ${Date.now() - started} ms`);
  };
  await step('operator stop', async () => operator?.stop());
  await step('servers close', async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
  await step('fixture stop', async () => fixture?.stop());
  await step('namespace delete', () => deleteNamespace(kc, ns));
});

describe('fault: probes cannot keep their periods (one probe slot, 100 pods, 2 s period)', () => {
  it("writes a failing pod's flip before the healthy pods' queued re-probes have run", async () => {
    const names = Array.from({ length: PODS }, (_, i) => `busy-${i}`);
    for (const name of names) await core.createNamespacedPod({ namespace: ns, body: pod(name) });
    const ips = new Map<string, string>();
    await eventually(async () => {
      for (const name of names) {
        if (ips.has(name)) continue;
        const ip = (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.podIP;
        expect(ip, name).toBeTruthy();
        ips.set(name, ip as string);
      }
    }, 60_000);
    for (const ip of ips.values()) await serve(ip);
    await probePolicies(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: 'busy' },
      spec: {
        conditionType: GATE,
        selector: { matchLabels: { app: 'busy' } },
        probe: { httpGet: { port: PORT, path: '/' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
        failsafe: { maxUnavailable: '100%' },
      },
    });
    await eventually(async () => {
      for (const name of names) expect((await gateOf(name))?.status, name).toBe('True');
    }, 90_000);

    // Saturated: a full round of probes (100 × 100 ms) takes five periods.
    const victim = 'busy-42';
    const victimIp = ips.get(victim)!;
    const position = auditPosition(cp().dir);
    failing.add(victimIp);
    await eventually(async () => expect((await gateOf(victim))?.status).toBe('False'), 60_000);

    const flip = podStatusPatches(cp().dir, OPERATOR_USER, ns, position).find((e) => e.objectRef?.name === victim);
    expect(flip, 'the flip is in the audit log').toBeDefined();
    const writtenAt = new Date(flip!.requestReceivedTimestamp).getTime();
    const firstFailure = answers.find((a) => a.ip === victimIp && a.code === 503)!;
    const between = answers.filter((a) => a.at > firstFailure.at && a.at < writtenAt);
    const others = between.filter((a) => a.ip !== victimIp);
    const victimProbes = between.filter((a) => a.ip === victimIp);
    console.log(
      `[overload] between the victim's first failure and its flip's write: ${victimProbes.length} victim probes, ${others.length} of the other ${PODS - 1} pods' probes (${writtenAt - firstFailure.at} ms)`,
    );
    // failureThreshold 2: one more failing probe after the first, then the write.
    expect(victimProbes.length).toBeGreaterThanOrEqual(1);
    // Without priority the victim's second probe waits behind one re-probe of each of the other
    // 99 pods (a FIFO round); with it, behind the few that were due and queued first.
    expect(others.length).toBeLessThan(PODS - 1);
    // The healthy pods were probed meanwhile and none of them flipped.
    for (const name of names.filter((n) => n !== victim)) expect((await gateOf(name))?.status, name).toBe('True');
  }, 240_000);
});
