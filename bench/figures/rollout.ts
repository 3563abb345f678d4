// Rollout overhead (docs/benchmarks.md): a Deployment's RollingUpdate with readygate's
// readiness gate on against the same rollout with no gate, same control plane, same run. The work
// is in bench/rollout/harness.ts; this module is what bench/run.ts loads, and bench/rollout/run.ts
// runs it on its own.
import type { BenchContext, FigureRow, FigureSource } from '../figures.ts';
import { addFigure } from '../figures.ts';
import {
  fullRolloutOptions,
  quickRolloutOptions,
  type RolloutBenchResult,
  runRolloutBench,
} from '../rollout/harness.ts';

const SOURCE = 'bench/figures/rollout.ts';
/** The goal in docs/benchmarks.md: gates on ÷ gates off. */
export const GOAL_RATIO = 1.2;

/** The row of the results table. */
export function rolloutFigureRow(r: RolloutBenchResult): FigureRow {
  const o = r.options;
  const raw = (g: 'off' | 'on') =>
    r.runs
      .filter((x) => x.gates === g)
      .map((x) => x.seconds.toFixed(1))
      .join(', ');
  return {
    figure: `Rollout overhead: ${o.replicas}-replica Deployment rollout, gates on vs off`,
    value: Math.round(r.medianSeconds.on * 10) / 10,
    unit: 's',
    peers: { 'gates off': Math.round(r.medianSeconds.off * 10) / 10 },
    ratios: { 'gates off': Math.round(r.ratio * 100) / 100 },
    goal: `≤ ${GOAL_RATIO} × gates off`,
    met: r.ratio <= GOAL_RATIO,
    note: `median of ${o.repetitions} alternated rollouts each, maxSurge/maxUnavailable 25 %, HTTP probe every ${o.periodSeconds} s; on ${raw('on')} s, off ${raw('off')} s`,
    source: SOURCE,
  };
}

const source: FigureSource = {
  name: 'rollout',
  run: async (ctx: BenchContext) => {
    const o = ctx.quick ? quickRolloutOptions : fullRolloutOptions;
    const result = await runRolloutBench(o, (m) => ctx.log(`rollout: ${m}`));
    addFigure(rolloutFigureRow(result));
    ctx.details.rollout = result;
    ctx.log(
      `rollout: medians on ${result.medianSeconds.on} s, off ${result.medianSeconds.off} s, ratio ${result.ratio} (${result.seconds} s in all)`,
    );
  },
};

export default source;
