// Policy pass micro-benchmark (`node bench/policy-pass.ts [--against REV] [--quick]`): the
// computeTargets of one ProbePolicy reconcile over one namespace of projected pods, as
// src/controllers/policy.ts runs it on every pod event that may change targets. Namespaces of
// 50,000 pods:
//   gated         one policy selecting every pod, every pod lists its gate;
//   ten apps      ten policies of 5,000 pods each, each pod listing its own app's gate only;
//   ten Disabled  the same with spec.injection Disabled (no ungated pods counted);
//   ungated       one policy selecting every pod, no pod lists the gate (pods from before injection).
// With --against, the same passes run on src/controllers/targets.ts as of REV, interleaved run by
// run with the worktree's, so that noise on a shared machine falls on both alike. Prints the
// median ms of one policy's pass, and what the status writer adds for the ungated namespace
// (groupUngated and dueAnnouncements, src/controllers/ungated.ts). No assertions: figures only.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import type { ProbePolicy } from '../src/api/types.ts';
import { computeTargets } from '../src/controllers/targets.ts';
import { type Announced, dueAnnouncements, groupUngated } from '../src/controllers/ungated.ts';
import { describeCommit } from './git.ts';

type Compute = (policy: ProbePolicy, pods: V1Pod[], policies: ProbePolicy[]) => unknown;

const { values } = parseArgs({ options: { against: { type: 'string' }, quick: { type: 'boolean' } } });
const PODS = values.quick ? 5_000 : 50_000;
const RUNS = values.quick ? 5 : 41;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const policy = (app: string, injection?: 'Disabled'): ProbePolicy => ({
  metadata: { name: app, namespace: 'bench', uid: `uid-${app}`, creationTimestamp: '2026-01-01T00:00:00Z' as never },
  spec: {
    conditionType: `readygate.dev/${app}`,
    selector: { matchLabels: { app } },
    probe: { tcpSocket: { port: 8080 } },
    ...(injection ? { injection } : {}),
  },
});

/** A pod as the operator caches it (src/controllers/projection.ts), owned by a Deployment's ReplicaSet. */
function pod(i: number, app: string, gated: boolean): V1Pod {
  const gate = `readygate.dev/${app}`;
  return {
    metadata: {
      name: `${app}-7d9f-${i}`,
      namespace: 'bench',
      uid: `uid-${i}`,
      resourceVersion: String(i),
      labels: { app, 'pod-template-hash': '7d9f' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-7d9f`, uid: `rs-${app}`, controller: true },
      ],
    },
    spec: { containers: [{ name: 'app' }], ...(gated ? { readinessGates: [{ conditionType: gate }] } : {}) },
    status: {
      phase: 'Running',
      podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      ...(gated ? { conditions: [{ type: gate, status: i % 10 === 0 ? 'False' : 'True' }] } : {}),
    },
  };
}

/** computeTargets as of rev: its file, with its imports pointed at this worktree's, in a temp dir. */
async function computeTargetsAt(rev: string, dir: string): Promise<Compute> {
  const text = execFileSync('git', ['show', `${rev}:src/controllers/targets.ts`], { cwd: ROOT, encoding: 'utf8' });
  const file = join(dir, 'targets.ts');
  writeFileSync(
    file,
    text.replaceAll(/from '\.\.\/([^']+)'/g, (_, rest) => `from '${join(ROOT, 'src', rest)}'`),
  );
  return ((await import(file)) as { computeTargets: Compute }).computeTargets;
}

/** Median ms of one policy's pass for each implementation, interleaved, after three warm-up rounds. */
function measure(impls: Compute[], policies: ProbePolicy[], pods: V1Pod[]): number[] {
  const times = impls.map(() => [] as number[]);
  for (let r = 0; r < RUNS + 3; r++) {
    for (const [k, compute] of impls.entries()) {
      const t0 = performance.now();
      for (const p of policies) compute(p, pods, policies);
      if (r >= 3) times[k]!.push((performance.now() - t0) / policies.length);
    }
  }
  return times.map(median);
}

/** Median ms of grouping the ungated namespace's pods and deciding its Events, as each status writer's pass does. */
function measureEvents(c: { policies: ProbePolicy[]; pods: V1Pod[] }): number {
  const policy = c.policies[0]!;
  const { ungated } = computeTargets(policy, c.pods, c.policies) as { ungated: V1Pod[] };
  let last: Map<string, Announced> | undefined;
  const times: number[] = [];
  for (let r = 0; r < RUNS + 3; r++) {
    const t0 = performance.now();
    last = dueAnnouncements(groupUngated(ungated), policy.spec.conditionType, 'bench', last, r).next;
    if (r >= 3) times.push(performance.now() - t0);
  }
  return median(times);
}

const apps = Array.from({ length: 10 }, (_, k) => `app${k}`);
const tenApps = Array.from({ length: PODS }, (_, i) => pod(i, apps[i % apps.length]!, true));
const cases: Array<{ name: string; policies: ProbePolicy[]; pods: V1Pod[] }> = [
  { name: 'gated', policies: [policy('web')], pods: Array.from({ length: PODS }, (_, i) => pod(i, 'web', true)) },
  { name: 'ten apps', policies: apps.map((a) => policy(a)), pods: tenApps },
  { name: 'ten Disabled', policies: apps.map((a) => policy(a, 'Disabled')), pods: tenApps },
  { name: 'ungated', policies: [policy('web')], pods: Array.from({ length: PODS }, (_, i) => pod(i, 'web', false)) },
];
const dir = mkdtempSync(join(tmpdir(), 'readygate-policy-pass-'));
try {
  const impls: Compute[] = [computeTargets];
  const names = [describeCommit(ROOT, ['src/controllers/targets.ts', 'src/api'])];
  if (values.against) {
    impls.push(await computeTargetsAt(values.against, dir));
    names.push(values.against);
  }
  console.log(`policy pass (computeTargets), ${PODS} pods per namespace, median of ${RUNS} (node ${process.version})`);
  console.log(`  ${''.padEnd(13)}${names.map((n) => n.padStart(30)).join('')}`);
  for (const c of cases) {
    const ms = measure(impls, c.policies, c.pods);
    console.log(`  ${c.name.padEnd(13)}${ms.map((m) => `${m.toFixed(2)} ms`.padStart(30)).join('')}`);
  }
  console.log(
    `  PodsNotGated  ${measureEvents(cases.at(-1)!).toFixed(2)} ms more per pass of the status writer (ungated)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
