// Operator replicas of one test, each a process of its own with a token of its own (so the audit
// log tells their writes apart): their lifetime within the test, and their /metrics.
import { onTestFailed, onTestFinished } from 'vitest';
import type { OperatorProcess } from './operator.ts';

export interface Replica {
  /** Its identity (POD_NAME): the holder it writes into Leases. */
  name: string;
  op: OperatorProcess;
  /** The JTI of its ServiceAccount token: the audit log's credential id for its requests. */
  jti: string;
  exitedAt?: number;
}

/**
 * The replicas a test starts: killed when it ends, pass or fail (a leftover would take the next
 * test's Lease), and the tails of their logs printed if it fails (the logs go with the control
 * plane's directory).
 */
export function testReplicas(): Replica[] {
  const replicas: Replica[] = [];
  onTestFailed(() => {
    for (const r of replicas) {
      const tail = r.op.log().split('\n').slice(-25);
      console.log(`--- ${r.name} ---\n${tail.map((l) => l.slice(0, 400)).join('\n')}`);
    }
  });
  onTestFinished(async () => {
    for (const r of replicas) await r.op.kill();
  });
  return replicas;
}

/** Whether the replica's process has neither exited nor been killed. */
export const alive = (r: { op: OperatorProcess }) => r.op.child.exitCode === null && r.op.child.signalCode === null;

/** Sums a counter or reads a gauge from a replica's /metrics, over the lines that carry every label given. */
export async function metric(r: { op: OperatorProcess }, name: string, labels: Record<string, string> = {}) {
  const text = await (await fetch(`${r.op.healthUrl}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && want.every((w) => l.includes(w)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}
