// Faults a tenant or the operator's own network can cause, each counted from the audit log:
// - the operator cut off from most pods (connect timeouts): the global view holds every flip;
// - a policy naming another controller's condition: that condition is never written;
// - a pod whose answers vary on every probe: no write while its gate status holds.
import { createServer, type Server } from 'node:http';
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches } from '../../support/audit.ts';
import { Blackhole } from '../../support/blackhole.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../../support/kube.ts';
import { KubeletFixture } from '../../support/kubelet-fixture.ts';
import {
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  probeRounds,
  startOperator,
} from '../../support/operator.ts';
import { eventually } from '../../support/wait.ts';

const PORT = 9090; // the tests' own servers on the pods' addresses, beside the fixture's apps on 8080
const cp = () => inject('controlPlane');
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;
let operator: OperatorProcess;
const servers: Server[] = [];

const pod = (name: string, app: string, gate: string): V1Pod => ({
  metadata: { name, labels: { app } },
  spec: {
    readinessGates: [{ conditionType: gate }],
    // The fixture serves the declared port; the test's own servers listen on PORT, probed by number.
    containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
  },
});

const policy = (name: string, gate: string, probe: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name },
  spec: {
    conditionType: gate,
    selector: { matchLabels: { app: name } },
    probe: { periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2, ...probe },
    ...extra,
  },
});

const condition = async (name: string, type: string) =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === type);

const policyCondition = async (name: string, type: string) =>
  (
    (await probePolicies(kc).get(ns, name)) as {
      status?: { conditions?: { type: string; status: string; reason: string }[] };
    }
  ).status?.conditions?.find((c) => c.type === type);

/** Creates the pods and returns their addresses once the fixture has given them one. */
async function createPods(names: string[], app: string, gate: string): Promise<string[]> {
  for (const name of names) await core.createNamespacedPod({ namespace: ns, body: pod(name, app, gate) });
  const ips: string[] = [];
  for (const name of names) {
    ips.push(
      await eventually(async () => {
        const ip = (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.podIP;
        expect(ip).toBeTruthy();
        return ip as string;
      }),
    );
  }
  return ips;
}

async function serve(ip: string, handler: Parameters<typeof createServer>[1]): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, ip, () => resolve());
  });
  servers.push(server);
  return server;
}

const close = (s: Server) => {
  s.closeAllConnections();
  return new Promise<void>((resolve) => s.close(() => resolve()));
};

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'tenants');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.64.0.1' });
  await fixture.start();
  operator = await startOperator(await operatorKubeconfig(kc, cp()), cp().dir, ['--namespaces', ns]);
});

afterAll(async () => {
  await operator?.stop();
  for (const s of servers) await close(s).catch(() => {});
  await fixture?.stop();
  await deleteNamespace(kc, ns);
});

describe('fault: the operator cannot reach most pods', () => {
  it('holds every flip to False (0 flips) and says why on each policy, then recovers', async () => {
    const gate = 'readygate.dev/dark';
    const names = ['dark-a', 'dark-b'].flatMap((p) => Array.from({ length: 6 }, (_, i) => `${p}-${i}`));
    for (const p of ['dark-a', 'dark-b']) {
      // maxUnavailable 100%: only the global view can hold these flips.
      await probePolicies(kc).create(
        ns,
        policy(p, gate, { tcpSocket: { port: PORT } }, { failsafe: { maxUnavailable: '100%' } }),
      );
    }
    const ips = [
      ...(await createPods(names.slice(0, 6), 'dark-a', gate)),
      ...(await createPods(names.slice(6), 'dark-b', gate)),
    ];
    const healthy = await Promise.all(ips.map((ip) => serve(ip, (_, res) => res.end('ok'))));
    for (const name of names) await eventually(async () => expect((await condition(name, gate))?.status).toBe('True'));

    const before = auditPosition(cp().dir);
    for (const s of healthy) await close(s);
    const blackhole = await Blackhole.start(ips.map((host) => ({ host, port: PORT })));
    try {
      for (const p of ['dark-a', 'dark-b']) {
        await eventually(
          async () => expect((await policyCondition(p, 'Degraded'))?.reason).toBe('CouldNotLook'),
          60_000,
        );
      }
      await probeRounds(operator.healthUrl, { 'dark-a': 6, 'dark-b': 6 }, 3); // the hold lasts
      const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before);
      const metrics = await (await fetch(`${operator.healthUrl}/metrics`)).text();
      console.log(
        `operator cut off from 12 of 12 pods: ${writes.length} pod writes; ` +
          metrics
            .split('\n')
            .filter((l) => /^readygate_(failsafe_held_targets|targets_could_not_look_ratio)/.test(l))
            .join(', '),
      );
      expect(writes).toEqual([]);
      for (const name of names) expect((await condition(name, gate))?.status).toBe('True');
      const events = (await core.listNamespacedEvent({ namespace: ns })).items;
      expect(
        events
          .filter((e) => e.reason === 'FailsafeCouldNotLook')
          .map((e) => e.involvedObject.name)
          .sort(),
      ).toEqual(['dark-a', 'dark-b']);

      // The network heals: connects succeed again, with no refused connection in between.
      blackhole.open();
      for (const p of ['dark-a', 'dark-b']) {
        await eventually(async () => expect((await policyCondition(p, 'Degraded'))?.status).toBe('False'), 60_000);
      }
      // The whole episode, recovery included, wrote nothing: while blind, the timeouts did not count
      // toward failureThreshold, so the gates are judged afresh once the network heals.
      await probeRounds(operator.healthUrl, { 'dark-a': 6, 'dark-b': 6 }, 2);
      expect(podStatusPatches(cp().dir, OPERATOR_USER, ns, before).map((e) => e.objectRef?.name)).toEqual([]);
      for (const name of names) expect((await condition(name, gate))?.status).toBe('True');
      // Done with these pods: stop probing them before their listeners go away.
      for (const p of ['dark-a', 'dark-b']) await probePolicies(kc).delete(ns, p);
      await eventually(async () => {
        const events = (await core.listNamespacedEvent({ namespace: ns })).items;
        expect(
          events
            .filter((e) => e.reason === 'PolicyDeleted')
            .map((e) => e.involvedObject.name)
            .sort(),
        ).toEqual(['dark-a', 'dark-b']);
      });
    } finally {
      await blackhole.stop();
    }
  });
});

describe("fault: a policy names another controller's condition", () => {
  it('never writes it, and the policy says why', async () => {
    const foreign = 'target-health.elbv2.k8s.aws/k8s-shop-tg';
    const [ip] = await createPods(['foreign-0'], 'foreign', foreign);
    await serve(ip as string, (_, res) => res.end('ok'));
    // The other controller's verdict: not healthy in its target group.
    await core.patchNamespacedPodStatus(
      {
        name: 'foreign-0',
        namespace: ns,
        body: { status: { conditions: [{ type: foreign, status: 'False', reason: 'Elb.RegistrationInProgress' }] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const before = auditPosition(cp().dir);
    await probePolicies(kc).create(ns, policy('foreign', foreign, { tcpSocket: { port: PORT } }));
    await eventually(async () =>
      expect(await policyCondition('foreign', 'Ready')).toMatchObject({
        status: 'False',
        reason: 'ConditionTypeNotAllowed',
      }),
    );
    // The policy was reconciled (its status says so) and decided to probe nothing.
    expect(podStatusPatches(cp().dir, OPERATOR_USER, ns, before)).toEqual([]);
    expect(await condition('foreign-0', foreign)).toMatchObject({
      status: 'False',
      reason: 'Elb.RegistrationInProgress',
    });
  });
});

describe('fault: a pod answers differently on every probe', () => {
  it('costs no write while its gate stays True', async () => {
    const gate = 'readygate.dev/varying';
    const [ip] = await createPods(['varying-0'], 'varying', gate);
    let n = 0;
    await serve(ip as string, (req, res) => {
      // A redirect to a new URL every time, and a body and reason phrase that never repeat.
      if (!req.url?.startsWith('/ok')) {
        res.writeHead(302, `Found ${n}`, { location: `/ok?n=${n++}` }).end();
        return;
      }
      res.writeHead(200, `OK ${n}`).end(`ok \u001b[31m${n}`);
    });
    await probePolicies(kc).create(ns, policy('varying', gate, { httpGet: { port: PORT, path: '/' } }));
    await eventually(async () => expect((await condition('varying-0', gate))?.status).toBe('True'));
    const before = auditPosition(cp().dir);
    const served = n;
    await probeRounds(operator.healthUrl, { varying: 1 }, 10);
    const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before).map((e) => e.objectRef?.name);
    console.log(`varying answers: ${n - served} redirects to a new URL served, pod writes: ${JSON.stringify(writes)}`);
    expect(n - served).toBeGreaterThanOrEqual(10);
    expect(writes).toEqual([]);
    const message = (await condition('varying-0', gate))?.message ?? '';
    expect(message).not.toContain('?n=');
    expect(message).not.toContain('\u001b');
  });
});
