// Shutdown is bounded in every state (issue 16): the real operator, busy probing 300 pods every
// 2 s and 50 more whose app accepts and never answers (each of those probes holds its connection
// for its 30 s timeout), gets SIGTERM and must exit within its grace period plus the exit margin
// (src/runtime/shutdown.ts), however the API server is doing:
// - it answers: the drain completes, exit 0;
// - it is paused (SIGSTOP: connections hang) under leader election: the lease release hangs past
//   the grace period, exit 1, and the log names the runnable left behind;
// - it was killed: exit 0.
// This file runs its own control plane: it pauses and kills kube-apiserver. The pods are made
// Running by the benchmark's lean pod driver; the healthy apps are its listener farm.

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from '../../../bench/operator/api.ts';
import { addressBlock, type ListenerFarm, startListenerFarm } from '../../../bench/operator/listeners.ts';
import { startPods } from '../../../bench/operator/pods.ts';
import { EXIT_MARGIN_MS } from '../../../src/runtime/shutdown.ts';
import { type ControlPlane, startControlPlane } from '../../support/control-plane.ts';
import { installCrd } from '../../support/crd.ts';
import { adminKubeConfigFrom } from '../../support/kube-admin.ts';
import {
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  operatorKubeconfig,
  probeRounds,
  startOperator,
} from '../../support/operator.ts';
import { eventually } from '../../support/wait.ts';

const GRACE_MS = 3_000;
/** Time for a loaded 2-core machine to schedule the exit; the bound itself is grace + margin. */
const SCHEDULING_SLACK_MS = 5_000;
const EXIT_DEADLINE_MS = GRACE_MS + EXIT_MARGIN_MS + SCHEDULING_SLACK_MS;
const FAST_PODS = 300;
const SILENT_PODS = 50;
const CONDITION = 'readygate.dev/shutdown';
const NS = { fast: 'shutdown-fast', silent: 'shutdown-silent' };

let cp: ControlPlane;
let farm: ListenerFarm;
let tarpit: Tarpit;
let kubeconfig: string;
let apiPaused = false;
const operators: OperatorProcess[] = [];

/** A listener that accepts connections and never answers on them, holding each until stopped. */
interface Tarpit {
  host: string;
  port: number;
  /** Connections open now: each is a probe waiting for an answer. */
  held(): number;
  stop(): Promise<void>;
}

async function startTarpit(host: string): Promise<Tarpit> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  return {
    host,
    port: (server.address() as AddressInfo).port,
    held: () => sockets.size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function policy(name: string, namespace: string, periodSeconds: number, timeoutSeconds: number): object {
  return {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name, namespace },
    spec: {
      conditionType: CONDITION,
      selector: { matchLabels: { app: 'readygate-bench' } },
      probe: { httpGet: { port: 'http', path: '/' }, periodSeconds, timeoutSeconds, failureThreshold: 3 },
      failsafe: { maxUnavailable: '100%' },
    },
  };
}

beforeAll(async () => {
  cp = await startControlPlane({ controllerManager: false, log: (l) => console.log(`[shutdown] ${l}`) });
  await installCrd(cp.kubeconfigPath);
  const api = new Api(cp.server, cp.caPem, cp.adminToken, 32);
  try {
    for (const ns of Object.values(NS)) await api.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    await api.request(
      'POST',
      `/apis/readygate.dev/v1alpha1/namespaces/${NS.fast}/probepolicies`,
      policy('fast', NS.fast, 2, 1),
    );
    await api.request(
      'POST',
      `/apis/readygate.dev/v1alpha1/namespaces/${NS.silent}/probepolicies`,
      policy('silent', NS.silent, 40, 30),
    );
    const addresses = addressBlock(75, 20);
    farm = await startListenerFarm(addresses, 600);
    tarpit = await startTarpit('127.76.0.1');
    const plans = (n: number, ips: string[], prefix: string) =>
      Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${i}`, ip: ips[i % ips.length]! }));
    await startPods(api, plans(FAST_PODS, addresses, 'fast'), {
      namespace: NS.fast,
      conditionType: CONDITION,
      port: farm.port,
    });
    await startPods(api, plans(SILENT_PODS, [tarpit.host], 'silent'), {
      namespace: NS.silent,
      conditionType: CONDITION,
      port: tarpit.port,
    });
  } finally {
    api.close();
  }
  kubeconfig = await operatorKubeconfig(adminKubeConfigFrom(cp.kubeconfigPath), cp);
});

afterAll(async () => {
  if (apiPaused) process.kill(cp.apiServerPid(), 'SIGCONT');
  try {
    for (const op of operators) await op.kill();
    await farm?.stop();
    await tarpit?.stop();
  } finally {
    await cp?.stop();
  }
});

/** An operator probing every pod: fast ones twice over, and some silent ones waiting on the tarpit. */
async function busyOperator(args: string[] = [], env: Record<string, string> = {}): Promise<OperatorProcess> {
  const op = await startOperator(
    kubeconfig,
    cp.dir,
    ['--namespaces', `${NS.fast},${NS.silent}`, '--shutdown-grace', `${GRACE_MS}ms`, ...args],
    env,
  );
  operators.push(op);
  await probeRounds(op.healthUrl, { fast: FAST_PODS }, 2);
  // Probes the operator cannot finish early: each holds its connection until its 30 s timeout.
  await eventually(() => {
    if (tarpit.held() < 10) throw new Error(`${tarpit.held()} probes waiting on the tarpit`);
  }, 60_000);
  return op;
}

/** SIGTERM, then the exit event within EXIT_DEADLINE_MS (rejects with the log tail if it does not come). */
function terminate(op: OperatorProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`still running ${EXIT_DEADLINE_MS} ms after SIGTERM:\n${op.log().slice(-4000)}`)),
      EXIT_DEADLINE_MS,
    );
    op.child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
    op.child.kill('SIGTERM');
  });
}

async function metric(op: OperatorProcess, name: string): Promise<number> {
  const text = await (await fetch(`${op.healthUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('SIGTERM ends a busy operator within grace + margin', () => {
  it('while the API server answers: the drain completes, exit 0', async () => {
    const op = await busyOperator();
    const { code, signal } = await terminate(op);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(op.log()).toContain('"msg":"all runnables stopped"');
    expect(op.log()).not.toContain('did not finish within its deadline');
  });

  it('while the API server is paused under leader election: exit 1, naming the lease release left behind', async () => {
    const lease = ['--leader-election-namespace', OPERATOR_NAMESPACE, '--leader-election-id', 'readygate'];
    const timing = ['--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '1s'];
    // Probes made means leading: only the leader probes.
    const op = await busyOperator(['--leader-elect', ...lease, ...timing], { POD_NAME: 'paused-leader' });
    process.kill(cp.apiServerPid(), 'SIGSTOP');
    apiPaused = true;
    try {
      const { code } = await terminate(op);
      // Releasing the lease waits on the paused API server for up to the renew deadline (4 s),
      // longer than the grace period: the drain did not finish in time.
      expect(code).toBe(1);
      expect(op.log()).toMatch(/runnables still running after the 3000 ms grace period: leader-election/);
    } finally {
      process.kill(cp.apiServerPid(), 'SIGCONT');
      apiPaused = false;
    }
  });

  it('once the API server was killed: exit 0', async () => {
    const op = await busyOperator();
    const restarts = await metric(op, 'readygate_informer_restarts_total');
    const pid = cp.apiServerPid();
    process.kill(pid, 'SIGKILL');
    await eventually(() => {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      throw new Error(`kube-apiserver (pid ${pid}) still running`);
    });
    // The operator saw it go: its watches failed and its informers are restarting.
    await eventually(async () => {
      const now = await metric(op, 'readygate_informer_restarts_total');
      if (now <= restarts) throw new Error(`informer restarts still ${now}`);
    });
    const { code, signal } = await terminate(op);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(op.log()).toContain('"msg":"stopped"');
  });
});
