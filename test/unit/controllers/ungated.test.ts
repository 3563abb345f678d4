// Ungated pods (selected by a policy, without its gate) grouped by the workload that recreates
// them, and the PodsNotGated Events about them: one per workload, none again while nothing grows.
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  dueAnnouncements,
  groupUngated,
  owningWorkload,
  recreateAdvice,
  UNGATED_REMIND_MS,
  ungatedMessage,
  workloadName,
} from '../../../src/controllers/ungated.ts';

const GATE = 'readygate.dev/db';
const ref = (kind: string, name: string, apiVersion = 'apps/v1', controller = true): V1OwnerReference => ({
  apiVersion,
  kind,
  name,
  uid: `uid-${kind}-${name}`,
  controller,
});
let serial = 0;
const pod = (owner?: V1OwnerReference | V1OwnerReference[], labels: Record<string, string> = {}): V1Pod => {
  const name = `p${serial++}`;
  return {
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      labels,
      ...(owner ? { ownerReferences: Array.isArray(owner) ? owner : [owner] } : {}),
    },
  };
};
/** A pod of Deployment `name`, from its ReplicaSet of template hash `hash`. */
const deploymentPod = (name: string, hash: string) =>
  pod(ref('ReplicaSet', `${name}-${hash}`), { 'pod-template-hash': hash });

describe('owningWorkload', () => {
  it("names a Deployment from its ReplicaSet's name and the pod-template-hash label", () => {
    expect(owningWorkload(deploymentPod('web', '7d9f5c'))).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'web',
    });
    // Dashes in the Deployment's name stay; only the hash suffix goes.
    expect(owningWorkload(deploymentPod('my-web-app', '5b6c'))?.name).toBe('my-web-app');
  });

  it('keeps a ReplicaSet whose name is not <deployment>-<pod-template-hash>', () => {
    const w = (rs: string, labels: Record<string, string>) => owningWorkload(pod(ref('ReplicaSet', rs), labels));
    expect(w('frontend', {})).toEqual({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'frontend' });
    expect(w('frontend-abc', { 'pod-template-hash': 'xyz' }).kind).toBe('ReplicaSet');
    // The whole name is the hash: no Deployment name left.
    expect(w('abc', { 'pod-template-hash': 'abc' }).kind).toBe('ReplicaSet');
    expect(w('-abc', { 'pod-template-hash': 'abc' }).kind).toBe('ReplicaSet');
    // Another group's ReplicaSet kind is not the Deployment controller's.
    const other = owningWorkload(pod(ref('ReplicaSet', 'web-abc', 'example.com/v1'), { 'pod-template-hash': 'abc' }));
    expect(other).toEqual({ apiVersion: 'example.com/v1', kind: 'ReplicaSet', name: 'web-abc' });
  });

  it('takes StatefulSets, DaemonSets, Jobs and other controllers as themselves', () => {
    expect(owningWorkload(pod(ref('StatefulSet', 'db')))).toEqual({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      name: 'db',
    });
    expect(owningWorkload(pod(ref('DaemonSet', 'agent'))).kind).toBe('DaemonSet');
    expect(owningWorkload(pod(ref('Job', 'migrate', 'batch/v1')))).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: 'migrate',
    });
    expect(owningWorkload(pod(ref('Rollout', 'web', 'argoproj.io/v1alpha1'))).kind).toBe('Rollout');
  });

  it('takes a pod without a controller as its own workload; owners that do not control it do not count', () => {
    const bare = pod();
    expect(owningWorkload(bare)).toEqual({ apiVersion: 'v1', kind: 'Pod', name: bare.metadata?.name });
    const kept = pod([ref('ConfigMap', 'keeper', 'v1', false)]);
    expect(owningWorkload(kept).kind).toBe('Pod');
    const both = pod([ref('ConfigMap', 'keeper', 'v1', false), ref('StatefulSet', 'db')]);
    expect(owningWorkload(both)).toMatchObject({ kind: 'StatefulSet', name: 'db' });
  });
});

describe('recreateAdvice', () => {
  const advice = (kind: string, name: string, apiVersion: string) => recreateAdvice({ apiVersion, kind, name }, 'shop');
  it('gives kubectl rollout restart for what it restarts', () => {
    expect(advice('Deployment', 'web', 'apps/v1')).toBe('kubectl rollout restart deployment/web -n shop');
    expect(advice('StatefulSet', 'db', 'apps/v1')).toBe('kubectl rollout restart statefulset/db -n shop');
    expect(advice('DaemonSet', 'agent', 'apps/v1')).toBe('kubectl rollout restart daemonset/agent -n shop');
  });
  it('says delete and recreate for Jobs and bare pods, delete for a bare ReplicaSet', () => {
    expect(advice('Job', 'migrate', 'batch/v1')).toBe('delete and recreate job/migrate in namespace shop');
    expect(advice('Pod', 'p1', 'v1')).toBe(
      'delete and recreate the pod (kubectl delete pod/p1 -n shop, then create it again from its manifest)',
    );
    expect(advice('ReplicaSet', 'frontend', 'apps/v1')).toBe(
      'delete its pods one at a time (kubectl delete pod NAME -n shop); replicaset/frontend creates them again',
    );
  });
  it('never offers kubectl rollout restart for a kind of another group', () => {
    const kruise = advice('StatefulSet', 'db', 'apps.kruise.io/v1beta1');
    expect(kruise).not.toContain('kubectl');
    expect(kruise).toBe('recreate its pods through their controller, StatefulSet db (apps.kruise.io/v1beta1)');
    expect(workloadName({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'web' })).toBe(
      'Rollout web (argoproj.io/v1alpha1)',
    );
  });
});

describe('groupUngated', () => {
  it("groups by workload, a Deployment's old and new ReplicaSets into one, most pods first", () => {
    const pods = [
      deploymentPod('web', 'aaa'),
      deploymentPod('web', 'bbb'),
      deploymentPod('web', 'aaa'),
      pod(ref('StatefulSet', 'db')),
      pod(ref('StatefulSet', 'db')),
      pod(ref('Job', 'migrate', 'batch/v1')),
      pod(),
    ];
    const g = groupUngated(pods);
    expect(g.top.map((x) => [workloadName(x.workload), x.pods])).toEqual([
      ['deployment/web', 3],
      ['statefulset/db', 2],
      ['job/migrate', 1],
      [`pod/${pods[6]?.metadata?.name}`, 1],
    ]);
    expect(g.more).toEqual({ workloads: 0, pods: 0 });
    expect(groupUngated([])).toEqual({ top: [], more: { workloads: 0, pods: 0 } });
  });

  it('keeps at most `cap` workloads, by count then kind and name, and counts the rest', () => {
    const pods: V1Pod[] = [];
    for (let i = 0; i < 14; i++)
      for (let k = 0; k <= i % 3; k++) pods.push(pod(ref('StatefulSet', `s${String(i).padStart(2, '0')}`)));
    const g = groupUngated(pods, 10);
    expect(g.top).toHaveLength(10);
    expect(g.top.slice(0, 4).map((x) => [x.workload.name, x.pods])).toEqual([
      ['s02', 3],
      ['s05', 3],
      ['s08', 3],
      ['s11', 3],
    ]);
    const shown = g.top.reduce((n, x) => n + x.pods, 0);
    expect(g.more).toEqual({ workloads: 4, pods: pods.length - shown });
    // The same pods in another order: the same groups (the Events say the same).
    expect(groupUngated([...pods].reverse(), 10)).toEqual(g);
  });
});

describe('PodsNotGated messages', () => {
  it('say in plain words how many pods, why, and the exact command', () => {
    const msg = ungatedMessage(
      { workload: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, pods: 3 },
      GATE,
      'shop',
    );
    expect(msg).toContain(`3 pods of deployment/web are selected but do not list ${GATE} in spec.readinessGates`);
    expect(msg).toContain(': readygate does not gate them.');
    expect(msg).toContain('To gate them: kubectl rollout restart deployment/web -n shop.');
    expect(msg).toContain('set spec.injection: Disabled');
    // Within what the event sink keeps (1,024 characters), with long names.
    const long = ungatedMessage(
      { workload: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'x'.repeat(253) }, pods: 12_345 },
      `readygate.dev/${'y'.repeat(63)}`,
      'z'.repeat(63),
    );
    expect(long.length).toBeLessThanOrEqual(1024);
    const one = ungatedMessage({ workload: { apiVersion: 'v1', kind: 'Pod', name: 'p1' }, pods: 1 }, GATE, 'shop');
    expect(one).toMatch(/^pod p1 is selected but does not list/);
    expect(one).toContain('To gate it: delete and recreate the pod');
  });
});

describe('dueAnnouncements', () => {
  const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
  const groups = (counts: Record<string, number>, more = { workloads: 0, pods: 0 }) => ({
    top: Object.entries(counts).map(([name, pods]) => ({
      workload: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      pods,
    })),
    more,
  });
  const due = (
    g: ReturnType<typeof groups>,
    last: Map<string, { pods: number; at: number }> | undefined,
    now: number,
  ) => dueAnnouncements(g, GATE, 'shop', last, now);

  it('announces each workload once, then nothing while the counts hold or shrink', () => {
    const first = due(groups({ web: 3, api: 2 }), undefined, T0);
    expect(first.due.map((a) => [a.key, a.pods])).toEqual([
      ['apps/v1/Deployment/web', 3],
      ['apps/v1/Deployment/api', 2],
    ]);
    expect(first.due[0]?.message).toContain('kubectl rollout restart deployment/web -n shop');
    const steady = due(groups({ web: 3, api: 2 }), first.next, T0 + 1_000);
    expect(steady.due).toEqual([]);
    // A rollout restart gates the pods one by one: progress, not one Event per pod replaced.
    let last = steady.next;
    for (let n = 2; n >= 1; n--) {
      const r = due(groups({ web: n, api: 2 }), last, T0 + 2_000);
      expect(r.due).toEqual([]);
      last = r.next;
    }
  });

  it('announces again a workload that grows, one that comes back, and each after the reminder period', () => {
    const first = due(groups({ web: 3 }), undefined, T0);
    const grown = due(groups({ web: 4 }), first.next, T0 + 1_000);
    expect(grown.due.map((a) => a.pods)).toEqual([4]);
    const gone = due(groups({}), grown.next, T0 + 2_000);
    expect(gone.next.size).toBe(0);
    expect(due(groups({ web: 1 }), gone.next, T0 + 3_000).due.map((a) => a.pods)).toEqual([1]);
    const shrunk = due(groups({ web: 2 }), grown.next, T0 + 5_000);
    expect(shrunk.due).toEqual([]);
    // The reminder counts from the last announcement (T0 + 1 s), not from the last pass.
    expect(due(groups({ web: 2 }), shrunk.next, T0 + 1_000 + UNGATED_REMIND_MS - 1).due).toEqual([]);
    expect(due(groups({ web: 2 }), shrunk.next, T0 + 1_000 + UNGATED_REMIND_MS).due.map((a) => a.pods)).toEqual([2]);
  });

  it('says the workloads beyond the cap in one more Event', () => {
    const r = due(groups({ web: 3 }, { workloads: 4, pods: 9 }), undefined, T0);
    expect(r.due).toHaveLength(2);
    expect(r.due[1]?.message).toMatch(/^4 more workloads have 9 pods selected that do not list/);
    expect(r.due[1]?.message).toContain('Events name only the 1 workloads with the most');
    expect(due(groups({ web: 3 }, { workloads: 4, pods: 9 }), r.next, T0 + 1).due).toEqual([]);
  });
});
