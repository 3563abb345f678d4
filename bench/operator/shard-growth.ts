// The sharding bench's figures against pod count (issue 14: "plotted against pod count next to
// today's growth chart"), drawn from the JSON of bench/operator/shards.ts runs:
//   node bench/operator/shard-growth.ts bench/results/<run>.json ... [--out bench/results/shards-growth.svg]
// Each (pod count, replicas) takes its figures from the last file given that has them, so list
// older runs first. The runs may differ in probe rate: each CPU point is labelled with its rate.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ShardResult } from './shard-run.ts';
import { type ChartSeries, fmt, lineChartSvg } from './svg-chart.ts';

export interface ShardGrowthPoint {
  pods: number;
  replicas: number;
  periodSeconds: number;
  /** VmHWM at the end of the steady window, the largest replica's. */
  peakRssMiB: number;
  /** The largest replica's CPU per probe in the steady window; null when unknown. */
  cpuPerProbeMs: number | null;
  /** Summed over the replicas, in the steady window. */
  probesPerSecond: number;
  /** The largest period stretch any replica reported in the steady window (1: none). */
  stretchMax: number;
  allTrueSeconds: number | null;
  file: string;
}

/** One point per (pods, replicas), the last file's winning; sorted by pods, then replicas. */
export function shardGrowthPoints(files: Array<{ file: string; result: ShardResult }>): ShardGrowthPoint[] {
  const byKey = new Map<string, ShardGrowthPoint>();
  for (const { file, result } of files) {
    for (const run of result.runs) {
      for (const set of run.sets) {
        const ms = set.members;
        if (ms.length === 0) continue;
        const cpu = ms.map((m) => m.steady.cpuPerProbeMs);
        byKey.set(`${run.pods}/${set.replicas}`, {
          pods: run.pods,
          replicas: set.replicas,
          periodSeconds: run.periodSeconds,
          peakRssMiB: Math.max(...ms.map((m) => m.hwmMiB)),
          cpuPerProbeMs: cpu.every((c) => c !== null) ? Math.max(...(cpu as number[])) : null,
          probesPerSecond: Math.round(ms.reduce((a, m) => a + m.steady.probesPerSecond, 0)),
          stretchMax: Math.max(1, ...ms.map((m) => m.steady.stretchMax ?? 1)),
          allTrueSeconds: set.allTrueSeconds,
          file,
        });
      }
    }
  }
  return [...byKey.values()].sort((a, b) => a.pods - b.pods || a.replicas - b.replicas);
}

const COLORS: Record<number, string> = { 1: '#1f77b4', 3: '#ff7f0e' };

/** Points below this many pods crowd at the left: they are drawn without a label (bench/RESULTS.md has them). */
const LABEL_FROM_PODS = 30_000;

/** Three panels: peak RSS, CPU per probe (labelled with the rate) and every gate True, per replica count. */
export function shardGrowthSvg(points: ShardGrowthPoint[], caption: string): string {
  const counts = [...new Set(points.map((p) => p.replicas))].sort((a, b) => a - b);
  const series = (pick: (p: ShardGrowthPoint) => number | null, label: (p: ShardGrowthPoint, v: number) => string) =>
    counts.map((r): ChartSeries => {
      const ps = points.filter((p) => p.replicas === r);
      return {
        name: r === 1 ? '1 replica' : `${r} replicas, the largest`,
        color: COLORS[r] ?? '#2ca02c',
        points: ps.map((p) => [p.pods, pick(p) ?? Number.NaN]),
        labels: ps.map((p) => (p.pods < LABEL_FROM_PODS ? '' : label(p, pick(p) ?? Number.NaN))),
      };
    });
  const value = (_: ShardGrowthPoint, v: number) => fmt(v);
  // CPU per probe depends on the rate (a replica's fixed cost is spread over fewer probes at a low one).
  const cpuLabel = (p: ShardGrowthPoint, v: number) =>
    p.pods < 50_000 ? '' : `${v.toFixed(2)} at ${p.probesPerSecond}/s`;
  return lineChartSvg({
    title: 'readygate sharding: per-replica cost against pod count',
    caption,
    xLabel: 'pods',
    panels: [
      {
        title: 'Peak RSS per replica (VmHWM)',
        yLabel: 'MiB',
        series: series((p) => p.peakRssMiB, value),
        goal: { value: 512, label: 'goal at 150,000 pods across 3: 512 MiB' },
      },
      {
        title: 'CPU per probe per replica (probes/s summed)',
        yLabel: 'ms',
        series: series((p) => p.cpuPerProbeMs, cpuLabel),
      },
      { title: 'Every gate True (start →)', yLabel: 'seconds', series: series((p) => p.allTrueSeconds, value) },
    ],
  });
}

async function main(argv: string[]): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const { values, positionals } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, caption: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new Error('usage: shard-growth.ts <shards result .json>... [--out FILE]');
  const files = await Promise.all(
    positionals.map(async (file) => {
      const json = JSON.parse(await readFile(file, 'utf8')) as { shards?: ShardResult };
      if (!json.shards) throw new Error(`${file}: not a shards.ts result (no "shards")`);
      return { file: path.basename(file), result: json.shards };
    }),
  );
  const points = shardGrowthPoints(files);
  const out = values.out ?? path.join(root, 'bench', 'results', 'shards-growth.svg');
  const caption =
    values.caption ??
    'kube-apiserver ShardedListAndWatch on, 16 buckets, HTTP probes, test control plane and every replica on the same 2 cores';
  await writeFile(out, shardGrowthSvg(points, caption));
  for (const p of points) console.log(JSON.stringify(p));
  console.log(`wrote ${path.relative(root, out)}`);
}

if (import.meta.main) {
  await main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`shard-growth: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 2;
  });
}
