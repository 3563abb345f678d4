import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import {
  generationChanged,
  MAX_POLICY_STATUS_BATCH_MS,
  mayDropPods,
  POLICY_STATUS_BATCH_MS,
  StatusBatch,
  watchForKeys,
} from '../../../src/controllers/event-handlers.ts';
import type { Request } from '../../../src/runtime/controller.ts';

type Handlers<T> = { add(o: T): void; update(o: T, old: T): void; delete(o: T): void };

const policy = (name: string, generation: number, extra: Record<string, unknown> = {}) =>
  ({ metadata: { name, namespace: 'ns', generation, ...extra }, spec: {} }) as unknown as ProbePolicy;

const GATE = 'readygate.dev/x';
const gated = (name: string, gates: string[], uid = name, namespace = 'ns'): V1Pod => ({
  metadata: { name, namespace, uid },
  spec: { containers: [], readinessGates: gates.map((conditionType) => ({ conditionType })) },
});
/** The pods the fake pod cache holds, by namespace. */
const CACHED = [
  gated('with-gate', [GATE]),
  gated('other-gate', ['readygate.dev/y']),
  gated('no-gate', []),
  gated('elsewhere', [GATE], 'elsewhere', 'other'),
];
const cachedIn = (ns: string) => CACHED.filter((p) => p.metadata?.namespace === ns);

function wired() {
  const podQueue: Request[] = [];
  const policyQueue: [Request, number][] = [];
  let podHandlers: Handlers<V1Pod> | undefined;
  let policyHandlers: Handlers<ProbePolicy> | undefined;
  const all = [policy('a', 1), policy('b', 1)];
  watchForKeys(
    { on: (h) => (podHandlers = h), list: cachedIn },
    { on: (h) => (policyHandlers = h), list: () => all },
    { enqueue: (r) => podQueue.push(r) },
    { enqueue: (r) => policyQueue.push([r, 0]), enqueueAfter: (r, ms) => policyQueue.push([r, ms]) },
  );
  return { podQueue, policyQueue, pods: podHandlers!, policies: policyHandlers! };
}

describe('generationChanged (GenerationChangedPredicate)', () => {
  it('ignores status-only updates and sees spec changes and deletion', () => {
    expect(generationChanged(policy('a', 1), policy('a', 1))).toBe(false);
    expect(generationChanged(policy('a', 2), policy('a', 1))).toBe(true);
    expect(generationChanged(policy('a', 1, { deletionTimestamp: 'now' }), policy('a', 1))).toBe(true);
  });
});

describe('StatusBatch', () => {
  it('batches status-only passes for 20 times what the last pass cost, within 1 s and 10 s', () => {
    const b = new StatusBatch();
    expect(b.delayMs('new')).toBe(POLICY_STATUS_BATCH_MS);
    b.record('small', 3);
    expect(b.delayMs('small')).toBe(POLICY_STATUS_BATCH_MS);
    b.record('big', 130); // 30,000 pods
    expect(b.delayMs('big')).toBe(2600);
    b.record('huge', 5000);
    expect(b.delayMs('huge')).toBe(MAX_POLICY_STATUS_BATCH_MS);
    b.record('big', 10);
    expect(b.delayMs('big')).toBe(POLICY_STATUS_BATCH_MS);
  });

  it('is what watchForKeys waits before a status-only policy reconcile', () => {
    const podQueue: Request[] = [];
    const policyQueue: [Request, number][] = [];
    let pods: Handlers<V1Pod> | undefined;
    const batch = new StatusBatch();
    batch.record('ns', 200);
    watchForKeys(
      { on: (h) => (pods = h), list: cachedIn },
      { on: () => {}, list: () => [policy('a', 1)] },
      { enqueue: (r) => podQueue.push(r) },
      { enqueue: (r) => policyQueue.push([r, 0]), enqueueAfter: (r, ms) => policyQueue.push([r, ms]) },
      batch,
    );
    const old: V1Pod = { metadata: { name: 'p', namespace: 'ns' }, status: { conditions: [] } };
    const pod: V1Pod = { ...old, status: { conditions: [{ type: 'readygate.dev/x', status: 'True' }] } };
    pods!.update(pod, old);
    expect(policyQueue).toEqual([[{ namespace: 'ns', name: 'a' }, 4000]]);
  });
});

describe('watchForKeys', () => {
  it('a new pod enqueues it and every policy of its namespace at once', () => {
    const w = wired();
    w.pods.add({ metadata: { name: 'p', namespace: 'ns' } });
    expect(w.podQueue).toEqual([{ namespace: 'ns', name: 'p' }]);
    expect(w.policyQueue.map(([r, ms]) => `${r.name}@${ms}`)).toEqual(['a@0', 'b@0']);
  });

  it("a pod's condition change moves the policies' counts after a batch period", () => {
    const w = wired();
    const old: V1Pod = { metadata: { name: 'p', namespace: 'ns' }, status: { conditions: [] } };
    const pod: V1Pod = {
      metadata: { name: 'p', namespace: 'ns' },
      status: { conditions: [{ type: 'readygate.dev/x', status: 'True' }] },
    };
    w.pods.update(pod, old);
    expect(w.policyQueue.every(([, ms]) => ms === POLICY_STATUS_BATCH_MS || ms === 0)).toBe(true);
  });

  it("a policy's own status write reconciles nothing", () => {
    const w = wired();
    w.policies.update(policy('a', 1), policy('a', 1));
    expect(w.policyQueue).toEqual([]);
    w.policies.update(policy('a', 2), policy('a', 1));
    expect(w.policyQueue.map(([r]) => r.name)).toEqual(['a', 'a', 'b']);
  });

  const gatePolicy = (generation: number, selector: object, extra: Record<string, unknown> = {}) =>
    ({
      metadata: { name: 'a', namespace: 'ns', generation, ...extra },
      spec: { conditionType: GATE, selector },
    }) as unknown as ProbePolicy;

  it("a deleted policy's pods (those listing its gate, in its namespace) are looked at again", () => {
    const w = wired();
    w.policies.delete(gatePolicy(1, {}));
    expect(w.podQueue).toEqual([{ namespace: 'ns', name: 'with-gate' }]);
  });

  it('a selector change looks at the pods of the gate again; another spec change does not', () => {
    const w = wired();
    const before = gatePolicy(1, { matchLabels: { app: 'a' } });
    w.policies.update(gatePolicy(2, { matchLabels: { app: 'a' } }), before);
    expect(w.podQueue).toEqual([]);
    w.policies.update(gatePolicy(2, { matchLabels: { app: 'b' } }), before);
    expect(w.podQueue).toEqual([{ namespace: 'ns', name: 'with-gate' }]);
  });
});

describe('mayDropPods', () => {
  const p = (selector: object, extra: Record<string, unknown> = {}) =>
    ({ metadata: { name: 'a', ...extra }, spec: { conditionType: GATE, selector } }) as unknown as ProbePolicy;
  it('is true for a new selector or a deletion begun, false otherwise', () => {
    expect(mayDropPods(p({ matchLabels: { app: 'a' } }), p({ matchLabels: { app: 'a' } }))).toBe(false);
    expect(mayDropPods(p({ matchLabels: { app: 'b' } }), p({ matchLabels: { app: 'a' } }))).toBe(true);
    expect(mayDropPods(p({}, { deletionTimestamp: 'now' }), p({}))).toBe(true);
    expect(mayDropPods(p({}, { deletionTimestamp: 'now' }), p({}, { deletionTimestamp: 'now' }))).toBe(false);
  });
});

describe('watchForKeys, sharded', () => {
  function sharded(writer: boolean, countsShare = false) {
    const podQueue: Request[] = [];
    const policyQueue: [Request, number][] = [];
    const foreign: string[] = [];
    let pods: Handlers<V1Pod> | undefined;
    let policies: Handlers<ProbePolicy> | undefined;
    watchForKeys(
      { on: (h) => (pods = h), list: () => [gated('p', [GATE], 'mine'), gated('q', [GATE], 'theirs')] },
      { on: (h) => (policies = h), list: () => [policy('a', 1)] },
      { enqueue: (r) => podQueue.push(r) },
      { enqueue: (r) => policyQueue.push([r, 0]), enqueueAfter: (r, ms) => policyQueue.push([r, ms]) },
      new StatusBatch(),
      {
        owns: (uid) => uid === 'mine',
        isStatusWriter: () => writer,
        countsShare: () => countsShare,
        foreignPod: (pod) => foreign.push(pod.metadata?.name ?? ''),
      },
    );
    return { podQueue, policyQueue, foreign, pods: pods!, policies: policies! };
  }
  const podOf = (name: string, uid: string, status?: string): V1Pod => ({
    metadata: { name, namespace: 'ns', uid },
    status: { conditions: status ? [{ type: 'readygate.dev/x', status }] : [] },
  });

  it("reconciles only owned pods; another replica's pod goes to the failsafe's foreign view", () => {
    const w = sharded(false);
    w.pods.add(podOf('p', 'mine'));
    w.pods.add(podOf('q', 'theirs'));
    expect(w.podQueue).toEqual([{ namespace: 'ns', name: 'p' }]);
    expect(w.foreign).toEqual(['q']);
    // A new pod may change targets: every replica looks again, the writer or not.
    expect(w.policyQueue.map(([r, ms]) => `${r.name}@${ms}`)).toEqual(['a@0', 'a@0']);
  });

  it('batches status-only reconciles on the status writer only', () => {
    const reader = sharded(false);
    reader.pods.update(podOf('p', 'mine', 'True'), podOf('p', 'mine'));
    expect(reader.policyQueue).toEqual([]);
    const writer = sharded(true);
    writer.pods.update(podOf('p', 'mine', 'True'), podOf('p', 'mine'));
    expect(writer.policyQueue).toEqual([[{ namespace: 'ns', name: 'a' }, POLICY_STATUS_BATCH_MS]]);
  });

  it('batches status-only reconciles on every replica that counts its share (share-only cache)', () => {
    const counting = sharded(false, true);
    counting.pods.update(podOf('p', 'mine', 'True'), podOf('p', 'mine'));
    expect(counting.policyQueue).toEqual([[{ namespace: 'ns', name: 'a' }, POLICY_STATUS_BATCH_MS]]);
  });

  it("a deleted policy's pods are looked at again by their owner only", () => {
    const w = sharded(false);
    w.policies.delete({
      metadata: { name: 'a', namespace: 'ns' },
      spec: { conditionType: GATE },
    } as unknown as ProbePolicy);
    expect(w.podQueue).toEqual([{ namespace: 'ns', name: 'p' }]);
  });
});
