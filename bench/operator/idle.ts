// What a replica costs with nothing to probe (issue 14: a sharded replica's CPU per probe is
// c + F ÷ rate, and F, paid by every replica whatever its share, is what keeps three replicas above
// 1.1× one). On a control plane of its own, with no pod and no ProbePolicy: one unsharded leader,
// the same scraped every second as the benches do, then three sharded replicas. Each phase waits
// for the replicas to settle, then reads their CPU from /proc over the window, split by thread
// (the main thread, V8's workers and GC, libuv's pool).
//   node bench/operator/idle.ts [--window 60] [--warmup 20]
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { OPERATOR_NAMESPACE, type OperatorProcess, startOperator } from '../../test/support/operator.ts';
import { withBenchCluster } from './cluster.ts';
import { metricsText } from './harness.ts';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU ms so far of each thread of pid, summed by thread name (V8 and libuv name theirs). */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
      // The main thread bears the process's name; group the rest by name without their numbers.
      const key = tid === String(pid) ? 'main' : name.replace(/[0-9]+$/, '').trim();
      out.set(key, (out.get(key) ?? 0) + ms);
    } catch {
      // a thread that ended between readdir and read
    }
  }
  return out;
}

/** CPU ms per second of wall time between two threadCpu readings, by thread name, and in total. Pure. */
export function cpuRate(before: Map<string, number>, after: Map<string, number>, seconds: number) {
  const byThread: Record<string, number> = {};
  let total = 0;
  for (const [name, ms] of after) {
    const d = ms - (before.get(name) ?? 0);
    total += d;
    if (d > 0) byThread[name] = Math.round((d / seconds) * 10) / 10;
  }
  return { msPerSecond: Math.round((total / seconds) * 10) / 10, byThread };
}

interface Phase {
  name: string;
  replicas: Array<{ msPerSecond: number; byThread: Record<string, number> }>;
}

async function measure(
  name: string,
  ops: OperatorProcess[],
  o: { windowSeconds: number; warmupSeconds: number },
  scrape: boolean,
): Promise<Phase> {
  await sleep(o.warmupSeconds * 1000);
  const pids = ops.map((op) => op.child.pid!);
  const before = pids.map(threadCpu);
  const t0 = performance.now();
  const until = t0 + o.windowSeconds * 1000;
  while (performance.now() < until) {
    if (scrape) await Promise.all(ops.map((op) => metricsText(op, 2000).catch(() => '')));
    await sleep(Math.min(1000, Math.max(0, until - performance.now())));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { name, replicas: pids.map((pid, i) => cpuRate(before[i]!, threadCpu(pid), seconds)) };
}

const ARGS = ['--leader-elect', '--leader-election-namespace', OPERATOR_NAMESPACE, '--log-level', 'info'];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { window: { type: 'string' }, warmup: { type: 'string' } } });
  const o = { windowSeconds: Number(values.window ?? 60), warmupSeconds: Number(values.warmup ?? 20) };
  const log = (m: string) => console.error(`idle: ${m}`);
  const phases: Phase[] = [];
  const start = async (c: { operatorKubeconfig: string; cp: { dir: string } }, names: string[], extra: string[]) =>
    Promise.all(
      names.map((n) =>
        startOperator(c.operatorKubeconfig, c.cp.dir, [...ARGS, ...extra], {
          POD_NAME: n,
          POD_NAMESPACE: OPERATOR_NAMESPACE,
        }),
      ),
    );
  await withBenchCluster(
    ['127.0.0.1'],
    log,
    async (c) => {
      const solo = await start(c, ['rg-solo'], []);
      try {
        phases.push(await measure('1 replica, leader, not scraped', solo, o, false));
        phases.push(await measure('1 replica, leader, /metrics every second', solo, o, true));
      } finally {
        await Promise.all(solo.map((op) => op.stop(20_000)));
      }
      const three = await start(c, ['rg-0', 'rg-1', 'rg-2'], ['--shard-buckets', '16']);
      try {
        phases.push(await measure('3 sharded replicas (16 buckets), not scraped', three, o, false));
        phases.push(await measure('3 sharded replicas (16 buckets), /metrics every second', three, o, true));
      } finally {
        await Promise.all(three.map((op) => op.stop(20_000)));
      }
    },
    ['sharding.enabled=true', 'replicaCount=3', 'sharding.buckets=16'],
  );
  for (const p of phases) {
    console.log(`\n${p.name}:`);
    for (const [i, r] of p.replicas.entries()) {
      const threads = Object.entries(r.byThread)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      console.log(`  replica ${i}: ${r.msPerSecond} ms CPU/s (${threads})`);
    }
  }
}

if (import.meta.main) await main();
