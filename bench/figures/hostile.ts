// Hostile pods (bench/probes/hostile.ts): healthy HTTP probes' CPU with hostile targets probed
// alongside ÷ alone, and the memory one in-flight probe holds with the largest allowed answer.
// The work runs in a fresh process (`node --expose-gc bench/probes/hostile.ts --json`): its
// memory figure needs gc, and a process of its own keeps the other figures' heap out of it.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { BenchContext, FigureRow, FigureSource } from '../figures.ts';
import { addFigure } from '../figures.ts';
import type { HostileBenchResult } from '../probes/hostile.ts';

const SOURCE = 'bench/figures/hostile.ts';

/** The rows of the results table. */
export function hostileFigureRows(r: HostileBenchResult): FigureRow[] {
  const m = r.median;
  const held = r.heap[r.heap.length - 1]!;
  const control = r.heap[0]!;
  return [
    {
      figure: 'CPU per 1,000 healthy HTTP probes, hostile targets probed alongside',
      value: m.with,
      unit: 'CPU-ms',
      peers: { 'healthy alone': m.alone },
      ratios: { 'healthy alone': m.ratio },
      note:
        `median of ${r.rounds.length} round${r.rounds.length === 1 ? '' : 's'}; ${r.options.hostilePods} hostile pods over ${r.kinds.length - 1} targets; ` +
        `both loads' CPU ÷ the sum of each alone ${m.interaction}; healthy duration p99 ${m.durationP99With} ms (alone ${m.durationP99Alone} ms); API-server stand-in connections ${r.standInConnections}`,
      source: SOURCE,
    },
    {
      figure: `Memory per in-flight HTTP probe, largest allowed answer (${held.inFlight} in flight)`,
      value: Math.round(held.bytesPerProbe / 102.4) / 10,
      unit: 'KiB',
      peers: { 'status line only': Math.round(control.bytesPerProbe / 102.4) / 10 },
      note: `heapUsed + external after gc, each probe holding ${held.heldBytes.toLocaleString('en')} bytes of head; ${held.successes} / ${held.inFlight} succeeded once released`,
      source: SOURCE,
    },
  ];
}

const source: FigureSource = {
  name: 'hostile',
  run: async (ctx: BenchContext) => {
    const script = path.join(ctx.root, 'bench', 'probes', 'hostile.ts');
    const out = execFileSync(process.execPath, ['--expose-gc', script, '--json', ...(ctx.quick ? ['--quick'] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 * 1024 * 1024,
    });
    const result = JSON.parse(out.trim().split('\n').pop()!) as HostileBenchResult;
    for (const row of hostileFigureRows(result)) addFigure(row);
    ctx.details.hostile = result;
    ctx.log(`hostile: healthy CPU ratio ${result.median.ratio}, ${result.seconds} s`);
  },
};

export default source;
