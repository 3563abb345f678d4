// Retained heap per cached pod (`node --expose-gc bench/projection-heap.ts [--against REV]`):
// 50,000 pods of one ReplicaSet parsed from JSON as a LIST delivers them, projected by
// src/controllers/projection.ts (and, with --against, by its version at REV, in a child process
// each, so that neither heap holds the other's pods). Prints bytes per projected pod.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';

const PODS = 50_000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { against: { type: 'string' }, module: { type: 'string' } } });

/** A pod as the API server sends it, trimmed to what differs in size between projections. */
const text = (i: number) =>
  JSON.stringify({
    metadata: {
      name: `payments-7d9f5c6b8-${i}`,
      namespace: 'shop',
      uid: `0b8f4a4e-8c1d-4f7e-9a0b-${String(i).padStart(12, '0')}`,
      resourceVersion: String(1000 + i),
      generateName: 'payments-7d9f5c6b8-',
      creationTimestamp: '2026-11-27T08:00:00Z',
      labels: { app: 'payments', 'pod-template-hash': '7d9f5c6b8' },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'payments-7d9f5c6b8',
          uid: '5c1d2e3f-aaaa-bbbb-cccc-0123456789ab',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      containers: [{ name: 'app', image: 'x', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }],
      readinessGates: [{ conditionType: 'readygate.dev/db' }],
    },
    status: {
      phase: 'Running',
      podIP: `10.0.${(i >> 8) & 255}.${i & 255}`,
      conditions: [{ type: 'readygate.dev/db', status: 'True' }],
    },
  });

/** Bytes retained per pod projected by the module at `path`, measured in this process. */
async function measure(path: string): Promise<number> {
  const { projectPod } = (await import(path)) as { projectPod: (p: V1Pod) => V1Pod };
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = Array.from({ length: PODS }, (_, i) => projectPod(JSON.parse(text(i)) as V1Pod));
  gc();
  const after = process.memoryUsage().heapUsed;
  if (kept.length !== PODS) throw new Error('lost pods');
  return (after - before) / PODS;
}

if (values.module) {
  console.log(Math.round(await measure(values.module)));
} else {
  const run = (module: string) =>
    execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--module', module], {
      encoding: 'utf8',
    }).trim();
  console.log(`retained heap per projected pod, ${PODS} pods of one ReplicaSet (node ${process.version})`);
  console.log(`  worktree  ${run(join(ROOT, 'src/controllers/projection.ts'))} B`);
  if (values.against) {
    const dir = mkdtempSync(join(tmpdir(), 'readygate-projection-heap-'));
    try {
      const source = execFileSync('git', ['show', `${values.against}:src/controllers/projection.ts`], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      const file = join(dir, 'projection.ts');
      writeFileSync(
        file,
        source.replaceAll(/from '\.\/([^']+)'/g, (_, rest) => `from '${join(ROOT, 'src/controllers', rest)}'`),
      );
      console.log(`  ${values.against.padEnd(8)}  ${run(file)} B`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
