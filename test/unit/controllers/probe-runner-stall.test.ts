// The fault: the operator's own event loop blocks for 1.5 s while a probe is in flight to a pod
// that answered at once (a server in another process). Node runs the expired timeout before it
// reads the answer, so the raw result is a timeout; it must not count against the pod
// (src/safety/stalls.ts). The same pod, probed without a stall, keeps its gate True, and a pod
// that never answers still flips.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import type { createMetrics } from '../../../src/observability/metrics.ts';
import { testProbeRunner } from '../../support/probe-runner.ts';
import { eventually } from '../../support/wait.ts';

const GATE = 'readygate.dev/web';
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const ok = { type: GATE, status: 'True', reason: 'ProbeSucceeded', lastTransitionTime: new Date(T0 - 60_000) as never };
const pod = (name: string, ip: string): V1Pod => ({
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'web' } },
  spec: { containers: [{ name: 'web' }], readinessGates: [{ conditionType: GATE }] },
  status: { phase: 'Running', podIP: ip, conditions: [ok] },
});

let child: ChildProcess | undefined;
let silent: Server | undefined;
let stop: (() => void) | undefined;
afterEach(async () => {
  stop?.();
  child?.kill('SIGKILL');
  child = undefined;
  await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
  silent = undefined;
});

/**
 * An HTTP server in another process, so it answers while this one is blocked: it says "request"
 * on stdout when one arrives and answers 200 ms later.
 */
async function answeringServer(): Promise<{ port: number; request: Promise<void> }> {
  const code = `require('node:http').createServer((q, s) => { console.log('request'); setTimeout(() => s.end('ok'), 200) }).listen(0, '127.0.0.1', function () { console.log(this.address().port) })`;
  child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = child.stdout!;
  const port = await new Promise<number>((resolve) =>
    lines.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
  );
  const request = new Promise<void>((resolve) => lines.once('data', () => resolve()));
  return { port, request };
}

function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the fault: this process does nothing else meanwhile
  }
}

function runner(pods: V1Pod[]) {
  const r = testProbeRunner(pods, { startAt: T0 });
  stop = () => r.probes.stop();
  return r;
}

const policy = (port: number): ProbePolicy => ({
  metadata: { name: 'web', namespace: 'shop', uid: 'p1', generation: 1 },
  spec: {
    conditionType: GATE,
    selector: { matchLabels: { app: 'web' } },
    probe: { httpGet: { port, path: '/' }, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 1 },
    failsafe: { maxUnavailable: '100%' },
  },
});

const count = async (metrics: ReturnType<typeof createMetrics>, name: string) =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.reduce((n, v) => n + v.value, 0) ?? 0;

describe('a timeout the operator caused by stalling', () => {
  it('does not count against a pod that answered', async () => {
    const { port, request } = await answeringServer();
    const pods = [pod('a', '127.0.0.1')];
    const { clock, probes, metrics } = runner(pods);
    probes.syncPolicy(policy(port), pods, {});
    // The seeded target's first run starts now. Once its request has arrived, this process blocks;
    // the other answers meanwhile, but the expired timeout is run before the answer is read.
    await clock.tick(10_000);
    await request;
    blockFor(1_500);
    await eventually(async () => expect(await count(metrics, 'readygate_probes_total')).toBe(1), 10_000);
    expect(await count(metrics, 'readygate_probe_timeouts_discounted_total')).toBe(1);
    expect(probes.desiredFor('uid-a')[0]?.status).toBe('True');
  });

  it('still flips a pod that never answers', async () => {
    silent = createServer((s) => s.on('error', () => {})); // accepts, never answers
    const port = await new Promise<number>((resolve) =>
      silent!.listen(0, '127.0.0.1', () => resolve((silent!.address() as { port: number }).port)),
    );
    const pods = [pod('b', '127.0.0.1')];
    const { clock, probes, metrics } = runner(pods);
    probes.syncPolicy(policy(port), pods, {});
    await clock.tick(10_000);
    await eventually(() => expect(probes.desiredFor('uid-b')[0]?.status).toBe('False'), 10_000);
    expect(probes.desiredFor('uid-b')[0]?.reason).toBe('ProbeTimeout');
    expect(await count(metrics, 'readygate_probe_timeouts_discounted_total')).toBe(0);
  });
});
