// Fault: hostile probe targets (issue 15). One exec policy over six pods, behind a kubelet endpoint
// (test/support/kubelet-exec.ts) that answers two of them with hostile sessions: a frame on a
// channel the protocol does not define, output quoting hostile text, then invalid JSON on the
// status channel (h-invalid) or a status whose details.causes is a number followed by more output
// (h-odd). Before src/probes/exec.ts had its own client, the first such session ended the
// operator ('Unknown stream: 9' thrown from client-node's socket listener) and every gate froze.
// Now the operator stays up, the four healthy pods' gates become True, h-odd's becomes False with
// a message of readygate's own words, h-invalid's is never written (an unreadable exit status is
// no observation), and nothing was left to the last-resort handler or the probe containment.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditPosition, podStatusPatches } from '../../support/audit.ts';
import { freePort } from '../../support/control-plane.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../../support/kube.ts';
import { HOSTILE_TEXT, KubeletExecServer } from '../../support/kubelet-exec.ts';
import { KubeletFixture } from '../../support/kubelet-fixture.ts';
import {
  OPERATOR_USER,
  type OperatorProcess,
  operatorKubeconfig,
  probeRounds,
  startOperator,
} from '../../support/operator.ts';
import { eventually } from '../../support/wait.ts';

const GATE = 'readygate.dev/exec-hostile';
const POLICY = 'checked';
const HEALTHY = ['ok-0', 'ok-1', 'ok-2', 'ok-3'];
const cp = () => inject('controlPlane');
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;
let kubelet: KubeletExecServer;
let operator: OperatorProcess;

const condition = async (name: string) =>
  (await core.readNamespacedPodStatus({ name, namespace: ns })).status?.conditions?.find((c) => c.type === GATE);

/** Sums a counter from the operator's /metrics over the lines that carry every label given (0 when absent). */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${operator.healthUrl}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && want.every((w) => l.includes(w)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

const alive = () => operator.child.exitCode === null && operator.child.signalCode === null;

/** Fails, with how the operator ended and the end of its log, once it is no longer running. */
function expectAlive(): void {
  if (alive()) return;
  const tail = operator.log().split('\n').slice(-15).join('\n');
  expect.fail(`the operator exited (${operator.child.exitCode ?? operator.child.signalCode}):\n${tail}`);
}

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'hostile');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.67.0.1' });
  await fixture.start();
  kubelet = new KubeletExecServer({
    cert: readFileSync(join(cp().dir, 'apiserver.crt'), 'utf8'),
    key: readFileSync(join(cp().dir, 'apiserver.key'), 'utf8'),
  });
  await kubelet.listen(await freePort());
  await kubelet.attach(core);
  kubelet.setHostile(ns, 'h-invalid', 'invalid-status');
  kubelet.setHostile(ns, 'h-odd', 'odd-status');
  const kubeconfig = await operatorKubeconfig(kc, cp(), ['exec.enabled=true']);
  operator = await startOperator(kubeconfig, cp().dir, ['--namespaces', ns, '--enable-exec']);
});

afterAll(async () => {
  await operator?.stop();
  if (kubelet) {
    await kubelet.detach(core).catch(() => {});
    await kubelet.stop();
  }
  await fixture?.stop();
  if (ns) await deleteNamespace(kc, ns);
});

describe('fault: hostile exec sessions from some targets', () => {
  it('the operator stays up and keeps gating the other pods; hostile text reaches no condition', async () => {
    const before = auditPosition(cp().dir);
    await probePolicies(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: POLICY },
      spec: {
        conditionType: GATE,
        selector: { matchLabels: { app: POLICY } },
        probe: { exec: { command: ['check'] }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
      },
    });
    for (const name of [...HEALTHY, 'h-invalid', 'h-odd']) {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name, labels: { app: POLICY } },
          spec: { readinessGates: [{ conditionType: GATE }], containers: [{ name: 'app', image: 'example/app:1' }] },
        },
      });
    }

    for (const name of HEALTHY) {
      await eventually(async () => {
        expectAlive();
        expect((await condition(name))?.status).toBe('True');
      }, 60_000);
    }
    await eventually(async () => {
      expectAlive();
      expect((await condition('h-odd'))?.status).toBe('False');
    }, 60_000);
    // Three more rounds over all six pods: each hostile pod was served again and again.
    await probeRounds(operator.healthUrl, { [POLICY]: 6 }, 3);
    const served = (pod: string) => kubelet.sessions.filter((s) => s.namespace === ns && s.pod === pod).length;
    console.log(
      `hostile sessions served: h-invalid ${served('h-invalid')}, h-odd ${served('h-odd')}; ` +
        `probes: ${await metric('readygate_probes_total', { policy: POLICY, result: 'success' })} success, ` +
        `${await metric('readygate_probes_total', { policy: POLICY, result: 'failure' })} failure, ` +
        `${await metric('readygate_probes_total', { policy: POLICY, result: 'error' })} error; ` +
        `unexpected errors ${await metric('readygate_unexpected_errors_total')}, ` +
        `probe crashes ${await metric('readygate_probe_crashes_total')}`,
    );

    expectAlive();
    expect(served('h-invalid')).toBeGreaterThanOrEqual(3);
    expect(served('h-odd')).toBeGreaterThanOrEqual(3);
    for (const name of HEALTHY) expect((await condition(name))?.status).toBe('True');
    // The exit code is not readable as a number: readygate's words only, nothing the session sent.
    expect(await condition('h-odd')).toMatchObject({
      status: 'False',
      reason: 'ProbeFailed',
      message: `exec ["check"] in ${ns}/h-odd/app: exit code unknown (2/2 failures)`,
    });
    // An unreadable status is no observation: the gate is never written, so the pod is not Ready.
    expect(await condition('h-invalid')).toBeUndefined();
    // Every probe of h-invalid is counted as one that could not look.
    expect(await metric('readygate_probes_total', { policy: POLICY, result: 'error' })).toBeGreaterThanOrEqual(3);
    // Handled where it arrives: nothing reached the probe containment or the last-resort handler.
    expect(await metric('readygate_unexpected_errors_total')).toBe(0);
    expect(await metric('readygate_probe_crashes_total')).toBe(0);

    // One write per gate that was decided (four True, one False), none for h-invalid.
    const writes = podStatusPatches(cp().dir, OPERATOR_USER, ns, before).map((e) => e.objectRef?.name);
    expect(writes.sort()).toEqual([...HEALTHY, 'h-odd'].sort());
    const log = operator.log();
    expect(log).not.toContain('pwned');
    for (const name of [...HEALTHY, 'h-odd']) expect((await condition(name))?.message).not.toContain('pwned');
    expect(HOSTILE_TEXT).toContain('pwned');
  });
});
