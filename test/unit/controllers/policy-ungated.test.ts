// The policy reconciler and the real event sink together: one PodsNotGated Warning per workload
// with ungated pods, on the ProbePolicy, and no new Event on the passes after it while nothing
// grows (a steady state, or a rollout restart gating the pods one by one).
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { policyReconciler } from '../../../src/controllers/policy.ts';
import { UNGATED_REMIND_MS } from '../../../src/controllers/ungated.ts';
import { EventRecorder } from '../../../src/kube/events.ts';

const GATE = 'readygate.dev/db';
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);

const policy: ProbePolicy = {
  metadata: {
    name: 'db',
    namespace: 'shop',
    uid: 'uid-db',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z' as never,
  },
  spec: { conditionType: GATE, selector: { matchLabels: { app: 'shop' } }, probe: { tcpSocket: { port: 5432 } } },
};

/** A running pod of app=shop: gated or not, owned by the given controller (kind/name) or by nothing. */
function pod(name: string, opts: { gated?: boolean; owner?: string; hash?: string } = {}): V1Pod {
  const [kind, owner] = opts.owner?.split('/') ?? [];
  return {
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      labels: { app: 'shop', ...(opts.hash ? { 'pod-template-hash': opts.hash } : {}) },
      ...(kind && owner
        ? {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind, name: owner, uid: `uid-${kind}-${owner}`, controller: true },
            ],
          }
        : {}),
    },
    spec: { containers: [{ name: 'app' }], ...(opts.gated ? { readinessGates: [{ conditionType: GATE }] } : {}) },
    status: { phase: 'Running', podIP: '127.0.0.9' },
  };
}

function harness(opts: { writesStatus?: () => boolean } = {}) {
  let now = T0;
  let pods: V1Pod[] = [];
  const created: CoreV1Event[] = [];
  const core = {
    createNamespacedEvent: async ({ body }: { body: CoreV1Event }) => {
      created.push(body);
      return body;
    },
  };
  const reconcile = policyReconciler({
    caches: {
      policies: { get: () => policy, list: () => [policy] },
      pods: { get: () => undefined, list: () => pods },
    },
    probes: { syncPolicy: () => {}, failsafe: () => undefined, overload: () => undefined } as never,
    core: core as never,
    events: new EventRecorder({ core: core as never, now: () => now, instance: 'test' }),
    writeLimiter: { wait: async () => {} } as never,
    now: () => now,
    enableExec: false,
    allowSecretCa: false,
    kc: {} as never,
    allowedConditionPrefixes: ['readygate.dev/'],
    // Status writes are not this test's subject: the fence takes them and sends nothing.
    fence: { run: async () => 'patched' } as never,
    statusWriter: opts.writesStatus,
  });
  const ctx = { signal: new AbortController().signal, log: pino({ level: 'silent' }), retries: 0 };
  return {
    /** One pass over these pods; the PodsNotGated messages it recorded. */
    pass: async (next: V1Pod[]) => {
      pods = next;
      const before = created.length;
      await reconcile({ namespace: 'shop', name: 'db' }, ctx);
      return created.slice(before).map((e) => e.message ?? '');
    },
    advance: (ms: number) => {
      now += ms;
    },
    created,
  };
}

const web = (n: number, hash: string, gated = false) =>
  pod(`web-${hash}-${n}`, { owner: `ReplicaSet/web-${hash}`, hash, gated });

describe('PodsNotGated Events from the policy reconciler', () => {
  it('records one Warning per workload on the ProbePolicy, then none while the same state is seen again', async () => {
    const h = harness();
    const fleet = [
      web(1, 'aaa'),
      web(2, 'aaa'),
      pod('db-0', { owner: 'StatefulSet/cache' }),
      pod('bare'),
      pod('ok', { gated: true }),
    ];
    const first = await h.pass(fleet);
    expect(first).toHaveLength(3);
    expect(first[0]).toMatch(/^2 pods of deployment\/web are selected but do not list readygate\.dev\/db/);
    expect(first[0]).toContain('kubectl rollout restart deployment/web -n shop');
    // Most pods first, then by kind and name.
    expect(first[1]).toMatch(/^pod bare is selected/);
    expect(first[2]).toContain('1 pod of statefulset/cache is selected');
    for (const e of h.created) {
      expect(e).toMatchObject({ type: 'Warning', reason: 'PodsNotGated' });
      expect(e.involvedObject).toMatchObject({ kind: 'ProbePolicy', name: 'db', namespace: 'shop', uid: 'uid-db' });
    }
    for (let i = 0; i < 5; i++) {
      h.advance(1_000);
      expect(await h.pass(fleet)).toEqual([]);
    }
  });

  it('records nothing while a restart gates the pods one by one; a new workload, and a reminder, are news', async () => {
    const h = harness();
    await h.pass([web(1, 'aaa'), web(2, 'aaa'), web(3, 'aaa')]);
    // kubectl rollout restart: the new ReplicaSet's pods get the gate, the old ones go.
    expect(await h.pass([web(1, 'aaa'), web(2, 'aaa'), web(1, 'bbb', true)])).toEqual([]);
    expect(await h.pass([web(1, 'aaa'), web(1, 'bbb', true), web(2, 'bbb', true)])).toEqual([]);
    expect(await h.pass([web(1, 'bbb', true), web(2, 'bbb', true), web(3, 'bbb', true)])).toEqual([]);
    const later = [web(1, 'bbb', true), pod('bare')];
    expect(await h.pass(later)).toEqual([expect.stringMatching(/^pod bare is selected/)]);
    h.advance(UNGATED_REMIND_MS);
    expect(await h.pass(later)).toEqual([expect.stringMatching(/^pod bare is selected/)]);
    expect(await h.pass(later)).toEqual([]);
  });

  it('records nothing on a replica that does not write policy status', async () => {
    let writer = false;
    const h = harness({ writesStatus: () => writer });
    expect(await h.pass([pod('bare')])).toEqual([]);
    writer = true;
    expect(await h.pass([pod('bare')])).toHaveLength(1);
  });
});
