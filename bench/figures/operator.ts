// Operator-level figures (docs/benchmarks.md): start-up at N pods with peak RSS,
// steady-state API writes, mass flip, single flip latency, time to gate, and the growth chart
// (bench/results/operator-growth.svg, full runs only). The work is in bench/operator/; this module
// is what bench/run.ts loads, and bench/operator/run.ts runs it on its own.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchContext, FigureSource } from '../figures.ts';
import { addFigure } from '../figures.ts';
import {
  fullOperatorOptions,
  type OperatorBenchOptions,
  quickOperatorOptions,
  runOperatorBench,
} from '../operator/harness.ts';
import { growthSvg, operatorFigureRows } from '../operator/report.ts';

/** Environment variables that change the options: a run with any of them is a custom run. */
export const OVERRIDES = [
  'BENCH_OPERATOR_CPU_PROF',
  'BENCH_OPERATOR_STEADY_SECONDS',
  'BENCH_OPERATOR_SIZES',
  'BENCH_OPERATOR_NODE_OPTIONS',
  'BENCH_OPERATOR_HEAP_SNAPSHOT',
  'BENCH_OPERATOR_LOG_DIR',
  'BENCH_OPERATOR_NODE_ARGS',
  'BENCH_OPERATOR_ARGS',
] as const;

/** Options from the context, with overrides from the environment (for profiling runs). */
export function operatorOptions(ctx: Pick<BenchContext, 'quick'>): OperatorBenchOptions {
  const o = { ...(ctx.quick ? quickOperatorOptions : fullOperatorOptions) };
  const prof = process.env.BENCH_OPERATOR_CPU_PROF;
  if (prof) o.operatorEnv = { ...o.operatorEnv, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${prof}` };
  const steady = process.env.BENCH_OPERATOR_STEADY_SECONDS;
  if (steady) o.steadySeconds = Number(steady);
  // Start-up runs only at these sizes (the fleet phases run only if the fleet size is among them).
  const sizes = process.env.BENCH_OPERATOR_SIZES;
  if (sizes) o.startupSizes = sizes.split(',').map(Number);
  // Extra Node.js flags for the operator, e.g. --max-old-space-size=160.
  const nodeOptions = process.env.BENCH_OPERATOR_NODE_OPTIONS;
  if (nodeOptions) {
    o.operatorEnv = { ...o.operatorEnv, NODE_OPTIONS: `${o.operatorEnv.NODE_OPTIONS ?? ''} ${nodeOptions}`.trim() };
  }
  // A heap snapshot of the operator after each start-up, into this directory (summarise it with
  // bench/operator/heap-summary.ts).
  const heap = process.env.BENCH_OPERATOR_HEAP_SNAPSHOT;
  if (heap) {
    o.heapSnapshotDir = heap;
    const flags = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${heap}`;
    o.operatorEnv = { ...o.operatorEnv, NODE_OPTIONS: `${o.operatorEnv.NODE_OPTIONS ?? ''} ${flags}`.trim() };
  }
  // Node.js flags on the operator's command line, space-separated (any V8 flag, e.g. --trace-gc).
  const nodeArgs = process.env.BENCH_OPERATOR_NODE_ARGS;
  if (nodeArgs) o.operatorNodeArgs = nodeArgs.split(/\s+/).filter(Boolean);
  // Extra flags for `readygate run`, space-separated (e.g. --no-memory-saver).
  const args = process.env.BENCH_OPERATOR_ARGS;
  if (args) o.operatorArgs = args.split(/\s+/).filter(Boolean);
  // Keep the operators' logs (e.g. with BENCH_OPERATOR_NODE_OPTIONS=--trace-gc).
  if (process.env.BENCH_OPERATOR_LOG_DIR) o.logDir = process.env.BENCH_OPERATOR_LOG_DIR;
  return o;
}

const source: FigureSource = {
  name: 'operator',
  run: async (ctx: BenchContext) => {
    const o = operatorOptions(ctx);
    const result = await runOperatorBench(o, (m) => ctx.log(`operator: ${m}`));
    for (const row of operatorFigureRows(result)) addFigure(row);
    ctx.details.operator = result;
    ctx.log(`operator: figures done in ${result.seconds.toFixed(0)} s`);
    if (!ctx.quick && result.startup.length > 1 && !OVERRIDES.some((k) => process.env[k])) {
      const file = path.join(ctx.root, 'bench', 'results', 'operator-growth.svg');
      const date = new Date().toISOString().slice(0, 10);
      await writeFile(
        file,
        growthSvg(
          result,
          `${date}, HTTP probes every ${o.periodSeconds} s, default flags (--api-qps 200), test control plane on the same 2 cores`,
        ),
      );
      ctx.log(`operator: wrote ${path.relative(ctx.root, file)}`);
    }
  },
};

export default source;
