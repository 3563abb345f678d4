// The probe runner with a throwing target (issue 15): the pod cache hands out, for one pod, an
// object whose podIP getter throws, so that target's probe rejects on every period. The crash is
// counted and logged with its stack, that pod's gate goes False after failureThreshold in
// readygate's own words, and the other pod's gate is still judged (True from a real TCP connect
// on loopback).
import { createServer, type Server } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { testProbeRunner } from '../../support/probe-runner.ts';
import { eventually } from '../../support/wait.ts';

const GATE = 'readygate.dev/db';
const pod = (name: string): V1Pod => ({
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'db' } },
  spec: { containers: [{ name: 'db' }], readinessGates: [{ conditionType: GATE }] },
  status: { phase: 'Running', podIP: '127.0.0.1', conditions: [] },
});

let server: Server | undefined;
let stop: (() => void) | undefined;
afterEach(async () => {
  stop?.();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('probe runner and a throwing target', () => {
  it('counts and logs the crash, fails that gate in its own words, and keeps judging the others', async () => {
    server = createServer((s) => {
      s.on('error', () => {}); // the prober resets the connection once connected
      s.end();
    });
    const port = await new Promise<number>((resolve) =>
      server!.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port)),
    );
    const pods = [pod('ok'), pod('bad')];
    const throwing: V1Pod = {
      ...pod('bad'),
      status: {
        phase: 'Running',
        conditions: [],
        get podIP(): string {
          throw new TypeError('podIP of bad');
        },
      },
    };
    const { clock, metrics, lines, probes } = testProbeRunner(pods, {
      get: (name) => (name === 'bad' ? throwing : pods.find((p) => p.metadata?.name === name)),
    });
    stop = () => probes.stop();
    const policy: ProbePolicy = {
      metadata: { name: 'db', namespace: 'shop', uid: 'p1', generation: 1 },
      spec: {
        conditionType: GATE,
        selector: { matchLabels: { app: 'db' } },
        probe: { tcpSocket: { port }, periodSeconds: 10, failureThreshold: 2 },
      },
    };
    probes.syncPolicy(policy, pods, {});

    await clock.tick(0); // first runs: both pods are new
    await eventually(() => expect(probes.desiredFor('uid-ok')[0]?.status).toBe('True'), 10_000);
    // The second run of 'bad' (within 1.5 periods: back on its key's phase) reaches failureThreshold.
    await clock.tick(15_000);
    await eventually(() => expect(probes.desiredFor('uid-bad')[0]?.status).toBe('False'), 10_000);

    expect(probes.desiredFor('uid-bad')[0]).toMatchObject({
      reason: 'ProbeFailed',
      message: 'probe crashed inside readygate (TypeError); see the operator log (2/2 failures)',
    });
    expect(probes.desiredFor('uid-ok')[0]).toMatchObject({ status: 'True', reason: 'ProbeSucceeded' });
    expect(await metrics.registry.getSingleMetricAsString('readygate_probe_crashes_total')).toContain(
      'readygate_probe_crashes_total{handler="tcpSocket",kind="rejected"} 2',
    );
    const crashLines = lines.filter(
      (l) => l.msg === 'probe crashed inside readygate; reported as a failure that could not look',
    );
    expect(crashLines).toHaveLength(2);
    expect(crashLines[0]).toMatchObject({
      level: 'error',
      policy: 'db',
      namespace: 'shop',
      pod: 'bad',
      handler: 'tcpSocket',
      kind: 'rejected',
      err: expect.objectContaining({ type: 'TypeError', stack: expect.stringContaining('podIP of bad') }),
    });
  });
});
