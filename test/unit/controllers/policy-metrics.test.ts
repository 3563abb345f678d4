// The per-policy series: the probe runner starts a policy's counters at 0 and removes them with
// the policy; the policy reconciler (the status writer only) sets the readygate_policy_*_pods
// gauges from the status it computes and removes them when the policy is deleted.
import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { policyReconciler } from '../../../src/controllers/policy.ts';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.ts';
import { testProbeRunner } from '../../support/probe-runner.ts';

const GATE = 'readygate.dev/db';
const policy: ProbePolicy = {
  metadata: { name: 'db', namespace: 'shop', uid: 'uid-db', generation: 1 },
  spec: { conditionType: GATE, selector: { matchLabels: { app: 'db' } }, probe: { tcpSocket: { port: 5432 } } },
};

function pod(name: string, opts: { gated?: boolean; ready?: boolean } = {}): V1Pod {
  return {
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'db' } },
    spec: {
      containers: [{ name: 'db' }],
      ...(opts.gated === false ? {} : { readinessGates: [{ conditionType: GATE }] }),
    },
    status: {
      phase: 'Running',
      podIP: '127.0.0.9',
      conditions: opts.ready ? [{ type: GATE, status: 'True' }] : [],
    },
  };
}

async function series(metrics: Metrics, name: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await metrics.registry.getSingleMetric(name)!.get()).values) {
    const detail = v.labels.result ?? v.labels.reason;
    out.set(`${v.labels.namespace}/${v.labels.policy}${detail ? `:${detail}` : ''}`, v.value);
  }
  return out;
}

let stop: (() => void) | undefined;
afterEach(() => stop?.());

describe('per-policy counters in the probe runner', () => {
  it('start at 0 when the policy appears and go with it', async () => {
    const pods = [pod('a')];
    const { metrics, probes } = testProbeRunner(pods);
    stop = () => probes.stop();
    probes.syncPolicy(policy, pods, {});
    expect(await series(metrics, 'readygate_probes_total')).toEqual(
      new Map([
        ['shop/db:success', 0],
        ['shop/db:failure', 0],
        ['shop/db:error', 0],
      ]),
    );
    expect(await series(metrics, 'readygate_failsafe_trips_total')).toEqual(
      new Map([
        ['shop/db:Failsafe', 0],
        ['shop/db:CouldNotLook', 0],
      ]),
    );
    probes.removePolicy('shop/db');
    expect((await series(metrics, 'readygate_probes_total')).size).toBe(0);
    expect((await series(metrics, 'readygate_failsafe_trips_total')).size).toBe(0);
  });
});

function harness(opts: { writesStatus?: () => boolean } = {}) {
  const metrics = createMetrics({ defaultMetrics: false });
  let pods: V1Pod[] = [];
  let current: ProbePolicy | undefined = policy;
  const reconcile = policyReconciler({
    caches: {
      policies: { get: () => current, list: () => (current ? [current] : []) },
      pods: { get: () => undefined, list: () => pods },
    },
    probes: {
      syncPolicy: () => {},
      removePolicy: () => {},
      failsafe: () => undefined,
      overload: () => undefined,
    } as never,
    core: {} as never,
    events: { record: () => {} },
    writeLimiter: { wait: async () => {} } as never,
    now: () => Date.UTC(2026, 10, 30),
    enableExec: false,
    allowSecretCa: false,
    kc: {} as never,
    metrics,
    allowedConditionPrefixes: ['readygate.dev/'],
    // Status writes are not this test's subject: the fence takes them and sends nothing.
    fence: { run: async () => 'patched' } as never,
    statusWriter: opts.writesStatus,
  });
  const ctx = { signal: new AbortController().signal, log: pino({ level: 'silent' }), retries: 0 };
  return {
    metrics,
    pass: async (next: V1Pod[], alive = true) => {
      pods = next;
      current = alive ? policy : undefined;
      await reconcile({ namespace: 'shop', name: 'db' }, ctx);
    },
  };
}

describe('per-policy pod gauges from the policy reconciler', () => {
  it('follow the status and are removed when the policy is deleted', async () => {
    const { metrics, pass } = harness();
    await pass([pod('a', { ready: true }), pod('b'), pod('c'), pod('d', { gated: false })]);
    const read = async (what: string) => (await series(metrics, `readygate_policy_${what}_pods`)).get('shop/db');
    expect(await read('matched')).toBe(3);
    expect(await read('ready')).toBe(1);
    expect(await read('failing')).toBe(2);
    expect(await read('ungated')).toBe(1);
    await pass([pod('a', { ready: true }), pod('b', { ready: true })]);
    expect(await read('failing')).toBe(0);
    expect(await read('ungated')).toBe(0);

    await pass([], false);
    for (const what of ['matched', 'ready', 'failing', 'ungated']) expect(await read(what)).toBeUndefined();
  });

  it('are set only by the status writer, and dropped by a replica that stops writing', async () => {
    let writes = true;
    const { metrics, pass } = harness({ writesStatus: () => writes });
    await pass([pod('a')]);
    expect((await series(metrics, 'readygate_policy_matched_pods')).get('shop/db')).toBe(1);
    writes = false;
    await pass([pod('a'), pod('b')]);
    expect((await series(metrics, 'readygate_policy_matched_pods')).size).toBe(0);
  });
});
